"""Fine-tuning complete models: AdamW with linear warm-up and decay, clipping, best-on-tune, resumable.

`fit` (used by `train_complete_model` and by the multi-exit and cascade trainers) owns one folder (a cache entry keyed by model spec, training config, seed
and data fingerprint, see `model_folder`). Inside it:

- `state/`    the latest resumable checkpoint (weights, optimizer moments, RNG state, progress),
              written every `checkpoint_every` steps and at the end of each epoch;
- `best/`     the checkpoint with the best tune-split metric (`CompleteModel.save_pretrained`);
- `done.json` written last: training history and the best metric. When it exists the folder is
              a finished cache entry and training is skipped.

Everything is stored with safetensors or JSON, never pickle, and written atomically. Given the
seed, a run is deterministic on CPU, also when it is interrupted and resumed: the batch order is a
pure function of (seed, epoch) and the dropout RNG state travels with the checkpoint.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn
from tqdm.auto import tqdm

from workbench.config import TrainConfig
from workbench.data.batching import Encoded, batch_indices, collate, encode
from workbench.data.task import TaskData
from workbench.measures.metrics import task_metric
from workbench.models.backbones import load_tokenizer
from workbench.models.complete import CompleteModel, ModelSpec
from workbench.models.precision import autocast, grad_scaler
from workbench.runs.cache import ensure_intact, record
from workbench.runs.distributed import context
from workbench.store import content_hash, fresh_tmp_dir, read_json, replace_dir, safe_component, write_json


@dataclass(frozen=True)
class TrainResult:
    """Where the best checkpoint is, and how training went."""
    checkpoint: Path          # folder loadable with CompleteModel.from_pretrained
    best_tune_metric: float   # task metric on the tune split at the best evaluation
    history: pd.DataFrame     # one row per evaluation: epoch, step, train_loss, tune_metric
    truncated: int            # training texts longer than max_length
    cached: bool              # True when the folder already held a finished run


LABELS_FILE = "labels.json"  # the task's label names, beside every checkpoint fit keeps


@dataclass
class FitState:
    """Where a training run stands: saved with every resumable checkpoint, restored on resume."""
    global_step: int = 0                 # optimizer steps taken
    best_tune_metric: float = -math.inf  # best tune-split metric so far
    history: list = field(default_factory=list)  # one dict per evaluation: epoch, step, train_loss, tune metric
    loss_sum: float = 0.0                # training loss summed since the last evaluation ...
    loss_count: int = 0                  # ... over this many steps

    def add_step(self, loss: float) -> None:
        self.global_step += 1
        self.loss_sum += loss
        self.loss_count += 1

    def add_evaluation(self, epoch: int, metric_name: str, metric: float) -> bool:
        """Record a tune-split evaluation (with the mean training loss since the last one); True when it is
        the best so far, i.e. when the checkpoint should be kept."""
        loss = self.loss_sum / max(1, self.loss_count)
        self.loss_sum, self.loss_count = 0.0, 0
        self.history.append({"epoch": epoch, "step": self.global_step, "train_loss": loss,
                             f"tune_{metric_name}": metric, "tune_metric": metric})
        tqdm.write(f"  step {self.global_step}: train loss {loss:.4f}, tune {metric_name} {metric:.2f}")
        improved = metric > self.best_tune_metric
        if improved:
            self.best_tune_metric = metric
        return improved


def model_folder(root: str | Path, spec, config: TrainConfig, seed: int, task: TaskData, *extra) -> Path:
    """The cache folder of one training run: readable name plus a hash of everything that shapes it
    (spec, training config, seed, data fingerprint, and any `extra` settings such as head training)."""
    spec = spec.resolved()
    settings = asdict(config)
    if settings["precision"] == "fp32":  # float32 keys stay those of caches made before precision was a setting
        del settings["precision"]
    key = content_hash(asdict(spec), settings, seed, task.fingerprint(), *extra)
    backbone = Path(spec.backbone).name or spec.backbone
    name = "-".join(safe_component(part) for part in (task.spec.name, backbone, spec.name))
    return Path(root) / f"{name}-seed{seed}-{key}"  # names never become paths: each part is one safe component


def predict_logits(model: nn.Module, encoded: Encoded, *, batch_size: int = 64,
                   precision: str = "fp32") -> np.ndarray:
    """Logits in the encoded order: [n, num_labels] for a complete model, [n, exits, num_labels] for a
    multi-exit one; batches are sorted by length for speed; float32 whatever the `precision` of the pass.
    Launched as several processes, each one predicts every world-th batch and all get every row back."""
    ctx = context()
    model.eval().to(ctx.device)
    batches = batch_indices(encoded.lengths, batch_size, shuffle=False)
    mine = batches[ctx.rank::ctx.world]
    parts = []
    with torch.inference_mode(), autocast(precision):
        for idx in mine:
            parts.append(model(**to_device(collate(encoded, idx), ctx.device)).logits.float().cpu().numpy())
    if not ctx.distributed and not parts:
        return np.zeros((0, model.spec.num_labels), dtype=np.float32)
    positions = np.concatenate(mine) if mine else np.zeros(0, dtype=np.int64)
    shape = parts[0].shape[1:] if parts else _logit_shape(model)
    rows = np.concatenate(parts) if parts else np.zeros((0, *shape), dtype=np.float32)
    out = np.zeros((len(encoded), *shape), dtype=np.float32)
    if not ctx.distributed:
        out[positions] = rows
        return out
    return ctx.gather_rows(positions, rows, len(encoded))


def _logit_shape(model: nn.Module) -> tuple[int, ...]:
    """The shape of one example's logits: (C,) for a complete model, (exits, C) for a multi-exit one."""
    exits = getattr(model.spec, "num_layers", None) if hasattr(model, "heads") else None
    return (exits, model.spec.num_labels) if exits else (model.spec.num_labels,)


def to_device(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    """A collated batch on `device`: pinned host memory and non-blocking copies to a GPU, unchanged on the CPU."""
    if device.type == "cpu":
        return batch
    pin = device.type == "cuda"
    return {k: (v.pin_memory() if pin else v).to(device, non_blocking=True) for k, v in batch.items()}


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up from 0 to 1 over `warmup` steps, then linear decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def train_complete_model(spec: ModelSpec, task: TaskData, config: TrainConfig, *, seed: int, folder: str | Path,
                         progress: bool = True) -> TrainResult:
    """Fine-tune a complete model on task.splits['train'], keeping the best on task.splits['tune']."""
    spec = spec.resolved()
    if spec.num_labels != task.num_labels:
        raise ValueError(f"model has {spec.num_labels} labels but task {task.spec.name} has {task.num_labels}")
    return fit(lambda: CompleteModel.build(spec, seed=seed), cross_entropy, task, config, seed=seed, folder=folder,
               desc=f"train {spec.name} seed {seed} on {task.spec.name}", progress=progress)


def cross_entropy(model: nn.Module, batch: dict[str, torch.Tensor], labels: torch.Tensor,
                  idx: np.ndarray, step: int = 0) -> torch.Tensor:
    """The plain objective: mean cross-entropy of the model's logits [batch, num_labels]."""
    return nn.functional.cross_entropy(model(**batch).logits, labels)


LossFn = Callable[[nn.Module, dict, torch.Tensor, np.ndarray, int], torch.Tensor]


def fit(build: Callable[[], nn.Module], loss_fn: LossFn, task: TaskData, config: TrainConfig, *, seed: int,
        folder: str | Path, desc: str, progress: bool = True) -> TrainResult:
    """The training loop shared by every model the workbench trains.

    `build()` returns a fresh model with `spec.backbone` and `save_pretrained(folder, tokenizer=)`;
    `loss_fn(model, batch, labels, idx, step)` returns the scalar loss of a batch (idx = the training
    examples' positions, for objectives that need per-example data such as difficulty labels; step = the
    global step, for objectives that alternate).
    The model is selected by the task metric on the tune split: of its logits [n, C], or the mean
    over exits for multi-exit logits [n, exits, C].

    It trains on the device of `workbench.runs.distributed.context()`; launched as several processes it is
    data-parallel (see that module): the same global batches, split across the processes, each process's
    loss weighted by its share of the batch so that the averaged gradient is the one-process gradient.
    """
    ctx = context()
    folder = Path(folder)
    ctx.barrier()
    ensure_intact(folder)  # a damaged entry is reported and emptied, so it trains again
    ctx.barrier()
    if (folder / "done.json").is_file():
        done = read_json(folder / "done.json")
        return TrainResult(folder / "best", done["best_tune_metric"], pd.DataFrame(done["history"]),
                           done["truncated"], cached=True)
    model = build().to(ctx.device)
    tokenizer = load_tokenizer(model.spec.backbone)
    train, tune = task.splits["train"], task.splits["tune"]
    enc_train, enc_tune = encode(tokenizer, train, config.max_length), encode(tokenizer, tune, config.max_length)
    if enc_train.truncated:
        tqdm.write(f"{task.spec.name}: truncated {enc_train.truncated} of {len(enc_train)} training texts "
                   f"to {config.max_length} tokens")
    labels = torch.tensor(train["label"].to_numpy(), dtype=torch.long)
    tune_labels = tune["label"].to_numpy()

    optimizer = _optimizer(model, config)
    scaler = grad_scaler(config.precision)
    steps_per_epoch = math.ceil(len(enc_train) / config.batch_size)
    total = steps_per_epoch * config.epochs
    warmup = int(config.warmup_ratio * total)
    evals_at = {min(steps_per_epoch, round(steps_per_epoch * (j + 1) / config.evals_per_epoch))
                for j in range(config.evals_per_epoch)}

    state = FitState()
    torch.manual_seed(seed)
    if (folder / "state" / "progress.json").is_file():
        state = _load_state(folder / "state", model, optimizer)
    start = state.global_step

    trained = ctx.accelerator.prepare_model(model) if ctx.distributed else model  # DDP: gradients all-reduced
    bar = tqdm(total=total, initial=start, disable=not progress or not ctx.is_main, unit="step", mininterval=1.0,
               desc=desc)
    for epoch in range(start // steps_per_epoch, config.epochs):
        batches = batch_indices(enc_train.lengths, config.batch_size, shuffle=True, seed=seed, epoch=epoch,
                                bucket=config.bucket)
        for i, idx in enumerate(batches):
            step = epoch * steps_per_epoch + i
            if step < state.global_step:
                continue  # resuming: these steps are already in the checkpoint
            trained.train()
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * lr_factor(step, total, warmup)
            mine = ctx.shard(idx)
            share = len(mine) * ctx.world / len(idx)  # this process's part of the global mean
            rows = mine if len(mine) else idx[:1]     # a process without examples still joins the all-reduce
            with autocast(config.precision):
                loss = loss_fn(trained, to_device(collate(enc_train, rows), ctx.device),
                               labels[rows].to(ctx.device, non_blocking=True), rows, step) * share
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            logged = ctx.mean(float(loss.detach()))  # the global batch's mean loss
            state.add_step(logged)
            bar.update(1)
            bar.set_postfix(loss=f"{logged:.3f}", refresh=False)
            if i + 1 in evals_at:
                metric = tune_metric(model, enc_tune, tune_labels, task.spec.metric,
                                     batch_size=config.eval_batch_size, precision=config.precision)
                if state.add_evaluation(epoch, task.spec.metric, metric) and ctx.is_main:
                    model.save_pretrained(folder / "best", tokenizer=tokenizer)
                    write_json(folder / "best" / LABELS_FILE, list(task.spec.label_names))
            if (state.global_step % config.checkpoint_every == 0 or i + 1 == len(batches)) and ctx.is_main:
                _save_state(folder / "state", model, optimizer, state)
    bar.close()

    done = {"best_tune_metric": state.best_tune_metric, "history": state.history,
            "truncated": enc_train.truncated, "steps": total, "train_examples": len(enc_train)}
    if ctx.is_main:
        write_json(folder / "done.json", done)
        record(folder, "best", "done.json")
        shutil.rmtree(folder / "state", ignore_errors=True)  # only needed to resume an unfinished run
    ctx.barrier()
    return TrainResult(folder / "best", done["best_tune_metric"], pd.DataFrame(done["history"]),
                       enc_train.truncated, cached=False)


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with four groups: pre-trained encoder vs freshly initialised heads (peak lr `lr` vs `head_lr`),
    each with weight decay except on biases and LayerNorm weights. `base_lr` is each group's peak."""
    groups = {}
    for name, param in model.named_parameters():
        head = not name.startswith("encoder.")
        decay = param.ndim >= 2  # not biases and LayerNorm weights
        groups.setdefault((head, decay), []).append(param)
    head_lr = config.head_lr if config.head_lr is not None else config.lr
    return torch.optim.AdamW([{"params": params, "weight_decay": config.weight_decay if decay else 0.0,
                               "base_lr": head_lr if head else config.lr, "lr": head_lr if head else config.lr}
                              for (head, decay), params in sorted(groups.items())], lr=config.lr)


def tune_metric(model: nn.Module, encoded: Encoded, gold: np.ndarray, metric: str, *, batch_size: int,
                precision: str = "fp32") -> float:
    """The task metric of the model on the tune split: of its logits [n, C], or the mean over exits of
    multi-exit logits [n, exits, C]."""
    logits = predict_logits(model, encoded, batch_size=batch_size, precision=precision)
    if logits.ndim == 3:
        return float(np.mean([task_metric(metric, gold, logits[:, j].argmax(1)) for j in range(logits.shape[1])]))
    return task_metric(metric, gold, logits.argmax(1))


def _save_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: FitState) -> None:
    tmp = fresh_tmp_dir(path)
    save_model(model, str(tmp / "model.safetensors"))  # handles weights shared between modules
    opt = optimizer.state_dict()
    moments = {f"{i}.{k}": torch.as_tensor(v).contiguous() for i, s in opt["state"].items() for k, v in s.items()}
    save_file(moments, str(tmp / "optimizer.safetensors"))
    save_file({"torch": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
    write_json(tmp / "progress.json", {**asdict(state), "param_groups": opt["param_groups"]})
    replace_dir(tmp, path)


def _load_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> FitState:
    load_model(model, str(path / "model.safetensors"))
    state = read_json(path / "progress.json")
    moments: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in load_file(str(path / "optimizer.safetensors")).items():
        i, name = key.split(".", 1)
        moments.setdefault(int(i), {})[name] = value
    groups = state.pop("param_groups")
    for group in groups:
        group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": moments, "param_groups": groups})
    torch.set_rng_state(load_file(str(path / "rng.safetensors"))["torch"])
    tqdm.write(f"resuming from {path} at step {state['global_step']}")
    return FitState(**state)
