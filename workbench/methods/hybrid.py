"""A hybrid of the two families: a small complete model first, then an early-exit model for what it passes on.

Every example goes to the small model; it stops there when the small model's max softmax probability is
> tau (strict), as in a cascade. The others go to the early-exit model on the full backbone (DeeBERT), which
stops at its first exit whose rule fires (entropy < threshold), else at its last exit. An escalated example
pays for the small model and for every layer (and off-ramp) of the early-exit model it ran.

Like cascades, the routing is a pure function of the stored outputs; `tune_hybrid` chooses both values on a
tune split for a target speed-up.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.measures.metrics import task_metric
from workbench.methods.cascade import largest_threshold
from workbench.methods.exits import ExitOutputs, apply_policy


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
