"""A hybrid of the two families: a small complete model first, then an early-exit model for what it passes on.

Every example goes to the small model; it stops there when the small model's max softmax probability is
> tau (strict), as in a cascade. The others go to the early-exit model on the full backbone (DeeBERT), which
stops at its first exit whose rule fires (entropy < threshold), else at its last exit. An escalated example
pays for the small model and for every layer (and off-ramp) of the early-exit model it ran.

Like cascades, the routing is a pure function of the stored outputs; `tune_hybrid` chooses both values on a
tune split for a target speed-up, and `hybrid_point` / `tuned_hybrid_point` turn them into operating points.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.measures.cost import complete_flops
from workbench.measures.metrics import task_metric
from workbench.methods.cascade import largest_threshold
from workbench.methods.exits import ExitOutputs, apply_policy
from workbench.methods.points import OperatingPoint, Study, complete_rows, exit_costs, need_costs, token_counts
from workbench.names import hybrid_label, try_parse_model
from workbench.runs.outputs import prob_matrix


@dataclass(frozen=True)
class HybridRouting:
    """Where each example stopped: index 0 is the small model, 1 + j the early-exit model's exit j."""
    exit_index: np.ndarray   # [n]
    pred: np.ndarray         # [n]
    confidence: np.ndarray   # [n] max softmax probability of the answer
    escalated: np.ndarray    # [n] bool: went past the small model


def route_hybrid(small_probs: np.ndarray, exits: ExitOutputs, tau: float, *, policy: str,
                 param: float) -> HybridRouting:
    """Route every example: the small model answers when its max prob > tau, else the early-exit model with
    `policy` at `param`. `small_probs` [n, C] must be aligned with `exits` (same examples, same order)."""
    small_probs = np.asarray(small_probs, dtype=np.float64)
    if small_probs.shape != (exits.n, exits.probs.shape[-1]):
        raise ValueError(f"small model probabilities have shape {small_probs.shape}, expected "
                         f"[{exits.n}, {exits.probs.shape[-1]}] like the early-exit model's outputs")
    if not 0 <= tau <= 1:
        raise ValueError(f"the small model's threshold must lie in [0, 1], got {tau}")
    decision = apply_policy(exits, policy, param)
    small_conf = small_probs.max(-1)
    stays = small_conf > tau
    return HybridRouting(exit_index=np.where(stays, 0, 1 + decision.exit_index),
                         pred=np.where(stays, small_probs.argmax(-1), decision.pred),
                         confidence=np.where(stays, small_conf, decision.confidence), escalated=~stays)


def hybrid_costs(small_cost, exit_costs: np.ndarray) -> np.ndarray:
    """[n, 1 + m] cost of stopping at the small model (index 0) or at each exit after it: `small_cost` (a number
    or [n]) plus the cumulative cost of the exits `exit_costs` ([m] or [n, m])."""
    exit_costs = np.atleast_2d(np.asarray(exit_costs, dtype=np.float64))
    small = np.broadcast_to(np.asarray(small_cost, dtype=np.float64).reshape(-1, 1), (exit_costs.shape[0], 1))
    return np.concatenate([small, small + exit_costs], axis=1)


def tune_hybrid(small_probs: np.ndarray, exits: ExitOutputs, target: float, *, costs: np.ndarray, full: float,
                metric: str, grid, policy: str = "entropy") -> tuple[float, float] | None:
    """(tau, param) reaching `target` = full / mean cost on these (tune) outputs with the best `metric`.

    For every `param` of the early-exit rule on `grid`, the largest tau that still reaches the target is found
    exactly (as for a cascade's first threshold); the pair with the best metric wins, ties going to the
    speed-up closest to the target. `costs` is [n, 1 + m] or [1 + m] from `hybrid_costs`. None if no pair
    reaches the target.
    """
    costs = np.broadcast_to(np.asarray(costs, dtype=np.float64), (exits.n, exits.num_exits + 1))
    rows, small_conf = np.arange(exits.n), np.asarray(small_probs).max(-1)
    best, best_key = None, None
    for param in grid:
        decision = apply_policy(exits, policy, float(param))
        tau = largest_threshold(small_conf, costs[:, 0], costs[rows, 1 + decision.exit_index], target, full=full)
        if tau is None:
            continue
        routing = route_hybrid(small_probs, exits, tau, policy=policy, param=float(param))
        speedup = full / np.mean(costs[rows, routing.exit_index])
        key = (task_metric(metric, exits.labels, routing.pred), -speedup)
        if best_key is None or key > best_key:
            best, best_key = (tau, float(param)), key
    return best


# ----------------------------------------------------------------------------- operating points


def _hybrid_parts(outputs: pd.DataFrame, study: Study, small: str, exit_model: str, split: str, seed: int):
    """(small model's probs [n, C], the exit model's outputs, costs in layers [1 + m], costs in FLOPs [n, 1 + m]
    or None, full FLOPs [n] or None), aligned by example."""
    exits = ExitOutputs.from_outputs(outputs, model=exit_model, split=split, seed=seed)
    rows = complete_rows(outputs, small, split, seed)
    if not np.array_equal(rows["example_id"].to_numpy(dtype=str), exits.example_ids.astype(str)):
        raise ValueError(f"{small!r} and {exit_model!r} answered different examples of split {split!r}, seed {seed}")
    depth = try_parse_model(small).depth
    probs = prob_matrix(rows)
    layers = hybrid_costs(depth, exits.layers.astype(np.float64))[0]
    flops = full = None
    tokens = rows["tokens"].to_numpy() if "tokens" in rows else None
    exit_cost, full = exit_costs(study, token_counts(outputs, exit_model, split, seed, exits.example_ids),
                                 exits.num_exits)
    if tokens is not None and exit_cost is not None:
        flops = hybrid_costs(complete_flops(study.shape_of(small), depth, tokens, study.num_labels), exit_cost)
    return probs, exits, layers, flops, full


def hybrid_point(outputs: pd.DataFrame, study: Study, small: str, tau: float, param: float, *, split: str,
                 seed: int, exit_model: str = "deebert", policy: str = "entropy",
                 target: float | None = None) -> OperatingPoint:
    """The hybrid of `small` (a complete model) then `exit_model` at one setting, on one split."""
    probs, exits, layers, flops, full = _hybrid_parts(outputs, study, small, exit_model, split, seed)
    routing = route_hybrid(probs, exits, tau, policy=policy, param=param)
    parsed = try_parse_model(small)
    return OperatingPoint(
        method=hybrid_label(parsed.depth, small=parsed.family == "small"), members=(small, exit_model),
        policy=f"maxprob+{policy}", values=(float(tau), float(param)), setting=f"tau={tau:.4f},{policy}={param:.4g}",
        target=target, split=split, seed=seed, metric_name=study.metric, full_layers=study.full_layers,
        exits=(parsed.depth, *(int(layer) for layer in exits.layers)), example_ids=exits.example_ids,
        labels=exits.labels, pred=routing.pred, confidence=routing.confidence, exit_index=routing.exit_index,
        layers_executed=layers[routing.exit_index],
        flops=None if flops is None else flops[np.arange(exits.n), routing.exit_index], full_flops=full)


def tuned_hybrid_point(outputs: pd.DataFrame, study: Study, small: str, target: float, seed: int, *,
                       exit_model: str = "deebert", policy: str = "entropy", grid=None, tune: str = "tune",
                       test: str = "test") -> OperatingPoint | None:
    """Both values of the hybrid chosen on `tune` for `target` (in the study's unit), applied on `test`."""
    probs, exits, layers, flops, full = _hybrid_parts(outputs, study, small, exit_model, tune, seed)
    if study.unit == "flops":
        costs, budget = need_costs(flops, small), float(np.mean(need_costs(full, exit_model)))
    else:
        costs, budget = layers, float(study.full_layers)
    grid = np.linspace(0.0, np.log(study.num_labels), 21) if grid is None else grid
    found = tune_hybrid(probs, exits, target, costs=costs, full=budget, metric=study.metric, grid=grid,
                        policy=policy)
    if found is None:
        return None
    return hybrid_point(outputs, study, small, *found, split=test, seed=seed, exit_model=exit_model, policy=policy,
                        target=target)
