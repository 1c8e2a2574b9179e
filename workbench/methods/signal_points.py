"""Operating points of signal methods: an early-exit model or a cascade that stops on a signal of
`methods.signals` in place of its own confidence rule, with its threshold chosen on tune for a target
speed-up (`tuned_signal_points`) or by Learn-then-Test for a tolerated drop (`risk_signal_point`).

The base is named as in the main table: an early-exit model ('deebert', 'deebert-da', 'pabee') or a cascade
('cascade small-1L>12L', 'cascade+DA 2L>12L'). Costs follow the study's unit exactly as the base method's own
points do: an exit pays every off-ramp it passed, a cascade member pays the members before it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.methods.cascade import CascadeOutputs
from workbench.methods.exits import ExitOutputs
from workbench.methods.points import (OperatingPoint, Study, exit_costs, member_costs, need_costs, token_counts)
from workbench.methods.risk import Risk, RiskChoice, learn_then_test
from workbench.methods.signals import (PER_STAGE, Scored, Stages, score_for_calibration, score_splits, stop,
                                       threshold_for_speedup, thresholds_per_stage)
from workbench.names import exit_rules, members_label, parse_cascade, signal_label


@dataclass(frozen=True)
class SignalSplit:
    """A base method's stages on one split, with what each stage costs."""
    stages: Stages
    exits: tuple[int, ...]      # exit layers, or member depths
    members: tuple[str, ...]    # models of the outputs table the base reads
    layers: np.ndarray          # [m] transformer layers run to answer at each stage (cumulative)
    flops: np.ndarray | None    # [n, m] FLOPs to answer at each stage (cumulative); None without token counts
    full_flops: np.ndarray | None  # [n]

    def cost(self, study: Study, what: str) -> tuple[np.ndarray, np.ndarray]:
        """(cost [n, m], full [n]) in the study's unit."""
        n = self.stages.n
        if study.unit == "layers":
            return np.broadcast_to(self.layers.astype(np.float64), (n, len(self.layers))), np.full(n, study.full_layers,
                                                                                                  dtype=np.float64)
        return need_costs(self.flops, what), self.full_flops


def signal_split(outputs: pd.DataFrame, study: Study, base: str, split: str, seed: int) -> SignalSplit:
    """The stages of `base` on one split and seed."""
    if exit_rules(base) is not None:
        view = ExitOutputs.from_outputs(outputs, model=base, split=split, seed=seed)
        tokens = token_counts(outputs, base, split, seed, view.example_ids)
        flops, full = exit_costs(study, tokens, view.num_exits)
        return SignalSplit(Stages.of(view, tokens), tuple(int(x) for x in view.layers), (base,),
                           view.layers.astype(np.int64), flops, full)
    cascade = parse_cascade(base)
    if cascade is None:
        raise ValueError(f"a signal needs an early-exit model or a cascade as its base, got {base!r}")
    members = cascade[0].members(regularized=cascade[1])
    view = CascadeOutputs.from_outputs(outputs, members=members, split=split, seed=seed)
    tokens = token_counts(outputs, members[-1], split, seed, view.example_ids)
    member_flops, full = member_costs(outputs, study, members, view.depths, split, seed, view.example_ids)
    flops = None if member_flops is None else np.cumsum(member_flops, axis=1)
    return SignalSplit(Stages.of(view, tokens), tuple(int(d) for d in view.depths), tuple(members),
                       np.cumsum(view.depths), flops, full)


def point_at(split: SignalSplit, scored: Scored, threshold, *, study: Study, split_name: str, seed: int,
             method: str | None = None, target: float | None = None) -> OperatingPoint:
    """The base method of `split` stopping where `scored` is > `threshold` (one, or one per stage: see
    `signals.stage_thresholds`), as an operating point (labelled '<base> with <signal>' unless `method` says
    otherwise); its values are the one threshold, or those of the non-final stages."""
    method = method or signal_label(members_base(split), scored.signal)
    index = stop(scored, threshold)
    rows = np.arange(split.stages.n)
    given = np.ravel(np.asarray(threshold, dtype=np.float64))
    values = tuple(float(t) for t in (given if len(given) == 1 else given[:split.stages.num_stages - 1]))
    return OperatingPoint(
        method=method, members=split.members, policy=scored.signal, values=values,
        setting=f"{scored.signal}>{'/'.join(f'{t:.4g}' for t in values)}", target=target, split=split_name, seed=seed,
        metric_name=study.metric, full_layers=study.full_layers, exits=split.exits,
        example_ids=split.stages.example_ids, labels=split.stages.labels, pred=scored.pred[rows, index],
        confidence=scored.confidence[rows, index], exit_index=index, layers_executed=split.layers[index],
        flops=None if split.flops is None else split.flops[rows, index], full_flops=split.full_flops)


def tuned_signal_points(outputs: pd.DataFrame, study: Study, base: str, signal: str, targets, seed: int, *,
                        tune: str = "tune", test: str = "test") -> list[OperatingPoint | None]:
    """`base` stopping on `signal`, one point per target (speed-up in the study's unit): the threshold chosen
    on `tune` (cross-fitted scores for fitted signals), applied on `test`; None where a target is unreachable."""
    tuned, tested = signal_split(outputs, study, base, tune, seed), signal_split(outputs, study, base, test, seed)
    scored_tune, scored_test = score_splits(signal, tuned.stages, tested.stages, seed=seed)
    cost, full = tuned.cost(study, base)
    points = []
    for target in targets:
        threshold = (thresholds_per_stage(scored_tune, tuned.stages.labels, cost, full, target, metric=study.metric)
                     if signal in PER_STAGE else threshold_for_speedup(scored_tune, cost, full, target))
        points.append(None if threshold is None else
                      point_at(tested, scored_test, threshold, study=study, method=signal_label(base, signal),
                             split_name=test, seed=seed, target=target))
    return points


def risk_signal_point(outputs: pd.DataFrame, study: Study, base: str, signal: str, risk: Risk, seed: int, *,
                      tune: str = "tune", test: str = "test") -> tuple[OperatingPoint | None, RiskChoice | None]:
    """`base` stopping on `signal` at the cheapest threshold Learn-then-Test accepts on `tune` for `risk`,
    applied on `test`; (None, None) when no threshold can be accepted (see `risk.fewest_examples`)."""
    tuned, tested = signal_split(outputs, study, base, tune, seed), signal_split(outputs, study, base, test, seed)
    rows, scored_calibration, scored_test = score_for_calibration(signal, tuned.stages, tested.stages, seed=seed)
    full_pred = tuned.stages.probs[rows, -1].argmax(-1)  # the full model alone, which the drop is measured against
    choice = learn_then_test(scored_calibration, tuned.stages.labels[rows], risk, full_pred)
    if choice is None:
        return None, None
    label = signal_label(base, signal, risk=f"{risk.delta:g},{risk.eps:g}")
    return point_at(tested, scored_test, choice.threshold, study=study, method=label, split_name=test, seed=seed,
                  target=None), choice


def members_base(split: SignalSplit) -> str:
    """The base method's label of a split's members: the model itself, or the cascade's label."""
    return split.members[0] if len(split.members) == 1 else members_label(split.members)


def full_answers(outputs: pd.DataFrame, study: Study, base: str, split: str, seed: int) -> np.ndarray:
    """[n] the last stage's answers of `base` on a split (the full model the risk is measured against)."""
    return signal_split(outputs, study, base, split, seed).stages.probs[:, -1].argmax(-1)
