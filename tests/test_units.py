"""Targets in FLOPs or layers: every method reaches its target in the unit asked for, priced at each member's width."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from workbench.measures.cost import EncoderShape, complete_flops, exit_flops
from workbench.methods.cascade import CascadeOutputs, route, thresholds_for_speedup
from workbench.methods.exits import ExitOutputs, apply_policy, choose_for_speedup
from workbench.methods.hybrid import hybrid_costs, route_hybrid, tune_hybrid, tuned_hybrid_point
from workbench.methods.points import Study, static_point, static_speedup, tuned_cascade_point, tuned_exit_point
from workbench.runs.outputs import outputs_frame

WIDE, NARROW = EncoderShape(64, 256, 6), EncoderShape(32, 128, 2)
STUDY = Study("toy", "accuracy", 6, WIDE, 2, unit="flops", small_shape=NARROW)


def _two_member_cascade(n: int, seed: int = 0) -> CascadeOutputs:
    rng = np.random.default_rng(seed)
    p_small = rng.uniform(0.5, 1.0, n)  # distinct confidences
    probs = np.stack([np.stack([p_small, 1 - p_small], 1), np.tile([[0.2, 0.8]], (n, 1))], 1)
    return CascadeOutputs(example_ids=np.array([f"x{i:04d}" for i in range(n)]), labels=rng.integers(0, 2, n),
                          members=("small-1L", "complete-12L"), depths=np.array([1, 12]), probs=probs,
                          logits=np.log(probs))


def test_a_small_member_at_an_eighth_of_the_cost_reaches_4x_by_escalating_an_eighth():
    """speed-up = F / (F/8 + r F) = 4  <=>  r = 1/4 - 1/8 = 1/8 of the examples pass on to the big model."""
    out = _two_member_cascade(800)
    big = 8.0
    tau = thresholds_for_speedup(out, 4.0, full_layers=12, by="flops", member_flops=np.array([big / 8, big]),
                                 full_flops=big)
    routing = route(out, tau)
    assert routing.escalated.mean() == pytest.approx(1 / 8)
    cost = np.where(routing.escalated, big / 8 + big, big / 8)
    assert big / cost.mean() == pytest.approx(4.0)
    # the same members priced in layers (1 + 12 of 12) cannot reach 4x unless almost nothing escalates
    layers = thresholds_for_speedup(out, 4.0, full_layers=12)
    assert route(out, layers).escalated.mean() == pytest.approx((12 / 4 - 1) / 12, abs=1 / 800)


def test_per_example_flops_and_three_members():
    out = _two_member_cascade(200)
    tokens = np.random.default_rng(1).integers(5, 60, 200)
    member_flops = np.stack([complete_flops(NARROW, 1, tokens, 2), complete_flops(WIDE, 6, tokens, 2)], 1)
    full = complete_flops(WIDE, 6, tokens, 2)
    tau = thresholds_for_speedup(out, 3.0, full_layers=6, by="flops", member_flops=member_flops, full_flops=full)
    spent = np.cumsum(member_flops, 1)[np.arange(200), route(out, tau).member_index]
    assert full.mean() / spent.mean() >= 3.0
    with pytest.raises(ValueError, match="needs both"):
        thresholds_for_speedup(out, 3.0, full_layers=6, by="flops")


def test_early_exit_chooses_its_threshold_in_flops_with_every_head_paid():
    rng = np.random.default_rng(0)
    n, m = 300, 6
    probs = rng.dirichlet([1, 1], (n, m))
    out = ExitOutputs(example_ids=np.array([f"x{i:03d}" for i in range(n)]), labels=rng.integers(0, 2, n),
                      layers=np.arange(1, m + 1), probs=probs, logits=np.log(probs))
    tokens = rng.integers(5, 40, n)
    flops, full = exit_flops(WIDE, tokens, 2, m), complete_flops(WIDE, m, tokens, 2)
    param = choose_for_speedup(out, "entropy", 2.5, full_layers=m, by="flops", exit_flops=flops, full_flops=full)
    decision = apply_policy(out, "entropy", param)
    assert full.mean() / flops[np.arange(n), decision.exit_index].mean() >= 2.5
    # every off-ramp passed costs a head, so the FLOPs speed-up of the same decision is below its layer speed-up
    assert full.mean() / flops[np.arange(n), decision.exit_index].mean() < m / decision.layers_executed.mean()


def _frame(split: str, n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng({"tune": 0, "test": 1}[split])
    labels = rng.integers(0, 2, n)
    ids = [f"{split}{i:03d}" for i in range(n)]
    tokens = rng.integers(5, 40, n)
    common = dict(split=split, example_ids=ids, labels=labels, seed=0, tokens=tokens)
    small = {**common, "tokens": tokens + rng.integers(0, 8, n)}  # the small backbone has its own tokenizer
    parts = [outputs_frame(rng.normal(size=(n, 2)) * 2, model="small-1L", layer=1, **small),
             outputs_frame(rng.normal(size=(n, 2)) * 2, model="small-2L", layer=2, **small),
             outputs_frame(rng.normal(size=(n, 2)) * 2, model="complete-3L", layer=3, **common),
             outputs_frame(np.eye(2)[labels] * 3, model="complete-6L", layer=6, **common)]
    parts += [outputs_frame(rng.normal(size=(n, 2)) * k, model="deebert", layer=k, **common) for k in range(1, 7)]
    return pd.concat(parts, ignore_index=True)


FRAME = pd.concat([_frame("tune"), _frame("test")], ignore_index=True)


def test_tuned_points_reach_flops_targets_on_tune():
    for target in (2.0, 4.0, 8.0):
        exit_point = tuned_exit_point(FRAME, STUDY, "deebert", target, 0, test="tune")
        cascade = tuned_cascade_point(FRAME, STUDY, ("small-1L", "complete-6L"), target, 0, label="c", test="tune")
        hybrid = tuned_hybrid_point(FRAME, STUDY, "small-1L", target, 0, test="tune")
        assert cascade is not None and hybrid is not None  # the narrow 1L member alone is far above 8x
        points = (cascade, hybrid) if target > 6 else (exit_point, cascade, hybrid)  # exit 1 of 6: under 6x
        for point in points:
            assert point.speedup_flops >= target - 1e-9
            # the full model is priced on its own tokens, the small member on the small tokenizer's
            full = FRAME[(FRAME["model"] == "complete-6L") & (FRAME["split"] == "tune")].sort_values("example_id")
            assert np.allclose(point.full_flops, complete_flops(WIDE, 6, full["tokens"].to_numpy(), 2))
    assert tuned_exit_point(FRAME, STUDY, "deebert", 8.0, 0) is None
    layers = dataclasses.replace(STUDY, unit="layers")
    point = tuned_cascade_point(FRAME, layers, ("small-1L", "complete-6L"), 2.0, 0, label="c", test="tune")
    assert point.speedup_layers >= 2.0 and point.speedup_flops > point.speedup_layers


def test_static_point_takes_the_costliest_model_within_the_target_in_either_unit():
    assert static_point(FRAME, dataclasses.replace(STUDY, unit="layers"), 2.0, 0).method == "static 3L"
    exact = static_point(FRAME, STUDY, 2.0, 0)  # encoders compared: 6 / 3 layers is exactly 2x
    assert exact.method == "static 3L" and 1.99 < exact.speedup_flops < 2.0  # reported with the heads
    point = static_point(FRAME, STUDY, 4.0, 0)  # no 1L of the wide backbone: the narrow 2L is the costliest
    assert point.method == "static small-2L" and point.speedup_flops >= 4.0
    # a small model just short of the target in encoder FLOPs is not let in
    ratio = static_speedup(FRAME, STUDY, "small-2L", 2, "tune", 0, encoder_only=True)
    assert static_point(FRAME, STUDY, ratio * 1.001, 0).method == "static small-1L"
    assert static_point(FRAME, dataclasses.replace(STUDY, unit="layers"), 4.0, 0).method == "static small-1L"
    assert static_point(FRAME, STUDY, 1000.0, 0) is None


def test_hybrid_routes_small_first_then_the_exits():
    probs = np.array([[0.95, 0.05], [0.6, 0.4], [0.55, 0.45]])
    exit_probs = np.array([[[0.9, 0.1], [0.8, 0.2]], [[0.99, 0.01], [0.6, 0.4]], [[0.5, 0.5], [0.1, 0.9]]])
    exits = ExitOutputs(example_ids=np.array(["a", "b", "c"]), labels=np.array([0, 0, 1]), layers=np.array([1, 2]),
                        probs=exit_probs, logits=np.log(exit_probs))
    routing = route_hybrid(probs, exits, 0.9, policy="maxprob", param=0.95)
    assert routing.exit_index.tolist() == [0, 1, 2]  # a stays; b exits at layer 1 (0.99 > 0.95); c runs to the end
    assert routing.pred.tolist() == [0, 0, 1] and routing.escalated.tolist() == [False, True, True]
    costs = hybrid_costs(1.0, np.array([2.0, 4.0]))[0]
    assert costs.tolist() == [1.0, 3.0, 5.0]
    tau, param = tune_hybrid(probs, exits, 4 / 3, costs=costs, full=4.0, metric="accuracy", grid=[0.95, 0.999],
                             policy="maxprob")
    assert 4.0 / costs[route_hybrid(probs, exits, tau, policy="maxprob", param=param).exit_index].mean() >= 4 / 3
    with pytest.raises(ValueError, match="small model probabilities"):
        route_hybrid(probs[:2], exits, 0.9, policy="maxprob", param=0.9)


def test_flops_need_the_small_backbones_sizes_and_token_counts():
    unknown = dataclasses.replace(STUDY, small_shape=None)
    with pytest.raises(ValueError, match="sizes of every member's backbone"):
        tuned_cascade_point(FRAME, unknown, ("small-1L", "complete-6L"), 2.0, 0, label="c")
    without_tokens = FRAME.drop(columns="tokens")
    with pytest.raises(ValueError, match="token counts"):
        tuned_exit_point(without_tokens, STUDY, "deebert", 2.0, 0)
    with pytest.raises(ValueError, match="'layers' or 'flops'"):
        Study("toy", "accuracy", 6, WIDE, 2, unit="seconds")


@pytest.mark.parametrize("unit", ["flops", "layers"])
def test_the_explorers_point_of_a_three_member_cascade_is_the_main_tables(unit):
    """One threshold per non-final member, chosen on tune in the study's unit, exactly as the main table."""
    from workbench.ui.state import explorer_state, operating_param
    study = dataclasses.replace(STUDY, unit=unit)
    members, label = ("small-1L", "small-2L", "complete-6L"), "cascade small-1L>small-2L>6L"
    for target in (2.0, 3.0):
        answers = tuned_cascade_point(FRAME, study, members, target, 0, label=label)
        chosen = operating_param(FRAME, study=study, method=label, policy="maxprob", target=target)
        assert len(chosen) == 2 and chosen == pytest.approx(answers.values)
        state = explorer_state(FRAME, study=study, method=label, policy="maxprob", param=chosen)
        assert (state.metric, state.speedup_layers, state.speedup_flops) == pytest.approx(
            (answers.metric, answers.speedup_layers, answers.speedup_flops))


def test_a_hybrid_point_reads_as_its_two_rules():
    point = tuned_hybrid_point(FRAME, STUDY, "small-1L", 3.0, 0)
    assert point.method == "hybrid small-1L>deebert" and point.members == ("small-1L", "deebert")
    tau, entropy = point.values
    assert point.rule_text() == f"max prob > {tau:.4g}, then entropy < {entropy:.4g}"
    assert point.exits == (1, 1, 2, 3, 4, 5, 6)  # the small model, then DeeBERT's exits
    assert set(point.layers_executed) <= {1 + k for k in range(0, 7)}


def test_the_explorers_fallback_is_in_the_studys_unit_too():
    """Without a tune split, the explorer takes the grid value closest to the target on test, measured in the
    unit of the targets."""
    from workbench.ui.state import explorer_curve, explorer_state, operating_param
    label, test_only = "cascade small-1L>6L", FRAME[FRAME["split"] == "test"]
    chosen = operating_param(test_only, study=STUDY, method=label, policy="maxprob", target=3.0)
    curve = explorer_curve(test_only, study=STUDY, method=label, policy="maxprob")
    flops = np.array([explorer_state(test_only, study=STUDY, method=label, policy="maxprob", param=p).speedup_flops
                      for p in curve["param"]])
    assert chosen == curve["param"].iloc[int(np.argmin(np.abs(flops - 3.0)))]
    by_layers = curve["param"].iloc[int(np.argmin(np.abs(curve["speedup_layers"].to_numpy() - 3.0)))]
    assert chosen != by_layers  # the narrow member is cheap: in layers another setting would look closest
