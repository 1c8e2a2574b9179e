"""Routing of a cascade of complete models, as pure functions of their stored outputs.

A cascade has k members, complete models ordered smallest first, of depths d_1 < ... < d_k. Every example
goes to member 1; it exits at member i when that member's max softmax probability is > tau_i (strict),
otherwise it goes on to member i + 1; the last member answers the rest. An example answered by member j
pays for every member it passed through: layers_executed = d_1 + ... + d_j (2L then 12L costs 14), and
speedup_layers = full_layers / mean layers_executed, the paper's definition. When widths differ, pass
member_flops [k] (FLOPs per example of each member) and full_flops for speedup_flops.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from workbench.measures.metrics import task_metric
from workbench.runs.outputs import prob_matrix


@dataclass(frozen=True)
class CascadeOutputs:
    """Outputs of the k members of a cascade over one split, aligned by example."""
    example_ids: np.ndarray   # [n] str, sorted
    labels: np.ndarray        # [n] int gold labels
    members: tuple[str, ...]  # model names, smallest first, e.g. ('complete-2L', 'complete-12L')
    depths: np.ndarray        # [k] transformer layers of each member, increasing
    probs: np.ndarray         # [n, k, C] softmax probabilities of each member
    logits: np.ndarray        # [n, k, C] raw logits of each member

    def __post_init__(self):
        for name in ("example_ids", "labels", "depths", "probs", "logits"):
            object.__setattr__(self, name, np.asarray(getattr(self, name)))
        object.__setattr__(self, "members", tuple(self.members))
        n, k = len(self.example_ids), len(self.members)
        if k < 2:
            raise ValueError(f"a cascade needs at least 2 members, got {list(self.members)}")
        if len(self.depths) != k or np.any(np.diff(self.depths) <= 0):
            raise ValueError(f"members {list(self.members)} must come in increasing depth, got depths "
                             f"{self.depths.tolist()}; list them smallest first")
        if self.probs.ndim != 3 or self.probs.shape[:2] != (n, k) or self.logits.shape != self.probs.shape:
            raise ValueError(f"probs and logits must have shape [n={n}, k={k}, C], got {self.probs.shape} "
                             f"and {self.logits.shape}")
        if len(self.labels) != n:
            raise ValueError(f"got {len(self.labels)} labels for {n} examples")

    @classmethod
    def from_outputs(cls, frame: pd.DataFrame, *, members: Sequence[str], split: str,
                     seed: int) -> "CascadeOutputs":
        """Select each member's rows (model == member) of one split and seed, aligned by example_id."""
        rows = frame[(frame["split"] == split) & (frame["seed"] == seed)]
        parts, depths = [], []
        for member in members:
            part = rows[rows["model"] == member]
            if part.empty:
                raise ValueError(f"no outputs for member {member!r} on split={split!r}, seed={seed}; models there: "
                                 f"{sorted(rows['model'].unique())}")
            layers = sorted(int(layer) for layer in part["layer"].unique())
            if len(layers) != 1:
                raise ValueError(f"member {member!r} has exits at layers {layers}; a cascade member is a complete "
                                 "model with a single layer value (filter its last exit first)")
            part = part.assign(example_id=part["example_id"].astype(str)).sort_values("example_id")
            duplicated = part["example_id"].duplicated()
            if duplicated.any():
                raise ValueError(f"example {part['example_id'][duplicated].iloc[0]!r} appears twice for member "
                                 f"{member!r}; deduplicate the table (see outputs.validate_outputs)")
            parts.append(part)
            depths.append(int(layers[0]))
        ids = parts[0]["example_id"].to_numpy(dtype=str)
        for member, part in zip(members, parts):
            others = part["example_id"].to_numpy(dtype=str)
            if not np.array_equal(others, ids):
                only_first = np.setdiff1d(ids, others)
                example, where, lacks = ((str(only_first[0]), members[0], member) if len(only_first)
                                         else (str(np.setdiff1d(others, ids)[0]), member, members[0]))
                raise ValueError(f"example {example!r} has outputs for member {where!r} but not for {lacks!r}; "
                                 f"run every member on the same examples of split {split!r}")
            if not np.array_equal(part["label"].to_numpy(), parts[0]["label"].to_numpy()):
                raise ValueError(f"members {members[0]!r} and {member!r} disagree on the labels of split {split!r}")
        probs = np.stack([prob_matrix(part) for part in parts], axis=1)
        logit_cols = [f"logit_{c}" for c in range(probs.shape[-1])]
        logits = np.stack([part[logit_cols].to_numpy(dtype=np.float64) for part in parts], axis=1)
        return cls(example_ids=ids, labels=parts[0]["label"].to_numpy(dtype=np.int64), members=tuple(members),
                   depths=np.array(depths, dtype=np.int64), probs=probs, logits=logits)

    @property
    def n(self) -> int:
        """Number of examples."""
        return len(self.example_ids)

    @property
    def num_members(self) -> int:
        """Number of members k."""
        return len(self.members)

    @property
    def confidence(self) -> np.ndarray:
        """[n, k] max softmax probability of each member."""
        return self.probs.max(-1)


@dataclass(frozen=True)
class Routing:
    """Which member answers each example, what it says, and what the example cost."""
    member_index: np.ndarray     # [n] index of the member that answered
    pred: np.ndarray             # [n] that member's argmax
    confidence: np.ndarray       # [n] that member's max softmax probability
    layers_executed: np.ndarray  # [n] d_1 + ... + d_j for answering member j
    escalated: np.ndarray        # [n] bool: went past the first member


def route(out: CascadeOutputs, thresholds: Sequence[float]) -> Routing:
    """Route every example through the cascade: exit at member i when its max prob > thresholds[i] (strict).

    thresholds has one value per non-final member, each in [0, 1]: 0 lets everyone out at that member (a
    softmax max is always > 0), 1 lets nobody out (it is never > 1).

    >>> probs = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.6, 0.4], [0.3, 0.7]]])  # 2 examples, 2 members
    >>> out = CascadeOutputs(example_ids=np.array(["a", "b"]), labels=np.array([0, 1]), members=("2L", "12L"),
    ...                      depths=np.array([2, 12]), probs=probs, logits=np.log(probs))
    >>> route(out, [0.6]).layers_executed  # 0.6 is not > 0.6: b escalates and pays 2 + 12
    array([ 2, 14])
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.shape != (out.num_members - 1,):
        raise ValueError(f"a cascade of {out.num_members} members needs {out.num_members - 1} threshold(s), one per "
                         f"non-final member, got {thresholds.tolist()}")
    if np.any((thresholds < 0) | (thresholds > 1)):
        raise ValueError(f"thresholds must lie in [0, 1] (0 = always exit, 1 = never), got {thresholds.tolist()}")
    may_exit = np.ones((out.n, out.num_members), dtype=bool)
    may_exit[:, :-1] = out.confidence[:, :-1] > thresholds
    index = may_exit.argmax(1)
    rows = np.arange(out.n)
    return Routing(member_index=index, pred=out.probs[rows, index].argmax(-1), confidence=out.confidence[rows, index],
                   layers_executed=np.cumsum(out.depths)[index], escalated=index > 0)


def evaluate_routing(out: CascadeOutputs, routing: Routing, *, metric: str, full_layers: int,
                     member_flops: np.ndarray | None = None, full_flops: float | None = None) -> dict:
    """Task metric, cost and speed-ups of a routing.

    speedup_layers = full_layers / mean(layers_executed); speedup_flops = mean(full_flops) / mean cost in FLOPs, an
    example answered by member j costing member_flops[0] + ... + member_flops[j] (member_flops [k], or [n, k] per
    example; full_flops a number or [n]); NaN unless both member_flops and full_flops are given. share_member_<name> is the fraction answered by each member, escalated the
    fraction that went past the first one.
    """
    if len(routing.member_index) != out.n:
        raise ValueError(f"routing covers {len(routing.member_index)} examples but the outputs have {out.n}")
    mean_layers = float(np.mean(routing.layers_executed))
    speedup_flops = float("nan")
    if member_flops is not None and full_flops is not None:
        cost = _cumulative(out, member_flops)
        cost = cost[routing.member_index] if cost.ndim == 1 else cost[np.arange(out.n), routing.member_index]
        speedup_flops = float(np.mean(full_flops) / np.mean(cost))
    shares = np.bincount(routing.member_index, minlength=out.num_members) / out.n
    return {"metric_name": metric, "metric": task_metric(metric, out.labels, routing.pred),
            "mean_layers": mean_layers, "speedup_layers": full_layers / mean_layers, "speedup_flops": speedup_flops,
            **{f"share_member_{name}": float(s) for name, s in zip(out.members, shares)},
            "escalated": float(np.mean(routing.escalated))}


def _cumulative(out: CascadeOutputs, member_flops) -> np.ndarray:
    member_flops = np.asarray(member_flops, dtype=np.float64)
    if member_flops.shape not in ((out.num_members,), (out.n, out.num_members)):
        raise ValueError(f"member_flops must give one value per member ({list(out.members)}), or one per example "
                         f"and member, got shape {member_flops.shape}")
    return np.cumsum(member_flops, axis=-1)


def sweep_cascade(out: CascadeOutputs, thresholds_grid, *, metric: str, full_layers: int,
                  member_flops: np.ndarray | None = None, full_flops: float | None = None) -> pd.DataFrame:
    """One row per threshold tuple (a bare float for 2 members): threshold_<member>, metric, cost, shares."""
    rows = []
    for thresholds in thresholds_grid:
        thresholds = tuple(np.atleast_1d(np.asarray(thresholds, dtype=np.float64)))
        result = evaluate_routing(out, route(out, thresholds), metric=metric, full_layers=full_layers,
                                  member_flops=member_flops, full_flops=full_flops)
        rows.append({**{f"threshold_{name}": float(t) for name, t in zip(out.members, thresholds)}, **result})
    columns = [f"threshold_{name}" for name in out.members[:-1]]
    return pd.DataFrame(rows).sort_values(columns).reset_index(drop=True)


def thresholds_for_speedup(out: CascadeOutputs, target_speedup: float, *, full_layers: int,
                           member_flops: np.ndarray | None = None, full_flops=None,
                           by: str = "layers", metric: str = "accuracy",
                           grid_size: int = 21) -> tuple[float, ...] | None:
    """Thresholds whose speed-up on these outputs is >= target and as close to it as possible.

    Pass the tune split: the paper chose thresholds on a split other than the one it reported.
    The speed-up only falls as the first threshold rises (more examples pay for member 2 and beyond), so,
    with the later thresholds fixed, the largest first threshold still reaching the target is found exactly,
    among 0, 1 and the midpoints between member 1's sorted distinct confidences. For 2 members that is the
    answer: the least aggressive threshold, hence the most accurate one, that reaches the target.
    For k > 2 members the later thresholds tau_2..tau_{k-1} are searched on a coarse grid (0, 1 and the
    `grid_size` quantiles of each member's confidences), the first threshold is set exactly as above for each
    combination, and the combination with the best `metric` on these outputs wins (ties: the speed-up closest
    to the target). `by` = 'layers' (full_layers, depths) or 'flops' (full_flops, a number or [n], and
    member_flops, [k] or [n, k] per example).
    None if the target is unreachable: above full / cost of member 1 alone (everyone exits there).
    """
    if by == "layers":
        full, cost = float(full_layers), np.cumsum(out.depths).astype(np.float64)
    elif by == "flops":
        if member_flops is None or full_flops is None:
            raise ValueError("by='flops' needs both member_flops and full_flops")
        full, cost = float(np.mean(full_flops)), _cumulative(out, member_flops)
    else:
        raise ValueError(f"by must be 'layers' or 'flops', got {by!r}")
    cost = np.broadcast_to(cost, (out.n, out.num_members))
    rows = np.arange(out.n)
    later_grids = [_quantile_grid(out.confidence[:, i], grid_size) for i in range(1, out.num_members - 1)]
    best, best_key = None, None
    for later in itertools.product(*later_grids):
        if out.num_members > 2:  # where an escalated example ends, from member 2 on
            escalated_cost = cost[rows, route(_without_first(out), later).member_index + 1]
        else:
            escalated_cost = cost[:, 1]
        first = largest_threshold(out.confidence[:, 0], cost[:, 0], escalated_cost, target_speedup, full=full)
        if first is None:
            continue
        thresholds = (first, *(float(t) for t in later))
        if out.num_members == 2:  # one combination, and the exact search already made it the best
            return thresholds
        routing = route(out, thresholds)
        speedup = full / np.mean(cost[rows, routing.member_index])
        key = (task_metric(metric, out.labels, routing.pred), -speedup)
        if best_key is None or key > best_key:
            best, best_key = thresholds, key
    return best


def largest_threshold(confidence: np.ndarray, stay_cost: np.ndarray, escalated_cost: np.ndarray, target: float, *,
                      full: float) -> float | None:
    """The largest threshold tau on `confidence` [n] whose speed-up full / mean cost is >= target, where an
    example with confidence > tau stops and pays `stay_cost`, the others pay `escalated_cost` (both [n]).

    The candidates are 0, 1 and the midpoints between the sorted distinct confidences, so the answer is exact;
    None if even tau = 0 (nobody escalated) misses the target.
    """
    order = np.argsort(confidence, kind="stable")
    conf = confidence[order]
    distinct = np.unique(conf)
    candidates = np.concatenate([[0.0], (distinct[:-1] + distinct[1:]) / 2, [1.0]])
    escalated = np.searchsorted(conf, candidates, side="right")  # examples with confidence <= candidate
    extra = np.concatenate([[0.0], np.cumsum(escalated_cost[order] - stay_cost[order])])
    speedups = full / ((np.sum(stay_cost) + extra[escalated]) / len(conf))
    reached = np.flatnonzero(speedups >= target)
    return float(candidates[reached.max()]) if len(reached) else None


def _quantile_grid(confidence: np.ndarray, grid_size: int) -> np.ndarray:
    return np.unique(np.concatenate([[0.0], np.quantile(confidence, np.linspace(0, 1, grid_size)), [1.0]]))


def _without_first(out: CascadeOutputs) -> CascadeOutputs:
    return CascadeOutputs(example_ids=out.example_ids, labels=out.labels, members=out.members[1:],
                          depths=out.depths[1:], probs=out.probs[:, 1:], logits=out.logits[:, 1:])
