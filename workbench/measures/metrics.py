"""Task metrics: accuracy, F1 of the positive class, and Matthews correlation.

GLUE reports accuracy for most tasks, F1 for MRPC and QQP (positive class = 1, "equivalent" /
"duplicate"), and Matthews correlation for CoLA. All values are on the 0-100 scale, as in the paper.
"""
from __future__ import annotations

import math

import numpy as np

METRIC_NAMES = ("accuracy", "f1", "mcc")


def accuracy(labels, preds) -> float:
    """100 x share of predictions equal to the label.

    >>> accuracy([0, 1, 1, 0], [0, 1, 0, 0])
    75.0
    """
    labels, preds = _pair(labels, preds)
    return 100.0 * float(np.mean(labels == preds)) if labels.size else float("nan")


def f1(labels, preds, *, positive: int = 1) -> float:
    """100 x F1 of the positive class: 2 TP / (2 TP + FP + FN); 0 when there is no positive at all.

    >>> f1([1, 1, 0, 0], [1, 0, 1, 0])
    50.0
    """
    labels, preds = _pair(labels, preds)
    tp = int(np.sum((preds == positive) & (labels == positive)))
    fp = int(np.sum((preds == positive) & (labels != positive)))
    fn = int(np.sum((preds != positive) & (labels == positive)))
    return 100.0 * 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0


def mcc(labels, preds) -> float:
    """100 x Matthews correlation (binary): (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)); 0 if undefined.

    Matthews (1975); GLUE's CoLA metric.

    >>> round(mcc([1, 1, 0, 0], [1, 1, 0, 1]), 2)
    57.74
    """
    labels, preds = _pair(labels, preds)
    tp = float(np.sum((preds == 1) & (labels == 1)))
    tn = float(np.sum((preds == 0) & (labels == 0)))
    fp = float(np.sum((preds == 1) & (labels == 0)))
    fn = float(np.sum((preds == 0) & (labels == 1)))
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 100.0 * (tp * tn - fp * fn) / denom if denom else 0.0


def task_metric(name: str, labels, preds) -> float:
    """The metric named `name` (one of METRIC_NAMES)."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; expected one of {', '.join(METRIC_NAMES)}")
    return {"accuracy": accuracy, "f1": f1, "mcc": mcc}[name](labels, preds)


def _pair(labels, preds) -> tuple[np.ndarray, np.ndarray]:
    labels, preds = np.asarray(labels), np.asarray(preds)
    if labels.shape != preds.shape:
        raise ValueError(f"got {labels.shape[0]} labels but {preds.shape[0]} predictions")
    return labels, preds
