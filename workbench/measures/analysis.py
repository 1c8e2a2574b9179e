"""Analysis: does an exit signal rank instances by difficulty, is one system better, how far from the oracle.

Three questions from the paper, each a pure function of per-item arrays or of the outputs table
(see :mod:`workbench.runs.outputs`):

- the Difficulty Inversion Score (DIS) of an exit signal: 100 x AUROC of the signal for predicting
  correctness, with ties counted explicitly (probabilities saturate at 1.0);
- paired bootstrap intervals for the difference between two systems on the same items;
- reference lines for a two-member cascade at an escalation budget r: random escalation, the budgeted
  oracle, the oracle ceiling, the share of the random-to-oracle gap a policy closes, and the budget r a
  target speed-up allows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

VERDICTS = ("better", "worse", "indistinguishable")
GAP_TOLERANCE = 1e-9  # oracle and random closer than this (relative) leave no gap to close


def _as_bool(values, name: str) -> np.ndarray:
    """A 1-D boolean array; 0/1 integers are accepted, anything else names the value at fault."""
    values = np.asarray(values).reshape(-1)
    if values.dtype == bool:
        return values
    bad = np.flatnonzero((values != 0) & (values != 1))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name} must be boolean or 0/1; got {values[i].item()!r} at index {i}")
    return values.astype(bool)


def _same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{name_a} has {a.shape[0]} items but {name_b} has {b.shape[0]}; "
                         "both must describe the same items in the same order")


# ----------------------------------------------------------------------------- difficulty inversion score

@dataclass(frozen=True)
class DisResult:
    """Difficulty Inversion Score of one exit signal."""
    dis: float   # 100 x (concordant + 0.5 tied) / pairs; 50 is chance; nan when pairs == 0
    ties: int    # (correct, wrong) pairs whose signal values are exactly equal
    pairs: int   # (correct, wrong) pairs: n_correct x n_wrong


def difficulty_inversion_score(signal, correct) -> DisResult:
    """How well an exit signal orders instances by difficulty (CascadeBERT, Li et al. 2021).

    Over all pairs (i correct, j wrong): DIS = 100 x (#[s_i > s_j] + 0.5 #[s_i = s_j]) / #pairs, which is
    100 x AUROC of the signal for predicting correctness (Mann-Whitney U / (n_correct n_wrong)).
    Computed in O(n log n) with exact integer counts of concordant and tied pairs; ties are equal floats.
    Without any correct or any wrong item there is no pair: returns dis=nan, ties=0, pairs=0.

    >>> difficulty_inversion_score([0.9, 0.8, 0.8, 0.6], [True, True, False, False])
    DisResult(dis=87.5, ties=1, pairs=4)
    """
    signal = np.asarray(signal, dtype=np.float64).reshape(-1)
    correct = _as_bool(correct, "correct")
    _same_length(signal, correct, "signal", "correct")
    nan_at = np.flatnonzero(np.isnan(signal))
    if nan_at.size:
        raise ValueError(f"signal is NaN at index {int(nan_at[0])} ({nan_at.size} NaN value(s))")
    n_correct = int(correct.sum())
    n_wrong = int(correct.size - n_correct)
    pairs = n_correct * n_wrong
    if pairs == 0:
        return DisResult(dis=float("nan"), ties=0, pairs=0)
    values, group = np.unique(signal, return_inverse=True)          # sorted distinct values, [n] -> group
    correct_at = np.bincount(group[correct], minlength=len(values)).astype(np.int64)  # [distinct values]
    wrong_at = np.bincount(group[~correct], minlength=len(values)).astype(np.int64)
    wrong_below = np.concatenate(([0], np.cumsum(wrong_at)[:-1]))   # wrong items with a smaller value
    concordant = int(np.sum(correct_at * wrong_below))
    ties = int(np.sum(correct_at * wrong_at))
    return DisResult(dis=100.0 * (concordant + 0.5 * ties) / pairs, ties=ties, pairs=pairs)


def logit_margin(logits) -> np.ndarray:
    """Top-1 minus top-2 logit per row, [n, C] -> [n]: an exit signal that rarely ties.

    >>> logit_margin([[1.0, 3.0, 2.5], [0.0, -1.0, 0.0]])
    array([0.5, 0. ])
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must be [n, C] with C >= 2 classes; got shape {logits.shape}")
    top2 = np.partition(logits, (-2, -1), axis=1)
    return top2[:, -1] - top2[:, -2]


def dis_table(outputs: pd.DataFrame, *, split: str = "test") -> pd.DataFrame:
    """DIS of every (model, layer, seed) exit of one split of the outputs table.

    Columns: ``model, layer, seed``; ``dis`` on ``confidence`` (max softmax probability) and ``dis_logit``
    on the logit margin (:func:`logit_margin`), with their ``ties`` and ``ties_logit``; ``pairs``
    (n_correct x n_wrong); ``accuracy`` (0-100) and ``n`` (items).
    """
    missing = [c for c in ("split", "model", "layer", "seed", "confidence", "correct") if c not in outputs]
    logit_cols = sorted((c for c in outputs.columns if c.startswith("logit_")), key=lambda c: int(c[6:]))
    if missing or len(logit_cols) < 2:
        raise ValueError(f"outputs table lacks column(s) {missing or ['logit_<class> (at least 2)']}; "
                         f"found {list(outputs.columns)}")
    rows = outputs[outputs["split"] == split]
    if rows.empty:
        raise ValueError(f"outputs table has no rows of split {split!r}; "
                         f"splits present: {sorted(outputs['split'].unique().tolist())}")
    records = []
    for (model, layer, seed), group in rows.groupby(["model", "layer", "seed"], sort=True):
        correct = group["correct"].to_numpy(dtype=bool)
        on_conf = difficulty_inversion_score(group["confidence"].to_numpy(), correct)
        on_margin = difficulty_inversion_score(logit_margin(group[logit_cols].to_numpy()), correct)
        records.append({"model": model, "layer": int(layer), "seed": int(seed), "dis": on_conf.dis,
                        "dis_logit": on_margin.dis, "ties": on_conf.ties, "ties_logit": on_margin.ties,
                        "pairs": on_conf.pairs, "accuracy": 100.0 * float(correct.mean()), "n": len(group)})
    return pd.DataFrame.from_records(records, columns=["model", "layer", "seed", "dis", "dis_logit", "ties",
                                                       "ties_logit", "pairs", "accuracy", "n"])


# ----------------------------------------------------------------------------- paired bootstrap

@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap comparison of system A against system B on the same items."""
    diff: float     # metric(A) - metric(B) on the full sample
    low: float      # lower end of the percentile interval of the difference
    high: float     # upper end
    verdict: str    # 'better' if low > 0, 'worse' if high < 0, else 'indistinguishable'


def _resamples(n: int, n_boot: int, seed: int):
    """n_boot index arrays [n], each n items drawn with replacement; the same for a given seed."""
    if n < 1:
        raise ValueError("cannot bootstrap an empty sample: got 0 items")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be an integer >= 1; got {n_boot!r}")
    rng = np.random.default_rng(seed)
    return (rng.integers(0, n, size=n) for _ in range(n_boot))


ZERO = 1e-9  # interval ends closer to 0 than this are 0: float sums of per-item differences, not a difference


def _summarise(diff: float, diffs: np.ndarray, confidence: float) -> BootstrapResult:
    low, high = np.quantile(diffs, [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    low, high = (0.0 if abs(v) < ZERO else v for v in (low, high))  # a tie summed in another order stays a tie
    verdict = "better" if low > 0 else "worse" if high < 0 else "indistinguishable"
    return BootstrapResult(diff=float(diff), low=float(low), high=float(high), verdict=verdict)


def _check_confidence_level(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence!r}")
    return float(confidence)


def paired_bootstrap(a, b, *, scale: float = 100.0, n_boot: int = 1000, seed: int = 0,
                     confidence: float = 0.95) -> BootstrapResult:
    """Paired bootstrap of the difference of means, scale x (mean(a) - mean(b)), over items.

    ``a`` and ``b`` hold one value per item for two systems on the same items: booleans (correct or
    not) give accuracy differences in points with the default ``scale=100``; per-item scores (loss,
    Brier) with ``scale=1``. Each resample draws n items with replacement and uses the same indices
    for a and b (Efron & Tibshirani 1993; Koehn 2004; Dror et al. 2018). The interval is the percentile
    interval at level ``confidence``. For metrics that are not means (F1, MCC) use
    :func:`paired_bootstrap_metric`; with the same seed both draw the same resamples.

    >>> paired_bootstrap([True, True, True, False], [True, False, True, False], n_boot=200).diff
    25.0
    """
    confidence = _check_confidence_level(confidence)
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    _same_length(a, b, "a", "b")
    per_item = scale * (a - b)                                   # mean of differences = difference of means
    diffs = np.fromiter((per_item[idx].mean() for idx in _resamples(len(per_item), n_boot, seed)),
                        dtype=np.float64, count=n_boot)
    return _summarise(scale * (a.mean() - b.mean()), diffs, confidence)


def paired_bootstrap_metric(labels, pred_a, pred_b, *, metric_fn: Callable[[np.ndarray, np.ndarray], float],
                            n_boot: int = 1000, seed: int = 0, confidence: float = 0.95) -> BootstrapResult:
    """Paired bootstrap of metric_fn(labels, pred_a) - metric_fn(labels, pred_b) over items.

    ``metric_fn(labels, preds) -> float`` is any task metric, e.g. ``workbench.measures.metrics.f1``. Each
    resample draws n items with replacement and scores both systems on the same items; the interval is
    the percentile interval at level ``confidence``. Resamples where the metric is NaN make the interval
    NaN and the verdict 'indistinguishable'.

    >>> from workbench.measures.metrics import f1
    >>> round(paired_bootstrap_metric([1, 1, 0, 0], [1, 1, 0, 1], [1, 0, 0, 0], metric_fn=f1, n_boot=100).diff, 2)
    13.33
    """
    confidence = _check_confidence_level(confidence)
    labels, pred_a, pred_b = (np.asarray(x).reshape(-1) for x in (labels, pred_a, pred_b))
    _same_length(labels, pred_a, "labels", "pred_a")
    _same_length(labels, pred_b, "labels", "pred_b")
    diffs = np.fromiter((metric_fn(labels[idx], pred_a[idx]) - metric_fn(labels[idx], pred_b[idx])
                         for idx in _resamples(len(labels), n_boot, seed)), dtype=np.float64, count=n_boot)
    return _summarise(metric_fn(labels, pred_a) - metric_fn(labels, pred_b), diffs, confidence)


# ----------------------------------------------------------------------------- cascade reference lines

def _members(a_small, a_large) -> tuple[np.ndarray, np.ndarray]:
    a_small, a_large = _as_bool(a_small, "a_small"), _as_bool(a_large, "a_large")
    _same_length(a_small, a_large, "a_small", "a_large")
    if a_small.size == 0:
        raise ValueError("a_small and a_large are empty; pass per-item correctness of both members")
    return a_small, a_large


def _check_budget(r: float) -> float:
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"escalation budget r must be a share in [0, 1]; got {r!r}")
    return float(r)


def random_escalation(a_small, a_large, r: float) -> float:
    """Accuracy (0-100) of escalating a random share r of items: 100 x ((1 - r) P(a_S) + r P(a_L)).

    >>> random_escalation([True, False, False, True], [True, True, False, True], 0.5)
    62.5
    """
    a_small, a_large = _members(a_small, a_large)
    r = _check_budget(r)
    return float(100.0 * ((1.0 - r) * a_small.mean() + r * a_large.mean()))


def oracle_cascade(a_small, a_large, r: float) -> float:
    """Accuracy (0-100) of an oracle that escalates, within budget r, only items the large member fixes.

    100 x (P(a_S) + min(r, P(not a_S and a_L))).

    >>> oracle_cascade([True, False, False, True], [True, True, False, True], 0.1)
    60.0
    """
    a_small, a_large = _members(a_small, a_large)
    r = _check_budget(r)
    return float(100.0 * (a_small.mean() + min(r, float(np.mean(~a_small & a_large)))))


def oracle_ceiling(a_small, a_large) -> float:
    """Best accuracy (0-100) any routing of items between the two members reaches: 100 x P(a_S or a_L).

    >>> oracle_ceiling([True, False, False, True], [True, True, False, False])
    75.0
    """
    a_small, a_large = _members(a_small, a_large)
    return 100.0 * float(np.mean(a_small | a_large))


def gap_closed(metric: float, random_value: float, oracle_value: float, *, min_gap: float = 0.0) -> float:
    """Share of the random-to-oracle gap a policy closes: (metric - random) / (oracle - random).

    0 is no better than random escalation, 1 matches the oracle. nan when oracle and random agree to within
    GAP_TOLERANCE (relative), where rounding alone would decide the share, or when the gap is smaller than
    `min_gap` (the step one test example makes, 100/n points): a share of less than one example's worth is
    noise, and dividing by it gives shares like 10.

    >>> gap_closed(82.0, 80.0, 84.0)
    0.5
    >>> gap_closed(49.2, 48.80, 48.84, min_gap=0.2)
    nan
    """
    if abs(oracle_value - random_value) < min_gap:
        return float("nan")
    if abs(oracle_value - random_value) <= GAP_TOLERANCE * max(1.0, abs(oracle_value)):
        return float("nan")  # no gap to close: a share of it is undefined, not 0 or 1
    return float((metric - random_value) / (oracle_value - random_value))


def escalation_references(labels, pred_small, pred_large, r: float, *,
                          metric_fn: Callable[[np.ndarray, np.ndarray], float], draws: int = 200,
                          seed: int = 0) -> dict[str, float]:
    """Random escalation, budgeted oracle and ceiling of a two-member cascade in any task metric (F1, MCC, ...).

    Escalating an item replaces the small member's prediction by the large member's. `random`: the mean
    metric over `draws` seeded draws of round(r n) items; `oracle`: escalate the items the large member fixes
    (small wrong, large right), at most round(r n) of them in item order; `ceiling`: escalate every such item.
    For accuracy, :func:`random_escalation`, :func:`oracle_cascade` and :func:`oracle_ceiling` are the exact
    values; these agree with them up to the rounding of r n and the randomness of the draws.
    """
    labels, pred_small, pred_large = (np.asarray(x) for x in (labels, pred_small, pred_large))
    r = _check_budget(r)
    n = len(labels)
    k = int(round(r * n))
    fixes = np.flatnonzero((pred_small != labels) & (pred_large == labels))

    def mixed(escalated: np.ndarray) -> float:
        pred = pred_small.copy()
        pred[escalated] = pred_large[escalated]
        return float(metric_fn(labels, pred))

    rng = np.random.default_rng(seed)
    random_value = float(np.mean([mixed(rng.choice(n, size=k, replace=False)) for _ in range(draws)]))
    return {"random": random_value, "oracle": mixed(fixes[:k]), "ceiling": mixed(fixes)}


class BeyondCeiling(ValueError):
    """A target speed-up that a cascade cannot reach even when it escalates nothing."""


def escalation_budget(speedup: float, small_layers: float, large_layers: float, full_layers: float) -> float:
    """Largest share r of items a two-member cascade may escalate and still reach ``speedup``.

    Speed-up = full_layers / (small_layers + r large_layers) (an escalated item pays for both members),
    so r = (full_layers / speedup - small_layers) / large_layers, clipped to [0, 1]. The ceiling is
    full_layers / small_layers (nothing escalated); asking for more raises ValueError.

    >>> escalation_budget(4.0, 2, 12, 12)  # 2L -> 12L at 4x: 1/12 of the items
    0.08333333333333333
    """
    if not speedup > 0:
        raise ValueError(f"speedup must be > 0; got {speedup!r}")
    for name, value in (("small_layers", small_layers), ("large_layers", large_layers),
                        ("full_layers", full_layers)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0; got {value!r}")
    ceiling = full_layers / small_layers
    if speedup > ceiling:
        raise BeyondCeiling(f"speed-up {speedup} exceeds the ceiling {ceiling:g} = full_layers / small_layers "
                         f"({full_layers} / {small_layers}) reached when no item is escalated")
    r = (full_layers / speedup - small_layers) / large_layers
    return float(min(max(r, 0.0), 1.0))
