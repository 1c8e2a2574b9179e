"""The main job: train complete models of several depths, store every prediction, summarise.

`reproduce` writes into its output folder:

- `outputs.parquet`        every tune/test example x model x exit (schema in `workbench.outputs`);
- `complete_models.csv/.md` task metric and layer speed-up per depth (mean and sd over seeds);
- `config.json`            the full run configuration, task source and notes, package versions, git commit;
- `cache/`                 trained checkpoints and their predictions, keyed by config and data hash,
                           so a rerun reuses them and a changed option or data file retrains.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .batching import encode
from .config import TrainConfig, get_preset
from .metrics import task_metric
from .earlyexit import (HeadTrainConfig, MultiExitModel, MultiExitSpec, backbone_pooler, deebert_from_complete,
                        pabee_loss, pooled_features, probe_model, train_heads)
from .models import (CompleteModel, ModelSpec, backbone_layers, load_checkpoint_tokenizer, load_encoder,
                     load_tokenizer)
from .outputs import outputs_frame, validate_outputs
from .store import environment, read_json, write_json, write_parquet, write_table
from .tasks import TaskData, load_files, load_task
from .training import fit, limit_rows, model_folder, predict_logits, train_complete_model

EVAL_SPLITS = ("tune", "test")


@dataclass(frozen=True)
class TaskOptions:
    """Where a task's data comes from (see `workbench.tasks.load_task`)."""
    name: str = "rt"                 # registry name, e.g. 'rt', 'sst2', 'mrpc'
    glue_dir: str | None = None      # folder in the official GLUE download layout
    data_dir: str = "data"           # cache of downloaded corpora (the built-in task)
    split_seed: int = 0              # seed of the tune/test (and rt train) split
    tune_from: str = "dev"           # GLUE: 'dev' (halves of dev) or 'train' (carved from train)
    source: str = "files"            # 'files' or 'hub' (Hugging Face datasets, needs a hub)
    train_file: str | None = None    # the user's own data: train file (CSV, TSV or JSONL) ...
    tune_file: str | None = None     # ... optional tune file (else carved from train) ...
    test_file: str | None = None     # ... and test file
    text_col: str = "text"           # column of the (first) text in the user's files
    text_b_col: str | None = None    # column of the second text, for pair tasks
    label_col: str = "label"         # column of the label
    metric: str = "accuracy"         # metric of the user's task

    def load(self) -> TaskData:
        if self.train_file or self.test_file:
            if not (self.train_file and self.test_file):
                raise ValueError("your own data needs both --train-file and --test-file (--tune-file is optional)")
            return load_files(train=self.train_file, tune=self.tune_file, test=self.test_file, text_col=self.text_col,
                              text_b_col=self.text_b_col, label_col=self.label_col, name=self.name,
                              metric=self.metric, split_seed=self.split_seed)
        return load_task(self.name, glue_dir=self.glue_dir, data_dir=self.data_dir, split_seed=self.split_seed,
                         tune_from=self.tune_from, source=self.source)


@dataclass(frozen=True)
class RunConfig:
    """Everything `reproduce` needs; saved as config.json."""
    task: TaskOptions = field(default_factory=TaskOptions)
    preset: str = "quick"            # name of the preset the training settings came from
    backbone: str = "minilm"         # encoder alias, Hugging Face name or folder
    pooling: str | None = None       # 'cls' | 'mean' | None = backbone's convention
    depths: tuple[int, ...] = (1, 2, 6)
    seeds: tuple[int, ...] = (0,)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "runs/default"
    cache_dir: str | None = None     # default: <out>/cache

    @classmethod
    def from_preset(cls, preset: str, **changes) -> "RunConfig":
        p = get_preset(preset)
        base = cls(preset=p.name, backbone=p.backbone, depths=p.depths, train=p.train)
        return cls(**{**base.__dict__, **{k: v for k, v in changes.items() if v is not None}})

    @property
    def cache(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.out) / "cache"


def predict_split(model, tokenizer, frame: pd.DataFrame, *, split: str, seed: int, max_length: int,
                  batch_size: int = 64) -> tuple[pd.DataFrame, int]:
    """Outputs rows of a complete or multi-exit model over one split, and how many texts were truncated."""
    encoded = encode(tokenizer, frame, max_length)
    logits = predict_logits(model, encoded, batch_size=batch_size)
    common = dict(split=split, example_ids=frame["example_id"], labels=frame["label"], seed=seed,
                  model=model.spec.name, tokens=encoded.lengths)
    if logits.ndim == 2:
        rows = outputs_frame(logits, layer=model.spec.depth, **common)
    else:  # one block of rows per exit
        rows = pd.concat([outputs_frame(logits[:, j], layer=j + 1, **common) for j in range(logits.shape[1])],
                         ignore_index=True)
    return rows, encoded.truncated


def cached_outputs(folder: Path, model_fn, task: TaskData, config: RunConfig, seed: int) -> pd.DataFrame:
    """The tune and test outputs stored in `folder`, computed first with `model_fn()` -> (model, tokenizer)
    when absent."""
    cached = folder / "outputs.parquet"
    if not cached.is_file():
        model, tokenizer = model_fn()
        parts = []
        for split in EVAL_SPLITS:
            frame = limit_rows(task.splits[split], config.train.eval_limit)
            rows, truncated = predict_split(model, tokenizer, frame, split=split, seed=seed,
                                            max_length=config.train.max_length,
                                            batch_size=config.train.eval_batch_size)
            if truncated:
                tqdm.write(f"{task.spec.name}/{split}: truncated {truncated} of {len(frame)} texts "
                           f"to {config.train.max_length} tokens")
            parts.append(rows)
        write_parquet(cached, pd.concat(parts, ignore_index=True))
    return pd.read_parquet(cached)


def complete_model(task: TaskData, config: RunConfig, depth: int, seed: int, *,
                   progress: bool = True) -> tuple[Path, pd.DataFrame]:
    """Train (or reuse) one complete model; its cache folder and its tune/test outputs."""
    spec = ModelSpec(backbone=config.backbone, depth=depth, num_labels=task.num_labels, pooling=config.pooling,
                     dropout=config.train.dropout).resolved()
    folder = model_folder(config.cache, spec, config.train, seed, task)

    def load():
        train_complete_model(spec, task, config.train, seed=seed, folder=folder, progress=progress)
        return CompleteModel.from_pretrained(folder / "best"), load_checkpoint_tokenizer(folder / "best", spec)
    return folder, cached_outputs(folder, load, task, config, seed)


def complete_model_outputs(task: TaskData, config: RunConfig, *, progress: bool = True) -> pd.DataFrame:
    """Train (or reuse) every depth x seed and return their outputs on the tune and test splits."""
    frames = [complete_model(task, config, depth, seed, progress=progress)[1]
              for seed in config.seeds for depth in config.depths]
    return validate_outputs(pd.concat(frames, ignore_index=True))


def early_exit_outputs(task: TaskData, config: RunConfig, *, heads: HeadTrainConfig = HeadTrainConfig(),
                       progress: bool = True) -> pd.DataFrame:
    """DeeBERT, PABEE and probes on the full backbone, every seed: their outputs at every exit."""
    layers = backbone_layers(config.backbone)
    tokenizer = load_tokenizer(config.backbone)
    train = limit_rows(task.splits["train"], config.train.train_limit)
    tune = limit_rows(task.splits["tune"], config.train.eval_limit)
    features_of = {}

    def features(encoder, key):  # pooled states of a frozen encoder on train and tune, computed once
        if key not in features_of:
            pooling = ModelSpec(backbone=config.backbone, pooling=config.pooling).resolved().pooling
            features_of[key] = tuple(pooled_features(encoder, pooling, encode(tokenizer, split, config.train.max_length))
                                     for split in (train, tune))
        return features_of[key]

    frames = []
    for seed in config.seeds:
        spec = MultiExitSpec(kind="deebert", backbone=config.backbone, num_layers=layers, num_labels=task.num_labels,
                             pooling=config.pooling, dropout=config.train.dropout).resolved()
        stage1, _ = complete_model(task, config, layers, seed, progress=progress)

        def deebert():
            complete = CompleteModel.from_pretrained(stage1 / "best")
            x, tx = features(complete.encoder, ("deebert", seed))
            trained, _ = train_heads(x, train["label"].to_numpy(), tx, tune["label"].to_numpy(),
                                     layers=list(range(layers - 1)), num_labels=task.num_labels,
                                     metric=task.spec.metric, config=heads, seed=seed,
                                     init_dense=complete.head.dense, progress=progress)
            return deebert_from_complete(complete, trained), tokenizer
        folder = model_folder(config.cache, spec, config.train, seed, task, asdict(heads), stage1.name)
        frames.append(cached_outputs(folder, deebert, task, config, seed))

        probe_spec = replace(spec, kind="probe")

        def probes():
            x, tx = features(load_encoder(config.backbone, layers), "probe")  # the pre-trained encoder
            trained, _ = train_heads(x, train["label"].to_numpy(), tx, tune["label"].to_numpy(),
                                     layers=list(range(layers)), num_labels=task.num_labels,
                                     metric=task.spec.metric, config=heads, seed=seed,
                                     init_dense=backbone_pooler(probe_spec), progress=progress)
            return probe_model(probe_spec, trained), tokenizer
        folder = model_folder(config.cache, probe_spec, config.train, seed, task, asdict(heads))
        frames.append(cached_outputs(folder, probes, task, config, seed))

        pabee_spec = replace(spec, kind="pabee")
        folder = model_folder(config.cache, pabee_spec, config.train, seed, task)

        def pabee():
            fit(lambda: MultiExitModel.build_pabee(pabee_spec, seed=seed), pabee_loss, task, config.train,
                seed=seed, folder=folder, desc=f"train pabee seed {seed} on {task.spec.name}", progress=progress)
            return MultiExitModel.from_pretrained(folder / "best"), tokenizer
        frames.append(cached_outputs(folder, pabee, task, config, seed))
    return validate_outputs(pd.concat(frames, ignore_index=True))


def summarize_depths(outputs: pd.DataFrame, *, metric: str, full_layers: int, split: str = "test") -> pd.DataFrame:
    """Task metric per complete model (mean and sd over seeds) with its layer speed-up L / k."""
    rows = []
    for (model, layer), group in outputs[outputs["split"] == split].groupby(["model", "layer"], sort=False):
        per_seed = group.groupby("seed").apply(lambda g: task_metric(metric, g["label"], g["pred"]),
                                               include_groups=False)
        rows.append({"model": model, "layers": int(layer), "metric_name": metric,
                     "metric": float(per_seed.mean()), "metric_sd": float(per_seed.std(ddof=1)) if len(per_seed) > 1
                     else 0.0, "seeds": len(per_seed), "examples": int(group["example_id"].nunique()),
                     "speedup_layers": full_layers / layer})
    return pd.DataFrame(rows).sort_values("layers").reset_index(drop=True)


def reproduce(config: RunConfig, *, progress: bool = True) -> dict[str, Path]:
    """Run the main job described in the module docstring; returns the paths it wrote."""
    task = config.task.load()
    for note in task.notes:
        tqdm.write(f"{task.spec.name}: {note}")
    out = Path(config.out)
    outputs = complete_model_outputs(task, config, progress=progress)
    full_layers = backbone_layers(config.backbone)
    summary = summarize_depths(outputs, metric=task.spec.metric, full_layers=full_layers)
    paths = {"outputs": write_parquet(out / "outputs.parquet", outputs)}
    write_table(out / "complete_models", summary)
    paths["summary"] = out / "complete_models.csv"
    paths["config"] = write_json(out / "config.json", {
        "run": asdict(config), "task": {"name": task.spec.name, "source": task.source, "notes": list(task.notes),
                                        "fingerprint": task.fingerprint(), "split_seed": task.split_seed,
                                        "tune_from": task.tune_from,
                                        "sizes": {k: len(v) for k, v in task.splits.items()}},
        "full_layers": full_layers, "environment": environment()})
    print(f"\n{task.spec.name} ({task.spec.metric} on the test split, {config.backbone}, "
          f"seeds {list(config.seeds)}):")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"\nwrote {out / 'outputs.parquet'}, {out / 'complete_models.csv'}, {out / 'config.json'}")
    return paths


def load_run(folder: str | Path) -> tuple[pd.DataFrame, dict]:
    """The outputs table and config.json of a finished run folder."""
    folder = Path(folder)
    if not (folder / "outputs.parquet").is_file():
        raise FileNotFoundError(f"{folder} holds no outputs.parquet; run `python -m workbench reproduce --out "
                                f"{folder}` first")
    return pd.read_parquet(folder / "outputs.parquet"), read_json(folder / "config.json")
