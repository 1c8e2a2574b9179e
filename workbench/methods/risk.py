"""Thresholds that come with a guarantee: Learn-then-Test (Angelopoulos et al., 2021), the way CALM (Schuster
et al., NeurIPS 2022) applies it to early exit.

The user tolerates a drop of `delta` accuracy points against the full model, with confidence 1 - `eps`. At a
threshold lambda an example is harmed when it stops at a stage whose answer is wrong while the full model's
(the last stage's) is right. The accuracy drop is the harm rate minus the rate of the opposite case, so it is
at most the harm rate R(lambda). Learn-then-Test tests H_lambda: R(lambda) > delta on the calibration split
with the exact binomial p-value

    p(lambda) = P(Binomial(n, delta) <= n * R_hat(lambda)),

over a grid fixed before seeing the data, in a fixed sequence from the most conservative threshold (nobody
stops early, R = 0) down to cheaper ones, and stops at the first p > eps. Fixed-sequence testing controls the
family-wise error at eps with no correction, so with probability at least 1 - eps over the calibration draw
the chosen threshold (the cheapest one accepted) has R <= delta, hence an accuracy drop of at most delta, on
the distribution the calibration split came from.

The guarantee is on accuracy; for tasks scored by F1 or MCC it still bounds the accuracy drop, not the
task metric's. It holds for each (seed, split) draw; across many draws at most a share eps of the chosen
thresholds may exceed delta, which `violation_share` measures.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from workbench.methods.signals import Scored, stop


@dataclass(frozen=True)
class Risk:
    """A tolerated accuracy drop against the full model and how sure the guarantee must be."""
    delta: float  # points of accuracy (0-100), e.g. 1.0
    eps: float    # allowed chance that the drop on the distribution exceeds delta, e.g. 0.1

    def __post_init__(self):
        if not 0.0 < self.delta < 100.0:
            raise ValueError(f"the tolerated drop delta is in accuracy points and must lie in (0, 100), got "
                             f"{self.delta}; e.g. --risk 1,0.1 for at most 1 point below the full model, 90% sure")
        if not 0.0 < self.eps < 1.0:
            raise ValueError(f"eps is the allowed chance of exceeding delta and must lie in (0, 1), got {self.eps}; "
                             "e.g. 0.1 for 90% sure")

    @classmethod
    def parse(cls, text: str) -> "Risk":
        """'DELTA,EPS', e.g. '1,0.1'."""
        parts = text.split(",")
        try:
            delta, eps = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"--risk takes DELTA,EPS (accuracy points, chance), e.g. 1,0.1; got {text!r}") from None
        return cls(delta, eps)

    @property
    def label(self) -> str:
        return f"risk {self.delta:g},{self.eps:g}"


@dataclass(frozen=True)
class RiskChoice:
    """The threshold Learn-then-Test accepted, and what it saw on the calibration split."""
    threshold: float
    harm_rate: float  # R_hat: share of calibration examples harmed at this threshold
    p_value: float
    n: int
    tested: int       # thresholds tested in sequence, the first one failing included


def risk_grid(scored: Scored) -> np.ndarray:
    """Thresholds from the most conservative down, fixed by the score's range, not by the data: max
    probabilities lie in [0, 1]; agreement sums in [0, m]."""
    top = float(scored.score.shape[1]) if scored.signal == "agreement" else 1.0
    grid = np.concatenate([np.linspace(0.0, 1.0, 201), 1.0 - 10.0 ** -np.arange(3, 7)]) * top
    return np.concatenate([[np.inf], np.unique(grid)[::-1]])


def harm(scored: Scored, labels: np.ndarray, threshold: float, full_pred: np.ndarray | None = None) -> np.ndarray:
    """[n] True where the example stops at a wrong answer and the full model's answer (`full_pred`; by default
    the signal's answer at the last stage) is right."""
    rows = np.arange(len(labels))
    answer = scored.pred[rows, stop(scored, threshold)]
    full_pred = scored.pred[:, -1] if full_pred is None else full_pred
    return (answer != labels) & (full_pred == labels)


def learn_then_test(scored: Scored, labels: np.ndarray, risk: Risk,
                    full_pred: np.ndarray | None = None) -> RiskChoice | None:
    """The cheapest threshold of `risk_grid` that fixed-sequence testing accepts on this calibration split;
    None when even the first (nobody stops early) cannot be accepted: the split has too few examples for
    this delta and eps (with R_hat = 0, p = (1 - delta)^n must be <= eps). Pass the full model's own answers
    as `full_pred` when the signal's last-stage answer is not the full model's (an ensemble, an average)."""
    n = len(labels)
    d = risk.delta / 100.0
    chosen = None
    tested = 0
    for threshold in risk_grid(scored):
        tested += 1
        harmed = int(harm(scored, labels, threshold, full_pred).sum())
        p = float(binom.cdf(harmed, n, d))
        if p > risk.eps:
            break
        chosen = RiskChoice(float(threshold), harmed / n, p, n, tested)
    return None if chosen is None else RiskChoice(chosen.threshold, chosen.harm_rate, chosen.p_value, n, tested)


def fewest_examples(risk: Risk) -> int:
    """The calibration size below which no threshold can be accepted: the least n with (1 - delta)^n <= eps."""
    return int(np.ceil(np.log(risk.eps) / np.log(1.0 - risk.delta / 100.0)))


def violation_share(drops: np.ndarray, risk: Risk) -> float:
    """Share of realised accuracy drops (points, one per seed and split) above delta; the guarantee says it
    should be at most eps, up to sampling noise."""
    drops = np.asarray(drops, dtype=np.float64)
    return float(np.mean(drops > risk.delta)) if len(drops) else float("nan")
