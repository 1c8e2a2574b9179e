"""Training configuration and the three presets (`smoke`, `quick`, `full`).

- `smoke`: the tiny random BERT on a few hundred examples; seconds; for tests and CI.
- `quick`: the packaged all-MiniLM-L6-v2 on a subset of the training split, sized for the whole
  main job to run in about half an hour on 2 CPU cores.
- `full`: the paper's settings (5 epochs, lr 2e-5, batch 16, max length 128, all training data).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from .models import DEFAULT_BACKBONE, TINY_BACKBONE


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
    eval_limit: int | None = None    # use at most this many tune/test examples (smoke preset only)
    evals_per_epoch: int = 1         # tune-split evaluations per epoch; the best one is kept
    eval_batch_size: int = 64        # examples per inference batch
    checkpoint_every: int = 200      # steps between resumable checkpoints


@dataclass(frozen=True)
class Preset:
    """A named bundle: backbone, training settings and the default depths of `reproduce`."""
    name: str
    backbone: str
    train: TrainConfig
    depths: tuple[int, ...]
    seeds: tuple[int, ...]
    description: str


PRESETS: dict[str, Preset] = {
    "smoke": Preset("smoke", TINY_BACKBONE,
                    TrainConfig(epochs=3, lr=3e-3, batch_size=16, max_length=64, train_limit=400,
                                eval_limit=200, checkpoint_every=10),
                    (1, 2, 6), (0,), "tiny random BERT, 400 training examples, 1 seed; seconds"),
    "quick": Preset("quick", DEFAULT_BACKBONE,
                    TrainConfig(epochs=2, lr=5e-5, head_lr=1e-3, batch_size=32, max_length=64, train_limit=2400,
                                evals_per_epoch=2),
                    (1, 2, 6), (0, 1, 2), "all-MiniLM-L6-v2, 2,400 training examples, 2 epochs, head lr 1e-3, 3 seeds; "
                    "about half an hour on 2 CPU cores"),
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
