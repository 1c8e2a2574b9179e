"""Train-once stages of the main job: every model of the study, each cached with its outputs.

Each stage returns the model's rows of the outputs table (tune and test splits) and keeps its
checkpoint and outputs in a cache folder named by a hash of the model spec, training config, seed
and data fingerprint (plus any stage settings), so a rerun reuses them and a changed option or
data file retrains. `workbench.study.reproduce` runs the stages and builds the tables.

Stages: complete models of any depth; DeeBERT (stage 2 on the complete L-layer model), FastBERT, PABEE
and the other jointly trained objectives (BERxiT, mutual), probes; difficulty labels of a small member and
its difficulty-aware retraining.
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from workbench.config import RunConfig
from workbench.data.batching import encode
from workbench.data.files import DataError
from workbench.data.task import TaskData
from workbench.methods.difficulty import (DifficultyAwareObjective, DistilledObjective, easy_from_runs,
                                          kfold_assignment)
from workbench.models.backbones import backbone_layers, load_encoder, load_tokenizer
from workbench.models.complete import CompleteModel, ModelSpec, load_checkpoint_tokenizer
from workbench.models.multiexit import (JointObjective, MultiExitModel, MultiExitSpec, backbone_pooler,
                                        deebert_from_complete, pabee_loss, pooled_features, probe_model, train_heads)
from workbench.models.training import fit, model_folder, predict_logits, train_complete_model
from workbench.names import complete_name, multi_exit_name
from workbench.runs.outputs import outputs_frame, validate_outputs
from workbench.runs.cache import ensure_intact, record
from workbench.runs.distributed import context
from workbench.store import content_hash, write_parquet

EVAL_SPLITS = ("tune", "test")
_CACHED_ONLY = contextvars.ContextVar("cached_only", default=False)


class MissingModel(DataError):
    """A stage asked, inside `cached_only()`, for a model that is not in the cache."""


@contextlib.contextmanager
def cached_only():
    """Inside, the stages only read their cache: a model that would have to be trained raises MissingModel,
    naming its folder, instead of training (for commands that answer with a finished run's models)."""
    token = _CACHED_ONLY.set(True)
    try:
        yield
    finally:
        _CACHED_ONLY.reset(token)


def predict_split(model, tokenizer, frame: pd.DataFrame, *, split: str, seed: int, max_length: int,
                  batch_size: int = 64, precision: str = "fp32") -> tuple[pd.DataFrame, int]:
    """Outputs rows of a complete or multi-exit model over one split, and how many texts were truncated."""
    encoded = encode(tokenizer, frame, max_length)
    logits = predict_logits(model, encoded, batch_size=batch_size, precision=precision)
    common = dict(split=split, example_ids=frame["example_id"], labels=frame["label"], seed=seed,
                  model=model.spec.name, tokens=encoded.lengths)
    if logits.ndim == 2:
        rows = outputs_frame(logits, layer=model.spec.depth, **common)
    else:  # one block of rows per exit
        rows = pd.concat([outputs_frame(logits[:, j], layer=j + 1, **common) for j in range(logits.shape[1])],
                         ignore_index=True)
    return rows, encoded.truncated


def cached_outputs(folder: Path, model_fn, task: TaskData, config: RunConfig, seed: int, *,
                   frames: dict[str, pd.DataFrame] | None = None, name: str | None = None,
                   filename: str = "outputs.parquet") -> pd.DataFrame:
    """The outputs on `frames` (split name -> examples; default the task's tune and test splits) stored in
    `folder`, computed first with `model_fn()` -> (model, tokenizer) when absent; `name` overrides the model
    column (e.g. 'complete-1L-da')."""
    cached = folder / filename
    ctx = context()
    ctx.barrier()  # every process looks at the same cache: after the main one's last write
    ensure_intact(folder)
    ctx.barrier()
    if not cached.is_file() and _CACHED_ONLY.get():
        raise MissingModel(f"{folder}: this model is not in the run's cache; run `python -m workbench reproduce` with "
                           "the run's options (its config.json) to train it")
    if not cached.is_file():
        frames = frames if frames is not None else {split: task.splits[split] for split in EVAL_SPLITS}
        model, tokenizer = model_fn()
        parts = []
        for split, frame in frames.items():
            rows, truncated = predict_split(model, tokenizer, frame, split=split, seed=seed,
                                            max_length=config.train.max_length,
                                            batch_size=config.train.eval_batch_size,
                                            precision=config.train.precision)
            if truncated and split != "train":
                tqdm.write(f"{task.spec.name}/{split}: truncated {truncated} of {len(frame)} texts "
                           f"to {config.train.max_length} tokens")
            parts.append(rows.assign(model=name) if name else rows)
        write_parquet(cached, pd.concat(parts, ignore_index=True))  # the main process only
        record(folder, filename)
        ctx.barrier()
    return pd.read_parquet(cached)


def _load_complete(folder: Path):
    """(model, tokenizer) of a finished complete-model cache folder."""
    spec = ModelSpec.from_checkpoint(folder / "best")
    return CompleteModel.from_pretrained(folder / "best"), load_checkpoint_tokenizer(folder / "best", spec)


def complete_model(task: TaskData, config: RunConfig, depth: int, seed: int, *, backbone: str | None = None,
                   distilled: bool | None = None, progress: bool = True) -> tuple[Path, pd.DataFrame]:
    """Train (or reuse) one complete model (of `backbone`, default the run's); its cache folder and its
    tune/test outputs. `distilled` (default: the run's `distill_members`, for every model but the full one)
    trains it as the student of the full model of the same seed (`teacher_logits`, `DistilledObjective`)."""
    backbone = backbone or config.backbone
    spec = ModelSpec(backbone=backbone, depth=depth, num_labels=task.num_labels, pooling=config.pooling,
                     dropout=config.train.dropout).resolved()
    if distilled is None:
        distilled = config.distill_members and not _is_full(config, backbone, depth)
    name = complete_name(depth, small=config.is_small(backbone))
    name = None if name == spec.name else name
    if not distilled:
        folder = model_folder(config.cache, spec, config.train, seed, task)

        def load():
            train_complete_model(spec, task, config.train, seed=seed, folder=folder, progress=progress)
            return _load_complete(folder)
        return folder, cached_outputs(folder, load, task, config, seed, name=name)
    teacher, teacher_folder = teacher_logits(task, config, seed, progress=progress)
    folder = model_folder(config.cache, spec, config.train, seed, task, "kd", asdict(config.distill),
                          teacher_folder.name)

    def load():
        fit(lambda: CompleteModel.build(spec, seed=seed), DistilledObjective(teacher, config.distill), task,
            config.train, seed=seed, folder=folder, desc=f"train {spec.name} (student) seed {seed} on "
            f"{task.spec.name}", progress=progress)
        return _load_complete(folder)
    return folder, cached_outputs(folder, load, task, config, seed, name=name)


def _is_full(config: RunConfig, backbone: str, depth: int) -> bool:
    return backbone == config.backbone and depth == backbone_layers(config.backbone)


def teacher_logits(task: TaskData, config: RunConfig, seed: int, *,
                   progress: bool = True) -> tuple[np.ndarray, Path]:
    """The full model's logits on the training split [n, C], in the order `fit` trains on, and the full model's
    cache folder: computed once per teacher (one pass over the training split, stored beside its checkpoint as
    train_outputs.parquet) and reused by every student of that seed; a retrained teacher has another folder."""
    train = task.splits["train"]
    folder, _ = complete_model(task, config, backbone_layers(config.backbone), seed, distilled=False,
                               progress=progress)
    rows = cached_outputs(folder, lambda: _load_complete(folder), task, config, seed, frames={"train": train},
                          filename="train_outputs.parquet")
    rows = rows.set_index("example_id").loc[train["example_id"].astype(str)]
    return rows[[f"logit_{c}" for c in range(task.num_labels)]].to_numpy(np.float32), folder


def complete_model_outputs(task: TaskData, config: RunConfig, *, depths: tuple[int, ...] | None = None,
                           progress: bool = True) -> pd.DataFrame:
    """Train (or reuse) every depth x seed and return their outputs on the tune and test splits."""
    frames = [complete_model(task, config, depth, seed, progress=progress)[1]
              for seed in config.seeds for depth in (depths or config.depths)]
    return validate_outputs(pd.concat(frames, ignore_index=True))


def difficulty_labels(task: TaskData, config: RunConfig, depth: int, *, backbone: str | None = None,
                      progress: bool = True) -> np.ndarray:
    """Easy (True) / hard per training example (in the order `fit` trains on) from k runs of the
    complete `depth`-layer model: correct in all k seeded runs, or correct when held out (k folds)."""
    rule = config.difficulty
    train = task.splits["train"]
    if rule.rule == "seeds":
        correct = np.zeros((rule.runs, len(train)), dtype=bool)
        for run in range(rule.runs):
            folder, _ = complete_model(task, config, depth, run, backbone=backbone, distilled=False,
                                       progress=progress)
            rows = cached_outputs(folder, lambda: _load_complete(folder), task, config, run,
                                  frames={"train": train}, filename="train_outputs.parquet")
            correct[run] = rows.set_index("example_id").loc[train["example_id"], "correct"].to_numpy()
        return easy_from_runs(correct)
    fold = kfold_assignment(len(train), rule.runs, seed=0)
    held_out = np.zeros(len(train), dtype=bool)
    for f in range(rule.runs):
        fold_task = replace(task, splits={**task.splits, "train": train[fold != f].reset_index(drop=True)})
        folder, _ = complete_model(fold_task, config, depth, 0, backbone=backbone, distilled=False,
                                   progress=progress)
        rows = cached_outputs(folder, lambda: _load_complete(folder), fold_task, config, 0,
                              frames={"held_out": train[fold == f].reset_index(drop=True)},
                              filename="held_out_outputs.parquet")
        held_out[fold == f] = rows.set_index("example_id").loc[train["example_id"][fold == f], "correct"].to_numpy()
    return held_out


def da_member(task: TaskData, config: RunConfig, depth: int, seed: int, easy: np.ndarray, *,
              backbone: str | None = None, progress: bool = True) -> tuple[Path, pd.DataFrame]:
    """A complete `depth`-layer model trained with the difficulty-aware regularizer; outputs named
    'complete-<depth>L-da' (or 'small-<depth>L-da' on the small backbone)."""
    backbone = backbone or config.backbone
    spec = ModelSpec(backbone=backbone, depth=depth, num_labels=task.num_labels, pooling=config.pooling,
                     dropout=config.train.dropout).resolved()
    extra = ()
    teacher = None
    if config.distill_members:  # the regularized member is a student too
        logits, teacher_folder = teacher_logits(task, config, seed, progress=progress)
        teacher = DistilledObjective(logits, config.distill)
        extra = ("kd", asdict(config.distill), teacher_folder.name)
    folder = model_folder(config.cache, spec, config.train, seed, task, asdict(config.difficulty),
                          content_hash(easy.tolist()), "da", *extra)
    objective = DifficultyAwareObjective(easy, config.difficulty, seed=seed, teacher=teacher)

    def load():
        fit(lambda: CompleteModel.build(spec, seed=seed), objective, task, config.train, seed=seed, folder=folder,
            desc=f"train {spec.name}+DA seed {seed} on {task.spec.name}", progress=progress)
        return _load_complete(folder)
    return folder, cached_outputs(folder, load, task, config, seed,
                                  name=complete_name(depth, small=config.is_small(backbone), regularized=True))


def _frozen_features(encoder, task: TaskData, config: RunConfig) -> tuple:
    """Pooled states of a frozen encoder on the train and tune splits, [n, L, H] each, and their labels."""
    tokenizer = load_tokenizer(config.backbone)
    pooling = ModelSpec(backbone=config.backbone, pooling=config.pooling).resolved().pooling
    splits = (task.splits["train"], task.splits["tune"])
    return tuple(pooled_features(encoder, pooling, encode(tokenizer, split, config.train.max_length),
                                 precision=config.train.precision)
                 for split in splits) + tuple(split["label"].to_numpy() for split in splits)


def _exit_spec(task: TaskData, config: RunConfig, kind: str) -> MultiExitSpec:
    return MultiExitSpec(kind=kind, backbone=config.backbone, num_layers=backbone_layers(config.backbone),
                         num_labels=task.num_labels, pooling=config.pooling, dropout=config.train.dropout).resolved()


class FrozenStates:
    """Stage 1 of the off-ramp models of one seed, computed at most once: the fine-tuned complete L-layer model
    and its pooled states on the train and tune splits (`_frozen_features`). DeeBERT's and FastBERT's off-ramps
    are trained on the same states, so a run that builds both passes the frozen model over the data once."""

    def __init__(self, task: TaskData, config: RunConfig, stage1: Path):
        self.task, self.config, self.stage1 = task, config, stage1
        self._value = None

    def __call__(self) -> tuple[CompleteModel, tuple]:
        if self._value is None:
            complete = CompleteModel.from_pretrained(self.stage1 / "best")
            self._value = complete, _frozen_features(complete.encoder, self.task, self.config)
        return self._value


def frozen_states(task: TaskData, config: RunConfig, seed: int, *, progress: bool = True) -> FrozenStates:
    """Stage 1 of the off-ramp models of `seed` (the complete L-layer model, trained or reused), its states
    computed only when an off-ramp model is built."""
    stage1, _ = complete_model(task, config, backbone_layers(config.backbone), seed, progress=progress)
    return FrozenStates(task, config, stage1)


def _off_ramp_model(task: TaskData, config: RunConfig, seed: int, kind: str, states: FrozenStates | None, *,
                    easy: np.ndarray | None = None, distilled: bool = False,
                    progress: bool = True) -> tuple[Path, pd.DataFrame]:
    """Off-ramps at layers 1..L-1 trained on the frozen states of stage 1 (`kind` 'deebert' or 'fastbert'), with
    the complete model's own head at layer L; `easy` adds the difficulty-aware regularizer, `distilled` trains
    on `self_distillation_loss` against the last layer's logits on the training split."""
    states = states or frozen_states(task, config, seed, progress=progress)
    spec = _exit_spec(task, config, kind)
    extra = (asdict(config.difficulty), content_hash(easy.tolist())) if easy is not None else ()
    extra += (asdict(config.distill),) if distilled else ()
    folder = model_folder(config.cache, spec, config.train, seed, task, asdict(config.heads), states.stage1.name,
                          *extra)

    def build():
        complete, (x, tx, y, ty) = states()
        teacher = None
        if distilled:
            complete.head.eval()
            with torch.inference_mode():
                teacher = complete.head(torch.from_numpy(x[:, -1])).numpy()
        heads, _ = train_heads(x, y, tx, ty, layers=list(range(spec.num_layers - 1)), num_labels=task.num_labels,
                               metric=task.spec.metric, config=config.heads, seed=seed,
                               init_dense=complete.head.dense, easy=easy,
                               difficulty=config.difficulty if easy is not None else None, teacher=teacher,
                               distill=config.distill if distilled else None, progress=progress)
        model, tokenizer = deebert_from_complete(complete, heads, kind=kind), load_tokenizer(config.backbone)
        model.save_pretrained(folder / "best", tokenizer=tokenizer)
        record(folder, "best")
        return model, tokenizer
    name = multi_exit_name(kind, regularized=True) if easy is not None else None
    return folder, cached_outputs(folder, build, task, config, seed, name=name)


def deebert_model(task: TaskData, config: RunConfig, seed: int, *, easy: np.ndarray | None = None,
                  states: FrozenStates | None = None, progress: bool = True) -> tuple[Path, pd.DataFrame]:
    """DeeBERT: stage 1 = the complete L-layer model of this seed; stage 2 = off-ramps on its frozen states.
    With `easy` difficulty labels, the off-ramps also carry the difficulty-aware regularizer ('deebert-da')."""
    return _off_ramp_model(task, config, seed, "deebert", states, easy=easy, progress=progress)


def fastbert_model(task: TaskData, config: RunConfig, seed: int, *, states: FrozenStates | None = None,
                   progress: bool = True) -> tuple[Path, pd.DataFrame]:
    """FastBERT-style self-distilled off-ramps: DeeBERT's stage 2 on the same frozen complete L-layer model, each
    off-ramp trained on `self_distillation_loss` against the last layer's logits on the training split, which
    the complete model's head computes from the states stage 2 already holds."""
    return _off_ramp_model(task, config, seed, "fastbert", states, distilled=True, progress=progress)


def probe_outputs(task: TaskData, config: RunConfig, seed: int, *, progress: bool = True) -> pd.DataFrame:
    """Probes: a head per layer trained on the frozen pre-trained (not fine-tuned) backbone."""
    spec = _exit_spec(task, config, "probe")
    folder = model_folder(config.cache, spec, config.train, seed, task, asdict(config.heads))

    def build():
        x, tx, y, ty = _frozen_features(load_encoder(config.backbone, spec.num_layers), task, config)
        heads, _ = train_heads(x, y, tx, ty, layers=list(range(spec.num_layers)), num_labels=task.num_labels,
                               metric=task.spec.metric, config=config.heads, seed=seed,
                               init_dense=backbone_pooler(spec), progress=progress)
        model, tokenizer = probe_model(spec, heads), load_tokenizer(config.backbone)
        model.save_pretrained(folder / "best", tokenizer=tokenizer)
        record(folder, "best")
        return model, tokenizer
    return cached_outputs(folder, build, task, config, seed)


def joint_model(task: TaskData, config: RunConfig, seed: int, kind: str = "pabee", *,
                progress: bool = True) -> tuple[Path, pd.DataFrame]:
    """A multi-exit model trained jointly with its backbone (`kind` in JOINT_KINDS): per-layer classifiers on a
    shared pooler, on PABEE's weighted objective, BERxiT's alternating one or the learned-weights mutual
    distillation (`JointObjective`)."""
    spec = _exit_spec(task, config, kind)
    extra = (asdict(config.distill),) if kind == "mutual" else ()
    folder = model_folder(config.cache, spec, config.train, seed, task, *extra)

    def build():
        fit(lambda: MultiExitModel.build_pabee(spec, seed=seed),
            pabee_loss if kind == "pabee" else JointObjective(kind, config.distill), task, config.train, seed=seed,
            folder=folder, desc=f"train {kind} seed {seed} on {task.spec.name}", progress=progress)
        return MultiExitModel.from_pretrained(folder / "best"), load_tokenizer(config.backbone)
    return folder, cached_outputs(folder, build, task, config, seed)


def pabee_model(task: TaskData, config: RunConfig, seed: int, *, progress: bool = True) -> tuple[Path, pd.DataFrame]:
    """PABEE: per-layer classifiers on a shared pooler, trained jointly with the backbone."""
    return joint_model(task, config, seed, "pabee", progress=progress)


def early_exit_outputs(task: TaskData, config: RunConfig, *, progress: bool = True) -> pd.DataFrame:
    """DeeBERT, PABEE, probes and FastBERT's self-distilled off-ramps on the full backbone, every seed, and each
    of `config.objectives` (BERxiT, mutual): their outputs at every exit."""
    frames = []
    for seed in config.seeds:
        states = frozen_states(task, config, seed, progress=progress)  # one frozen pass for both off-ramp models
        frames += [deebert_model(task, config, seed, states=states, progress=progress)[1],
                   probe_outputs(task, config, seed, progress=progress),
                   pabee_model(task, config, seed, progress=progress)[1],
                   fastbert_model(task, config, seed, states=states, progress=progress)[1]]
        frames += [joint_model(task, config, seed, kind, progress=progress)[1] for kind in config.objectives]
    return validate_outputs(pd.concat(frames, ignore_index=True))
