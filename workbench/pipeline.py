"""Train-once stages of the main job: every model of the study, each cached with its outputs.

Each stage returns the model's rows of the outputs table (tune and test splits) and keeps its
checkpoint and outputs in a cache folder named by a hash of the model spec, training config, seed
and data fingerprint (plus any stage settings), so a rerun reuses them and a changed option or
data file retrains. `workbench.study.reproduce` runs the stages and builds the tables.

Stages: complete models of any depth; DeeBERT (stage 2 on the complete L-layer model), PABEE and
probes; difficulty labels of a small member and its difficulty-aware retraining.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .batching import encode
from .config import TrainConfig, get_preset
from .difficulty import DifficultyAwareObjective, DifficultyConfig, easy_from_runs, kfold_assignment
from .earlyexit import (HeadTrainConfig, MultiExitModel, MultiExitSpec, backbone_pooler, deebert_from_complete,
                        pabee_loss, pooled_features, probe_model, train_heads)
from .models import (CompleteModel, ModelSpec, backbone_layers, load_checkpoint_tokenizer, load_encoder,
                     load_tokenizer)
from .outputs import outputs_frame, validate_outputs
from .store import content_hash, write_parquet
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
    study: bool = True               # also early exit, cascades, calibration (False: complete models only)
    targets: tuple[float, ...] = (2.0, 3.0, 4.0)     # target speed-ups (in layers) of the main table
    cascades: tuple[tuple[int, ...], ...] | None = None  # member depths; None = see cascade_depths
    difficulty: DifficultyConfig = field(default_factory=DifficultyConfig)
    heads: HeadTrainConfig = field(default_factory=HeadTrainConfig)
    sufficiency_target: float = 3.0  # DeeBERT operating point whose exits the sufficiency analysis inspects
    small_backbone: str | None = None  # backbone of the non-final cascade members (e.g. a separately
                                       # pre-trained narrower model); None = `backbone`

    @classmethod
    def from_preset(cls, preset: str, **changes) -> "RunConfig":
        p = get_preset(preset)
        base = cls(preset=p.name, backbone=p.backbone, depths=p.depths, seeds=p.seeds, train=p.train)
        return cls(**{**base.__dict__, **{k: v for k, v in changes.items() if v is not None}})

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        """Rebuild a config saved in a run's config.json (its "run" entry)."""
        data = dict(data)
        data["task"] = TaskOptions(**data["task"])
        data["train"] = TrainConfig(**data["train"])
        data["difficulty"] = DifficultyConfig(**data["difficulty"])
        data["heads"] = HeadTrainConfig(**data["heads"])
        for key in ("depths", "seeds", "targets"):
            data[key] = tuple(data[key])
        if data.get("cascades") is not None:
            data["cascades"] = tuple(tuple(c) for c in data["cascades"])
        return cls(**data)

    @property
    def cache(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.out) / "cache"

    def cascade_depths(self, full_layers: int) -> tuple[tuple[int, ...], ...]:
        """Member depths of every cascade, checked: increasing, ending at most at the full depth.

        Default: 1L>L, 2L>L and 1L>2L>L; from 12 layers on the paper's 2L>L comes first (the first
        cascade is the one the executor check and the benchmark run)."""
        L = full_layers
        cascades = self.cascades or (((2, L), (1, L), (1, 2, L)) if L >= 12 else ((1, L), (2, L), (1, 2, L)))
        for members in cascades:
            if len(members) < 2 or list(members) != sorted(set(members)) or members[-1] > full_layers:
                raise ValueError(f"cascade {members} must list at least two increasing depths <= {full_layers}")
        return tuple(tuple(m) for m in cascades)

    def trained_depths(self, full_layers: int) -> tuple[int, ...]:
        """Complete models of `backbone` to train: the requested depths plus every cascade member on it."""
        if not self.study:
            return tuple(sorted(set(self.depths)))
        cascades = self.cascade_depths(full_layers)
        members = {m[-1] for m in cascades} | (set() if self.small_backbone else {d for m in cascades for d in m})
        return tuple(sorted(set(self.depths) | members | {full_layers}))

    def small_depths(self, full_layers: int) -> tuple[int, ...]:
        """Depths of the non-final cascade members (the ones the regularizer trains)."""
        return tuple(sorted({d for m in self.cascade_depths(full_layers) for d in m[:-1]}))

    def member_backbone(self, *, final: bool) -> str:
        return self.backbone if final or not self.small_backbone else self.small_backbone


def member_name(config: RunConfig, depth: int, *, backbone: str | None = None) -> str:
    """Outputs-table name of a complete model: 'complete-<k>L', or 'small-<k>L' on the small backbone."""
    return f"small-{depth}L" if backbone and backbone != config.backbone else f"complete-{depth}L"


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


def cached_outputs(folder: Path, model_fn, task: TaskData, config: RunConfig, seed: int, *,
                   splits: tuple[str, ...] = EVAL_SPLITS, name: str | None = None,
                   filename: str = "outputs.parquet") -> pd.DataFrame:
    """The outputs on `splits` stored in `folder`, computed first with `model_fn()` -> (model, tokenizer)
    when absent; `name` overrides the model column (e.g. 'complete-1L-da')."""
    cached = folder / filename
    if not cached.is_file():
        model, tokenizer = model_fn()
        parts = []
        for split in splits:
            limit = config.train.train_limit if split == "train" else config.train.eval_limit
            frame = limit_rows(task.splits[split], limit)
            rows, truncated = predict_split(model, tokenizer, frame, split=split, seed=seed,
                                            max_length=config.train.max_length,
                                            batch_size=config.train.eval_batch_size)
            if truncated and split != "train":
                tqdm.write(f"{task.spec.name}/{split}: truncated {truncated} of {len(frame)} texts "
                           f"to {config.train.max_length} tokens")
            parts.append(rows.assign(model=name) if name else rows)
        write_parquet(cached, pd.concat(parts, ignore_index=True))
    return pd.read_parquet(cached)


def complete_model(task: TaskData, config: RunConfig, depth: int, seed: int, *, backbone: str | None = None,
                   progress: bool = True) -> tuple[Path, pd.DataFrame]:
    """Train (or reuse) one complete model (of `backbone`, default the run's); its cache folder and its
    tune/test outputs."""
    backbone = backbone or config.backbone
    spec = ModelSpec(backbone=backbone, depth=depth, num_labels=task.num_labels, pooling=config.pooling,
                     dropout=config.train.dropout).resolved()
    folder = model_folder(config.cache, spec, config.train, seed, task)

    def load():
        train_complete_model(spec, task, config.train, seed=seed, folder=folder, progress=progress)
        return CompleteModel.from_pretrained(folder / "best"), load_checkpoint_tokenizer(folder / "best", spec)
    name = member_name(config, depth, backbone=backbone)
    return folder, cached_outputs(folder, load, task, config, seed, name=None if name == spec.name else name)


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
    train = limit_rows(task.splits["train"], config.train.train_limit)
    correct = np.zeros((rule.runs, len(train)), dtype=bool)
    if rule.rule == "seeds":
        for run in range(rule.runs):
            folder, _ = complete_model(task, config, depth, run, backbone=backbone, progress=progress)
            spec = ModelSpec.from_checkpoint(folder / "best")
            rows = cached_outputs(folder, lambda: (CompleteModel.from_pretrained(folder / "best"),
                                                   load_checkpoint_tokenizer(folder / "best", spec)),
                                  task, config, run, splits=("train",), filename="train_outputs.parquet")
            correct[run] = rows.set_index("example_id").loc[train["example_id"], "correct"].to_numpy()
        return easy_from_runs(correct)
    fold = kfold_assignment(len(train), rule.runs, seed=0)
    held_out = np.zeros(len(train), dtype=bool)
    for f in range(rule.runs):
        fold_task = replace(task, splits={**task.splits, "train": train[fold != f].reset_index(drop=True),
                                          "held_out": train[fold == f].reset_index(drop=True)})
        folder, _ = complete_model(fold_task, config, depth, 0, backbone=backbone, progress=progress)
        spec = ModelSpec.from_checkpoint(folder / "best")
        rows = cached_outputs(folder, lambda: (CompleteModel.from_pretrained(folder / "best"),
                                               load_checkpoint_tokenizer(folder / "best", spec)),
                              fold_task, replace(config, train=replace(config.train, eval_limit=None)), 0,
                              splits=("held_out",), filename="held_out_outputs.parquet")
        held_out[fold == f] = rows.set_index("example_id").loc[train["example_id"][fold == f], "correct"].to_numpy()
    return held_out


def da_member(task: TaskData, config: RunConfig, depth: int, seed: int, easy: np.ndarray, *,
              backbone: str | None = None, progress: bool = True) -> tuple[Path, pd.DataFrame]:
    """A complete `depth`-layer model trained with the difficulty-aware regularizer; outputs named
    'complete-<depth>L-da' (or 'small-<depth>L-da' on the small backbone)."""
    backbone = backbone or config.backbone
    spec = ModelSpec(backbone=backbone, depth=depth, num_labels=task.num_labels, pooling=config.pooling,
                     dropout=config.train.dropout).resolved()
    folder = model_folder(config.cache, replace(spec), config.train, seed, task, asdict(config.difficulty),
                          content_hash(easy.tolist()), "da")
    objective = DifficultyAwareObjective(easy, config.difficulty, seed=seed)

    def load():
        fit(lambda: CompleteModel.build(spec, seed=seed), objective, task, config.train, seed=seed, folder=folder,
            desc=f"train {spec.name}+DA seed {seed} on {task.spec.name}", progress=progress)
        return CompleteModel.from_pretrained(folder / "best"), load_checkpoint_tokenizer(folder / "best", spec)
    return folder, cached_outputs(folder, load, task, config, seed,
                                  name=f"{member_name(config, depth, backbone=backbone)}-da")


def _frozen_features(encoder, task: TaskData, config: RunConfig) -> tuple:
    """Pooled states of a frozen encoder on the (limited) train and tune splits, [n, L, H] each."""
    tokenizer = load_tokenizer(config.backbone)
    pooling = ModelSpec(backbone=config.backbone, pooling=config.pooling).resolved().pooling
    splits = (limit_rows(task.splits["train"], config.train.train_limit),
              limit_rows(task.splits["tune"], config.train.eval_limit))
    return tuple(pooled_features(encoder, pooling, encode(tokenizer, split, config.train.max_length))
                 for split in splits) + tuple(split["label"].to_numpy() for split in splits)


def _exit_spec(task: TaskData, config: RunConfig, kind: str) -> MultiExitSpec:
    return MultiExitSpec(kind=kind, backbone=config.backbone, num_layers=backbone_layers(config.backbone),
                         num_labels=task.num_labels, pooling=config.pooling, dropout=config.train.dropout).resolved()


def deebert_model(task: TaskData, config: RunConfig, seed: int, *, easy: np.ndarray | None = None,
                  progress: bool = True) -> tuple[Path, pd.DataFrame]:
    """DeeBERT: stage 1 = the complete L-layer model of this seed; stage 2 = off-ramps on its frozen states.
    With `easy` difficulty labels, the off-ramps also carry the difficulty-aware regularizer ('deebert-da')."""
    spec = _exit_spec(task, config, "deebert")
    stage1, _ = complete_model(task, config, spec.num_layers, seed, progress=progress)
    extra = (asdict(config.difficulty), content_hash(easy.tolist())) if easy is not None else ()
    folder = model_folder(config.cache, spec, config.train, seed, task, asdict(config.heads), stage1.name, *extra)

    def build():
        complete = CompleteModel.from_pretrained(stage1 / "best")
        x, tx, y, ty = _frozen_features(complete.encoder, task, config)
        heads, _ = train_heads(x, y, tx, ty, layers=list(range(spec.num_layers - 1)), num_labels=task.num_labels,
                               metric=task.spec.metric, config=config.heads, seed=seed,
                               init_dense=complete.head.dense, easy=easy, difficulty=config.difficulty,
                               progress=progress)
        model, tokenizer = deebert_from_complete(complete, heads), load_tokenizer(config.backbone)
        model.save_pretrained(folder / "best", tokenizer=tokenizer)
        return model, tokenizer
    return folder, cached_outputs(folder, build, task, config, seed, name="deebert-da" if easy is not None else None)


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
        return model, tokenizer
    return cached_outputs(folder, build, task, config, seed)


def pabee_model(task: TaskData, config: RunConfig, seed: int, *, progress: bool = True) -> tuple[Path, pd.DataFrame]:
    """PABEE: per-layer classifiers on a shared pooler, trained jointly with the backbone."""
    spec = _exit_spec(task, config, "pabee")
    folder = model_folder(config.cache, spec, config.train, seed, task)

    def build():
        fit(lambda: MultiExitModel.build_pabee(spec, seed=seed), pabee_loss, task, config.train, seed=seed,
            folder=folder, desc=f"train pabee seed {seed} on {task.spec.name}", progress=progress)
        return MultiExitModel.from_pretrained(folder / "best"), load_tokenizer(config.backbone)
    return folder, cached_outputs(folder, build, task, config, seed)


def early_exit_outputs(task: TaskData, config: RunConfig, *, progress: bool = True) -> pd.DataFrame:
    """DeeBERT, PABEE and probes on the full backbone, every seed: their outputs at every exit."""
    frames = []
    for seed in config.seeds:
        frames += [deebert_model(task, config, seed, progress=progress)[1],
                   probe_outputs(task, config, seed, progress=progress),
                   pabee_model(task, config, seed, progress=progress)[1]]
    return validate_outputs(pd.concat(frames, ignore_index=True))
