"""Early-exit policies as pure functions of stored outputs: max-prob, entropy (DeeBERT), patience (PABEE), oracle.

A multi-exit model is run once over a split and every exit's probabilities are stored (see `outputs`).
Each policy then decides, per example, which exit answers, without running anything again:

- `maxprob_exit`: the first exit whose max softmax probability is > threshold (strict);
- `entropy_exit`: DeeBERT, the first exit whose softmax entropy (natural log) is < threshold (strict);
- `patience_exit`: PABEE, exit once the argmax has stayed the same for `patience` consecutive exits;
- `oracle_exit`: each example's first correct exit (an upper bound no real policy can beat);
- `static_exit`: everyone at one layer (BERT-kL read off a multi-exit model).

Examples no rule lets out leave at the last exit. Cost is the transformer layers executed, and
speedup_layers = full_layers / mean layers_executed, the paper's definition (FLOPs when given).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.measures.metrics import task_metric
from workbench.runs.outputs import prob_matrix

POLICIES = ("maxprob", "entropy", "patience")


@dataclass(frozen=True)
class ExitOutputs:
    """Outputs of one multi-exit model (m exits) over one split, aligned by example."""
    example_ids: np.ndarray  # [n] str, sorted
    labels: np.ndarray       # [n] int gold labels
    layers: np.ndarray       # [m] int, exit layers in increasing order, e.g. [1, 2, ..., 6]
    probs: np.ndarray        # [n, m, C] softmax probabilities at each exit
    logits: np.ndarray       # [n, m, C] raw logits at each exit

    def __post_init__(self):
        for name in ("example_ids", "labels", "layers", "probs", "logits"):
            object.__setattr__(self, name, np.asarray(getattr(self, name)))
        n, m = len(self.example_ids), len(self.layers)
        if self.probs.ndim != 3 or self.probs.shape[:2] != (n, m):
            raise ValueError(f"probs must have shape [n={n}, m={m}, C], got {self.probs.shape}")
        if self.logits.shape != self.probs.shape:
            raise ValueError(f"logits have shape {self.logits.shape} but probs {self.probs.shape}")
        if len(self.labels) != n:
            raise ValueError(f"got {len(self.labels)} labels for {n} examples")
        if m == 0 or np.any(np.diff(self.layers) <= 0):
            raise ValueError(f"exit layers must be non-empty and increasing, got {self.layers.tolist()}")

    @classmethod
    def from_outputs(cls, frame: pd.DataFrame, *, model: str, split: str, seed: int) -> "ExitOutputs":
        """Pivot the rows of one model, split and seed of a tidy outputs table into arrays."""
        rows = frame[(frame["model"] == model) & (frame["split"] == split) & (frame["seed"] == seed)]
        if rows.empty:
            raise ValueError(
                f"no outputs for model={model!r}, split={split!r}, seed={seed}; the table has models "
                f"{sorted(frame['model'].unique())}, splits {sorted(frame['split'].unique())}, "
                f"seeds {sorted(int(s) for s in frame['seed'].unique())}")
        rows = rows.assign(example_id=rows["example_id"].astype(str))
        counts = pd.crosstab(rows["example_id"], rows["layer"])  # examples sorted x layers sorted
        if (counts > 1).any(axis=None):
            example, layer = counts.stack().loc[lambda c: c > 1].index[0]
            raise ValueError(f"example {str(example)!r} has more than one row at layer {layer} of model {model!r}; "
                             "deduplicate the table (see outputs.validate_outputs)")
        if (counts == 0).any(axis=None):
            missing = counts.stack().loc[lambda c: c == 0]
            example, layer = missing.index[0]
            raise ValueError(f"example {str(example)!r} lacks the exit at layer {layer} of model {model!r} "
                             f"({len(missing)} (example, layer) pairs missing); rerun that model on split {split!r}")
        rows = rows.sort_values(["example_id", "layer"])
        n, m = counts.shape
        labels = rows.groupby("example_id")["label"].agg(["min", "max"])
        if (labels["min"] != labels["max"]).any():
            raise ValueError(f"example {str(labels.index[labels['min'] != labels['max']][0])!r} has different labels "
                             "at different exits")
        logit_cols = sorted((c for c in rows.columns if c.startswith("logit_")), key=lambda c: int(c.split("_")[1]))
        probs = prob_matrix(rows)
        if len(logit_cols) != probs.shape[1]:
            raise ValueError(f"outputs table has {probs.shape[1]} prob_<c> columns but logit columns {logit_cols}")
        return cls(example_ids=counts.index.to_numpy(dtype=str), labels=labels["min"].to_numpy(dtype=np.int64),
                   layers=counts.columns.to_numpy(dtype=np.int64), probs=probs.reshape(n, m, -1),
                   logits=rows[logit_cols].to_numpy(dtype=np.float64).reshape(n, m, -1))

    @property
    def n(self) -> int:
        """Number of examples."""
        return len(self.example_ids)

    @property
    def num_exits(self) -> int:
        """Number of exits m."""
        return len(self.layers)

    @property
    def pred(self) -> np.ndarray:
        """[n, m] argmax at each exit."""
        return self.probs.argmax(-1)

    @property
    def confidence(self) -> np.ndarray:
        """[n, m] max softmax probability at each exit."""
        return self.probs.max(-1)


@dataclass(frozen=True)
class ExitDecision:
    """Which exit answers each example, and what that exit says."""
    exit_index: np.ndarray       # [n] index into ExitOutputs.layers of the exit taken
    exit_layer: np.ndarray       # [n] = layers[exit_index]
    pred: np.ndarray             # [n] argmax at the exit
    confidence: np.ndarray       # [n] max softmax probability at the exit
    layers_executed: np.ndarray  # [n] transformer layers run (= exit_layer for early exit)


def decide(out: ExitOutputs, may_exit: np.ndarray) -> ExitDecision:
    """Exit each example at its first exit where `may_exit` [n, m] is True; the last exit if none is."""
    may_exit = np.array(may_exit, dtype=bool)
    may_exit[:, -1] = True
    index = may_exit.argmax(1)
    rows = np.arange(out.n)
    layer = out.layers[index]
    return ExitDecision(exit_index=index, exit_layer=layer, pred=out.pred[rows, index],
                        confidence=out.confidence[rows, index], layers_executed=layer.copy())


def maxprob_exit(out: ExitOutputs, threshold: float) -> ExitDecision:
    """Exit at the first exit whose max softmax probability is > threshold (strict); else the last.

    threshold 0 exits everyone at the first exit; threshold 1 never exits early.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"max-prob threshold must be in [0, 1], got {threshold}")
    return decide(out, out.confidence > threshold)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy -sum_c p_c ln p_c (nats) over the last axis, with 0 ln 0 = 0.

    >>> entropy(np.array([[0.5, 0.5], [1.0, 0.0]])).round(4)
    array([0.6931, 0.    ])
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probs > 0, probs * np.log(probs), 0.0)
    return 0.0 - terms.sum(-1)  # 0.0 - x, not -x: no negative zeros


def entropy_exit(out: ExitOutputs, threshold: float) -> ExitDecision:
    """DeeBERT: exit at the first exit whose softmax entropy (nats) is < threshold (strict); else the last.

    Entropy is never below 0, so threshold 0 never exits early; ln(C) or more exits everyone at the first
    exit unless its softmax is exactly uniform.
    """
    if threshold < 0:
        raise ValueError(f"entropy threshold {threshold} is negative: entropy is never below 0, so no example could "
                         "ever exit early; use 0 for the full model, up to ln(num_classes) for the most aggressive")
    return decide(out, entropy(out.probs) < threshold)


def stable_counter(pred: np.ndarray) -> np.ndarray:
    """PABEE's patience counter [n, m]: consecutive exits, up to each one, whose argmax equals the previous exit's.

    >>> stable_counter(np.array([[1, 1, 0, 0, 0, 1]]))
    array([[0, 1, 0, 1, 2, 0]])
    """
    counter = np.zeros(pred.shape, dtype=np.int64)
    for i in range(1, pred.shape[1]):
        counter[:, i] = np.where(pred[:, i] == pred[:, i - 1], counter[:, i - 1] + 1, 0)
    return counter


def patience_exit(out: ExitOutputs, patience: int) -> ExitDecision:
    """PABEE: exit as soon as the argmax has been unchanged for `patience` consecutive exits; else the last.

    patience 0 runs the full model (the last exit), as PABEE's code does. With m exits the counter reaches
    at most m - 1, so patience must be in 0..m-1.
    """
    if patience != int(patience) or not 0 <= patience < out.num_exits:
        raise ValueError(f"patience must be an integer in 0..{out.num_exits - 1} for a model with {out.num_exits} "
                         f"exits, got {patience}: a larger one could never trigger")
    if patience == 0:
        return static_exit(out, int(out.layers[-1]))
    return decide(out, stable_counter(out.pred) == patience)


def oracle_exit(out: ExitOutputs) -> ExitDecision:
    """Each example exits at its first correct exit; the last exit if none is correct (an upper bound)."""
    return decide(out, out.pred == out.labels[:, None])


def static_exit(out: ExitOutputs, layer: int) -> ExitDecision:
    """Everyone exits at `layer`, one of `out.layers`."""
    if layer not in out.layers:
        raise ValueError(f"layer {layer} is not an exit of this model; its exits are at layers "
                         f"{out.layers.tolist()}")
    return decide(out, np.broadcast_to(out.layers == layer, (out.n, out.num_exits)))


_POLICY_FUNCTIONS = {"maxprob": maxprob_exit, "entropy": entropy_exit, "patience": patience_exit}


def apply_policy(out: ExitOutputs, policy: str, param: float) -> ExitDecision:
    """The decision of `policy` (one of POLICIES) with parameter `param`."""
    if policy not in _POLICY_FUNCTIONS:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    return _POLICY_FUNCTIONS[policy](out, param)


def evaluate_decision(out: ExitOutputs, decision: ExitDecision, *, metric: str, full_layers: int,
                      exit_flops: np.ndarray | None = None, full_flops: float | None = None) -> dict:
    """Task metric, cost and speed-ups of an exit decision.

    speedup_layers = full_layers / mean(layers_executed) (the paper's metric);
    speedup_flops = mean(full_flops) / mean(exit_flops[exit_index]), where exit_flops are the cumulative FLOPs to
    reach and evaluate each exit, [m] (one value per exit) or [n, m] (per example); full_flops is a number or [n];
    NaN unless both exit_flops and full_flops are given.
    share_exit_<layer> is the fraction of examples answered at each exit (they sum to 1).
    """
    if len(decision.exit_index) != out.n:
        raise ValueError(f"decision covers {len(decision.exit_index)} examples but the outputs have {out.n}")
    mean_layers = float(np.mean(decision.layers_executed))
    speedup_flops = float("nan")
    if exit_flops is not None and full_flops is not None:
        exit_flops = np.asarray(exit_flops, dtype=np.float64)
        if exit_flops.shape == (out.num_exits,):
            cost = exit_flops[decision.exit_index]
        elif exit_flops.shape == (out.n, out.num_exits):  # per example, e.g. from its token count
            cost = exit_flops[np.arange(out.n), decision.exit_index]
        else:
            raise ValueError(f"exit_flops must have shape ({out.num_exits},) or ({out.n}, {out.num_exits}), "
                             f"got {exit_flops.shape}")
        speedup_flops = float(np.mean(full_flops) / np.mean(cost))
    shares = np.bincount(decision.exit_index, minlength=out.num_exits) / out.n
    return {"metric_name": metric, "metric": task_metric(metric, out.labels, decision.pred),
            "mean_layers": mean_layers, "speedup_layers": full_layers / mean_layers, "speedup_flops": speedup_flops,
            **{f"share_exit_{layer}": float(s) for layer, s in zip(out.layers, shares)}}


def sweep(out: ExitOutputs, policy: str, values, *, metric: str, full_layers: int,
          exit_flops: np.ndarray | None = None, full_flops: float | None = None) -> pd.DataFrame:
    """One row per parameter value of `policy`: policy, param, metric, mean_layers, speed-ups, exit shares."""
    rows = [{"policy": policy, "param": float(value),
             **evaluate_decision(out, apply_policy(out, policy, value), metric=metric, full_layers=full_layers,
                                 exit_flops=exit_flops, full_flops=full_flops)}
            for value in values]
    return pd.DataFrame(rows).sort_values("param").reset_index(drop=True)


def default_grid(policy: str, out: ExitOutputs) -> np.ndarray:
    """A parameter grid spanning every behaviour of `policy` on these outputs, from full model to first exit.

    maxprob: 0, the 0..100% quantiles (every 2.5%) of the observed confidences, and 0.9, 0.99, ..., 1 - 1e-6, 1;
    entropy: 41 values from 0 to ln(C); patience: 0..m-1.
    """
    if policy == "maxprob":
        near_one = 1.0 - 10.0 ** -np.arange(1, 7)
        quantiles = np.quantile(out.confidence, np.linspace(0, 1, 41))
        return np.unique(np.concatenate([[0.0], quantiles, near_one, [1.0]]))
    if policy == "entropy":
        return np.linspace(0.0, np.log(out.probs.shape[-1]), 41)
    if policy == "patience":
        return np.arange(out.num_exits, dtype=np.float64)
    raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")


def random_exit_reference(out: ExitOutputs, mean_layers: float, *, metric: str) -> float:
    """Expected metric of exiting without looking at the example, at the same mean layers executed.

    Each example exits at one of the two exits adjacent to `mean_layers` (l_a <= mean_layers <= l_b), at l_b
    with probability w = (mean_layers - l_a) / (l_b - l_a), so the expected layers executed equal mean_layers;
    the result is (1 - w) metric(static l_a) + w metric(static l_b). For accuracy this is the exact expectation;
    for F1 and MCC, which are not averages over examples, it is the same linear mix of the static metrics, an
    approximation.
    """
    layers = out.layers
    if not layers[0] <= mean_layers <= layers[-1]:
        raise ValueError(f"mean_layers {mean_layers} is outside the exits' range {layers[0]}..{layers[-1]}")
    b = int(np.searchsorted(layers, mean_layers, side="left"))
    if layers[b] == mean_layers:
        return _static_metric(out, b, metric)
    a = b - 1
    w = (mean_layers - layers[a]) / (layers[b] - layers[a])
    return float((1 - w) * _static_metric(out, a, metric) + w * _static_metric(out, b, metric))


def _static_metric(out: ExitOutputs, index: int, metric: str) -> float:
    return task_metric(metric, out.labels, out.pred[:, index])


def choose_for_speedup(out: ExitOutputs, policy: str, target_speedup: float, *, full_layers: int,
                       grid=None, by: str = "layers", exit_flops: np.ndarray | None = None,
                       full_flops: np.ndarray | None = None) -> float | None:
    """The grid value of `policy` whose speed-up on these outputs is >= target and closest to it.

    `by` = 'layers' (full_layers / mean layers executed) or 'flops' (mean `full_flops` / mean FLOPs spent, with
    `exit_flops` [n, m] the cumulative FLOPs to reach each exit, off-ramp heads included).
    Among values with the same speed-up the least aggressive one wins (highest max-prob threshold, lowest
    entropy threshold, highest patience). None if no value reaches the target (integer patience is coarse):
    report the target as unreachable. Pass the tune split, not the reported one.
    """
    grid = default_grid(policy, out) if grid is None else np.asarray(grid, dtype=np.float64)
    if by == "layers":
        def speedup(decision: ExitDecision) -> float:
            return full_layers / np.mean(decision.layers_executed)
    elif by == "flops":
        if exit_flops is None or full_flops is None:
            raise ValueError("by='flops' needs both exit_flops and full_flops (token counts of the outputs)")
        rows = np.arange(out.n)

        def speedup(decision: ExitDecision) -> float:
            return float(np.mean(full_flops) / np.mean(exit_flops[rows, decision.exit_index]))
    else:
        raise ValueError(f"by must be 'layers' or 'flops', got {by!r}")
    speedups = np.array([speedup(apply_policy(out, policy, v)) for v in grid])
    reached = speedups >= target_speedup
    if not reached.any():
        return None
    closest = speedups[reached].min()
    candidates = grid[reached & (speedups == closest)]
    return float(candidates.min() if policy == "entropy" else candidates.max())
