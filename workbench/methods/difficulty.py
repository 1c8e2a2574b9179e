"""Difficulty labels and the difficulty-aware regularizer of CascadeBERT.

Difficulty labels are binary (easy / hard) per training example, derived from a small member's
correctness. The paper's rule is not published (its released file says 5 seeds, 2 levels), so the
rule is an option:

- `rule='seeds'` (default): easy = correct in all k runs of the small member trained with
  different seeds, judged on the training set itself;
- `rule='kfold'`: easy = correct when held out, from k-fold cross-fitted runs (each example is
  judged by a model that never saw it, which labels more examples hard).

The regularizer (code-exact to the reference implementation): conf = max softmax probability of
the member. Within a batch, each easy example i is paired with one hard example j drawn uniformly
with replacement, and

    L_DA = mean_i max(0, eps - (conf_i - conf_j)),     zero when the batch lacks either kind,

added to the member's cross-entropy with weight lambda. With two classes conf lies in [0.5, 1],
so eps = 0.5 keeps the hinge active on every pair.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from workbench.config import DifficultyConfig


def easy_from_runs(correct: np.ndarray) -> np.ndarray:
    """Easy = correct in every run: [runs, n] booleans -> [n] booleans.

    >>> easy_from_runs(np.array([[True, True, False], [True, False, False]])).tolist()
    [True, False, False]
    """
    correct = np.asarray(correct, dtype=bool)
    if correct.ndim != 2:
        raise ValueError(f"expected correctness of shape [runs, n], got {correct.shape}")
    return correct.all(axis=0)


def kfold_assignment(n: int, folds: int, *, seed: int = 0) -> np.ndarray:
    """Fold id in range(folds) for each of n examples: a seeded permutation cut into near-equal folds."""
    if folds < 2 or folds > n:
        raise ValueError(f"folds must be in [2, {n}], got {folds}")
    fold = np.empty(n, dtype=np.int64)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    return fold


def difficulty_aware_loss(confidence: torch.Tensor, easy: torch.Tensor, *, margin: float,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """L_DA = mean over easy i of max(0, margin - (conf_i - conf_j)), j a hard example drawn uniformly
    with replacement for each i; 0 when the batch has no easy or no hard example.

    confidence: [batch] max softmax probabilities; easy: [batch] bool.
    """
    easy = easy.bool()
    easy_conf, hard_conf = confidence[easy], confidence[~easy]
    if len(easy_conf) == 0 or len(hard_conf) == 0:
        return confidence.sum() * 0.0  # keeps the graph and the dtype
    partner = torch.randint(len(hard_conf), (len(easy_conf),), generator=generator)
    return torch.clamp(margin - (easy_conf - hard_conf[partner]), min=0.0).mean()


class DifficultyAwareObjective:
    """Cross-entropy + weight * L_DA for a complete model; `easy` holds the training examples' labels
    in the order of the training split that `fit` encodes. Pass an instance as `fit`'s loss_fn. With a
    `teacher` (see DistilledObjective) the cross-entropy becomes the distillation loss."""

    def __init__(self, easy: np.ndarray, config: DifficultyConfig, *, seed: int = 0,
                 teacher: "DistilledObjective | None" = None):
        self.easy = torch.as_tensor(np.asarray(easy, dtype=bool))
        self.config = config
        self.seed = seed
        self.teacher = teacher

    def __call__(self, model: nn.Module, batch: dict, labels: torch.Tensor, idx: np.ndarray,
                 step: int = 0) -> torch.Tensor:
        logits = model(**batch).logits  # [batch, C]
        confidence = torch.softmax(logits, dim=-1).max(dim=-1).values
        # partners drawn from a generator seeded by the batch itself, so a resumed run draws the same ones
        generator = torch.Generator().manual_seed(hash((self.seed, len(idx), *np.asarray(idx).tolist())) % 2**31)
        regularizer = difficulty_aware_loss(confidence, self.easy[torch.as_tensor(idx)], margin=self.config.margin,
                                            generator=generator)
        base = (nn.functional.cross_entropy(logits, labels) if self.teacher is None
                else self.teacher.loss(logits, labels, idx))
        return base + self.config.weight * regularizer


class DistilledObjective:
    """A complete model as the student of a teacher (knowledge distillation, Hinton et al., 2015, as DistilBERT
    and TinyBERT train their students): `self_distillation_loss` of its logits against the teacher's logits
    `teacher` [n, C] on the training examples, in the order `fit` encodes them. Pass an instance as `fit`'s
    loss_fn."""

    def __init__(self, teacher: np.ndarray, distill):
        self.teacher = torch.tensor(np.asarray(teacher, dtype=np.float32))
        self.distill = distill

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
        from workbench.models.multiexit import self_distillation_loss
        return self_distillation_loss(logits, self.teacher[torch.as_tensor(idx)], labels, self.distill)

    def __call__(self, model: nn.Module, batch: dict, labels: torch.Tensor, idx: np.ndarray,
                 step: int = 0) -> torch.Tensor:
        return self.loss(model(**batch).logits, labels, idx)
