"""Calibration: top-label ECE, reliability tables and diagrams, temperature scaling, NLL and Brier score.

A model is calibrated when, among the predictions it makes with confidence p, a share p is correct.
Confidence here is the top-label probability (max softmax), correctness is pred == label. ECE uses
10 equal-width bins over [0, 1], the field's standard protocol (Guo et al. 2017; Desai & Durrett 2020),
and matches netcal's ``ECE(bins=10)`` (x 100) bin for bin, edges included.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, logsumexp

STRATEGIES = ("uniform", "quantile")
TABLE_COLUMNS = ("bin", "lower", "upper", "count", "mean_confidence", "accuracy", "gap")


# ----------------------------------------------------------------------------- input checks

def _check_confidence_correct(confidence, correct) -> tuple[np.ndarray, np.ndarray]:
    """Confidence as float [n] within [0, 1], correctness as bool [n]; errors name the value at fault."""
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct).reshape(-1)
    if confidence.shape[0] != correct.shape[0]:
        raise ValueError(f"confidence has {confidence.shape[0]} values but correct has {correct.shape[0]}; "
                         "pass one of each per example")
    if confidence.shape[0] == 0:
        raise ValueError("confidence and correct are empty; calibration needs at least one example")
    outside = np.flatnonzero(~((confidence >= 0.0) & (confidence <= 1.0)))  # also catches NaN
    if outside.size:
        i = int(outside[0])
        raise ValueError(f"confidence must lie within [0, 1]; got {confidence[i].item()!r} at index {i} "
                         f"({outside.size} value(s) outside); pass probabilities, not logits")
    if correct.dtype != bool:
        bad = np.flatnonzero((correct != 0) & (correct != 1))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"correct must be boolean or 0/1; got {correct[i].item()!r} at index {i}")
        correct = correct.astype(bool)
    return confidence, correct


def _check_bins(bins: int, strategy: str) -> None:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be an integer >= 1; got {bins!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")


def _check_logits_labels(logits, labels, name: str = "logits") -> tuple[np.ndarray, np.ndarray]:
    """Scores as float [n, C] and labels as int [n] within [0, C)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if logits.ndim != 2:
        raise ValueError(f"{name} must be 2-D [n, num_labels]; got shape {logits.shape}")
    if logits.shape[0] != labels.shape[0]:
        raise ValueError(f"{name} has {logits.shape[0]} rows but labels has {labels.shape[0]} entries")
    if labels.shape[0] == 0:
        raise ValueError(f"{name} and labels are empty")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class ids; got dtype {labels.dtype}")
    bad = np.flatnonzero((labels < 0) | (labels >= logits.shape[1]))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"label {labels[i]} at index {i} is not a class id in [0, {logits.shape[1]})")
    return logits, labels.astype(np.int64)


# ----------------------------------------------------------------------------- binning and ECE

def _bin_edges(confidence: np.ndarray, bins: int, strategy: str) -> np.ndarray:
    """Edges [bins + 1] from 0 to 1: equal width, or equal mass (quantiles of the confidences)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    if strategy == "quantile":
        edges = np.quantile(confidence, edges)
        edges[0], edges[-1] = 0.0, 1.0
    return edges


def _bin_index(confidence: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each confidence [n]: bin b holds edges[b] <= c < edges[b + 1]; the last bin also holds 1.0."""
    return np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, len(edges) - 2)


def reliability_table(confidence, correct, *, bins: int = 10, strategy: str = "uniform") -> pd.DataFrame:
    """Per-bin count, mean confidence and accuracy of top-label predictions.

    Columns: ``bin`` (0-based), ``lower``, ``upper`` (bin edges), ``count``, ``mean_confidence``,
    ``accuracy``, ``gap = mean_confidence - accuracy`` (all on the 0-1 scale). Every bin is kept; empty
    bins have count 0 and NaN means. Bin b holds ``lower <= confidence < upper``, the last bin also holds
    1.0. ``strategy='uniform'`` uses edges ``np.linspace(0, 1, bins + 1)``; ``'quantile'`` uses the
    confidences' quantiles at those levels with the outer edges set to 0 and 1 (equal mass; repeated
    edges give empty bins). See :func:`ece` for how edges compare with netcal's.

    >>> reliability_table([0.1, 0.3, 0.9, 0.95], [False, True, True, False], bins=2)[["count", "accuracy", "gap"]]
       count  accuracy    gap
    0      2       0.5 -0.300
    1      2       0.5  0.425
    """
    confidence, correct = _check_confidence_correct(confidence, correct)
    _check_bins(bins, strategy)
    edges = _bin_edges(confidence, bins, strategy)
    index = _bin_index(confidence, edges)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(index, weights=correct.astype(np.float64), minlength=bins) / count
    return pd.DataFrame({"bin": np.arange(bins), "lower": edges[:-1], "upper": edges[1:], "count": count,
                         "mean_confidence": mean_confidence, "accuracy": accuracy,
                         "gap": mean_confidence - accuracy})


def ece(confidence, correct, *, bins: int = 10, strategy: str = "uniform") -> float:
    """Top-label expected calibration error on the 0-100 scale.

    ECE = 100 x sum_b (n_b / n) |acc_b - conf_b|, over the bins of :func:`reliability_table`
    (Naeini et al. 2015; Guo et al. 2017, "On Calibration of Modern Neural Networks"; Desai & Durrett
    2020 use 10 equal-width bins). Equals 100 x ``netcal.metrics.ECE(bins).measure(confidence, correct)``.

    Edge convention (netcal's, which is numpy's histogram's): edges are the floats of
    ``np.linspace(0, 1, bins + 1)`` and a confidence equal to an edge goes to the bin above it, except
    1.0, which goes to the last bin. Because the floats of linspace are not always the decimal values
    (edge 3 of 10 is 0.30000000000000004), confidences of exactly 0.3, 0.6 and 0.7 fall in the bin
    below (0.3 in [0.2, 0.3), not [0.3, 0.4) as ``floor(10 c)`` would put it), while 0.1, 0.2, 0.4,
    0.5, 0.8 and 0.9 go to the bin above. netcal clips
    confidences to [eps, 1 - eps] before averaging, which changes mean confidences by at most 1e-16.

    >>> ece([0.9, 0.9, 0.65, 0.65], [True, False, True, True])
    37.5
    """
    table = reliability_table(confidence, correct, bins=bins, strategy=strategy)
    weight = table["count"].to_numpy() / table["count"].sum()
    return float(100.0 * np.nansum(weight * np.abs(table["gap"].to_numpy())))


# ----------------------------------------------------------------------------- proper scoring rules

def nll(probs, labels, *, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the gold label: -(1/n) sum_i log max(p_i,y_i, eps).

    Probabilities are floored at ``eps`` so one saturated wrong prediction gives a large, finite value.

    >>> round(nll([[0.5, 0.5], [0.9, 0.1]], [0, 0]), 4)
    0.3993
    """
    probs, labels = _check_logits_labels(probs, labels, name="probs")
    gold = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.maximum(gold, eps))))


def brier(probs, labels) -> float:
    """Multi-class Brier score: (1/n) sum_i sum_c (p_ic - 1[y_i = c])^2, in [0, 2] (Brier 1950).

    >>> round(brier([[0.5, 0.5], [0.9, 0.1]], [0, 0]), 4)
    0.26
    """
    probs, labels = _check_logits_labels(probs, labels, name="probs")
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(labels)), labels] = 1.0
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


# ----------------------------------------------------------------------------- temperature scaling

def _check_temperature(temperature: float) -> float:
    temperature = float(temperature)
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0; got {temperature!r}")
    return temperature


def apply_temperature(logits, temperature: float) -> np.ndarray:
    """Probabilities softmax(logits / T) [n, C] from logits [n, C] (Guo et al. 2017).

    >>> apply_temperature([[0.0, 2.0]], 2.0).round(4)
    array([[0.2689, 0.7311]])
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D [n, num_labels]; got shape {logits.shape}")
    z = logits / _check_temperature(temperature)
    return np.exp(z - logsumexp(z, axis=1, keepdims=True))


def _nll_at(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """NLL of softmax(logits / T), computed in log space."""
    log_probs = log_softmax(logits / temperature, axis=1)
    return float(-np.mean(log_probs[np.arange(len(labels)), labels]))


def fit_temperature(logits, labels, *, log_bounds: tuple[float, float] = (-4.0, 4.0)) -> float:
    """Temperature T > 0 minimising the NLL of softmax(logits / T) on a held-out split (Guo et al. 2017).

    T* = argmin_T -(1/n) sum_i log softmax(z_i / T)_{y_i}, found by bounded 1-D search over log T within
    ``log_bounds`` (default T in [e^-4, e^4] = [0.018, 54.6]). Fit on the tune split, never on the split
    you report; a result on a bound means the logits carry (almost) no information about the labels.
    T > 1 softens over-confident predictions; the argmax, hence accuracy, never changes.

    >>> round(fit_temperature([[0.0, 4.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]], [1, 1, 0, 0]), 2)
    3.64
    """
    logits, labels = _check_logits_labels(logits, labels)
    low, high = (float(b) for b in log_bounds)
    if not low < high:
        raise ValueError(f"log_bounds must be (low, high) with low < high; got {log_bounds!r}")
    result = minimize_scalar(lambda log_t: _nll_at(logits, labels, float(np.exp(log_t))),
                             bounds=(low, high), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


# ----------------------------------------------------------------------------- presentation

def table_ece(table: pd.DataFrame) -> float:
    """ECE (in points) of a :func:`reliability_table`: the count-weighted mean |gap| of its bins."""
    filled = table[table["count"] > 0]
    total = table["count"].sum()
    return 100.0 * float(np.sum(filled["count"] / total * filled["gap"].abs())) if total else float("nan")


def reliability_diagram(table: pd.DataFrame, *, ax=None, label: str | None = None, x_min: float = 0.0,
                        counts: bool = True):
    """Reliability diagram of one :func:`reliability_table`: accuracy per bin against the diagonal.

    Bars show each non-empty bin's accuracy over its confidence range, with its count above it (`counts`);
    the shaded band between accuracy and mean confidence is the gap (over-confidence when above the bar).
    The legend entry carries the ECE of the table; the legend sits below the axes, off the data. `x_min`
    starts the confidence axis where confidences can start (1 / classes: a max-prob is never below it).
    Pass ``ax`` to overlay several tables (give each a ``label``). Returns the Axes.
    """
    import matplotlib.pyplot as plt

    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks column(s) {missing}; build it with reliability_table()")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    filled = table[table["count"] > 0]
    ece_value = table_ece(table)
    name = label if label is not None else "accuracy"
    width = (filled["upper"] - filled["lower"]).to_numpy()
    bars = ax.bar(filled["lower"], filled["accuracy"], width=width, align="edge", alpha=0.7,
                  edgecolor="black", linewidth=0.5, label=f"{name} (ECE {ece_value:.2f})")
    ax.bar(filled["lower"], filled["gap"], bottom=filled["accuracy"], width=width, align="edge",
           color=bars.patches[0].get_facecolor() if len(bars.patches) else None, alpha=0.25, hatch="//",
           edgecolor="red", linewidth=0.0, label=f"{name}: gap (confidence - accuracy)")
    if counts:
        for lower, upper, accuracy, count in filled[["lower", "upper", "accuracy", "count"]].itertuples(index=False):
            ax.text((lower + upper) / 2, min(accuracy, 0.93) + 0.015, f"{int(count)}", ha="center", va="bottom",
                    fontsize="xx-small")
    if "perfect calibration" not in [line.get_label() for line in ax.get_lines()]:
        ax.plot([x_min, 1], [x_min, 1], linestyle="--", color="gray", label="perfect calibration")
    ax.set_xlim(x_min, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (max softmax probability)")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize="x-small", ncol=1, frameon=False)
    return ax
