"""Cascade routing on hand-made outputs: the strict rule, the paper's cost, threshold choice for a target."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.methods.cascade import CascadeOutputs, evaluate_routing, route, sweep_cascade, thresholds_for_speedup
from workbench.runs.outputs import outputs_frame


def make_out(probs, labels, depths=(2, 12), members=None) -> CascadeOutputs:
    probs = np.asarray(probs, dtype=np.float64)
    members = members or tuple(f"complete-{d}L" for d in depths)
    return CascadeOutputs(example_ids=np.array([f"ex{i:04d}" for i in range(len(probs))]),
                          labels=np.asarray(labels), members=members, depths=np.asarray(depths), probs=probs,
                          logits=np.log(np.clip(probs, 1e-12, None)))


def binary(conf, pred) -> np.ndarray:
    """Binary probabilities [n, k, 2] with max prob `conf` [n, k] on class `pred` [n, k]."""
    conf, pred = np.asarray(conf, dtype=np.float64), np.asarray(pred)
    return np.where(pred[..., None] == np.arange(2), conf[..., None], 1 - conf[..., None])


def random_out(n=2000, depths=(2, 12), classes=3, seed=0) -> CascadeOutputs:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, len(depths), classes)) * 2.0
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return make_out(probs, rng.integers(0, classes, n), depths=depths)


def realised(out, thresholds, full_layers=12) -> float:
    return full_layers / np.mean(route(out, thresholds).layers_executed)


# --- routing --------------------------------------------------------------------------------------------------

def test_route_is_strict_at_the_threshold():
    out = make_out(binary([[0.75, 0.9], [0.76, 0.9]], [[0, 1], [0, 1]]), [0, 0])
    routing = route(out, [0.75])  # 0.75 is not > 0.75: the first example escalates
    assert routing.member_index.tolist() == [1, 0]
    assert routing.escalated.tolist() == [True, False]
    assert routing.pred.tolist() == [1, 0] and routing.confidence.tolist() == [0.9, 0.76]
    assert routing.layers_executed.tolist() == [14, 2]


def test_thresholds_zero_and_one():
    out = random_out(n=100)
    assert (route(out, [0.0]).member_index == 0).all()  # a max prob is always > 0
    assert (route(out, [1.0]).member_index == 1).all()  # and never > 1
    saturated = make_out(binary([[1.0, 1.0]], [[0, 0]]), [0])
    assert route(saturated, [1.0]).member_index.tolist() == [1]


def test_bad_thresholds_raise():
    out = random_out(n=10)
    with pytest.raises(ValueError, match=r"\[1.2\]"):
        route(out, [1.2])
    with pytest.raises(ValueError, match=r"-0.1"):
        route(out, [-0.1])
    with pytest.raises(ValueError, match="needs 1 threshold"):
        route(out, [0.5, 0.6])


def test_paper_speedup_2L_to_12L_with_one_in_twelve_escalated():
    conf = np.full((12, 2), 0.95)
    conf[0, 0] = 0.6  # 1 of 12 examples (8.33%) escalates
    out = make_out(binary(conf, np.zeros((12, 2), dtype=int)), np.zeros(12, dtype=int))
    result = evaluate_routing(out, route(out, [0.8]), metric="accuracy", full_layers=12,
                              member_flops=np.array([2.0, 12.0]), full_flops=12.0)
    assert result["mean_layers"] == 3.0  # (11 * 2 + 14) / 12 = 2 + 12 / 12
    assert result["speedup_layers"] == 4.0
    assert result["speedup_flops"] == 4.0
    assert result["escalated"] == pytest.approx(1 / 12)
    assert result["share_member_complete-2L"] == pytest.approx(11 / 12)
    assert result["metric"] == 100.0


def test_speedup_flops_when_widths_differ():
    # a narrow small model: 1 unit of FLOPs against 12 for the large one; half the examples escalate
    out = make_out(binary([[0.9, 0.9], [0.6, 0.9]], [[0, 0], [0, 0]]), [0, 0])
    result = evaluate_routing(out, route(out, [0.7]), metric="accuracy", full_layers=12,
                              member_flops=[1.0, 12.0], full_flops=12.0)
    assert result["speedup_flops"] == 12 / ((1 + 13) / 2)
    assert result["speedup_layers"] == 12 / ((2 + 14) / 2)
    assert np.isnan(evaluate_routing(out, route(out, [0.7]), metric="accuracy", full_layers=12)["speedup_flops"])


def test_three_member_cascade_by_hand():
    conf = [[0.9, 0.1, 0.1], [0.5, 0.9, 0.1], [0.5, 0.5, 0.6], [0.7, 0.8, 0.99]]
    pred = [[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]]
    out = make_out(binary(conf, pred), [1, 1, 0, 1], depths=(2, 6, 12))
    routing = route(out, [0.8, 0.8])
    assert routing.member_index.tolist() == [0, 1, 2, 2]
    assert routing.layers_executed.tolist() == [2, 8, 20, 20]
    assert routing.pred.tolist() == [1, 1, 0, 1]
    result = evaluate_routing(out, routing, metric="accuracy", full_layers=12)
    assert result["metric"] == 100.0
    assert result["mean_layers"] == 12.5 and result["speedup_layers"] == 12 / 12.5
    assert [result[f"share_member_complete-{d}L"] for d in (2, 6, 12)] == [0.25, 0.25, 0.5]
    assert result["escalated"] == 0.75


# --- choosing thresholds for a target speed-up ----------------------------------------------------------------

@pytest.mark.parametrize("target", [1.5, 2.0, 3.0, 4.0, 5.0])
def test_thresholds_for_speedup_hits_the_target_from_above(target):
    out = random_out()
    (tau,) = thresholds_for_speedup(out, target, full_layers=12)
    speedup = realised(out, [tau])
    assert target <= speedup <= 1.02 * target
    # the least aggressive: the next observed confidence above tau would escalate one more and miss the target
    above = np.sort(out.confidence[:, 0][out.confidence[:, 0] > tau])
    if len(above):
        assert realised(out, [above[0]]) < target


def test_thresholds_for_speedup_at_the_ceiling_and_beyond():
    out = random_out()
    assert thresholds_for_speedup(out, 6.0, full_layers=12) == (0.0,)  # everyone stops at the 2L member
    assert thresholds_for_speedup(out, 6.01, full_layers=12) is None
    assert thresholds_for_speedup(out, 1.0, full_layers=12) is not None
    assert thresholds_for_speedup(out, 0.5, full_layers=12) == (1.0,)  # everyone may escalate


def test_thresholds_for_speedup_by_flops():
    out = random_out()
    flops = np.array([1.0, 12.0])
    (tau,) = thresholds_for_speedup(out, 8.0, full_layers=12, member_flops=flops, full_flops=12.0, by="flops")
    result = evaluate_routing(out, route(out, [tau]), metric="accuracy", full_layers=12, member_flops=flops,
                              full_flops=12.0)
    assert 8.0 <= result["speedup_flops"] <= 8.0 * 1.02
    assert result["speedup_layers"] < 6.0
    with pytest.raises(ValueError, match="full_flops"):
        thresholds_for_speedup(out, 2.0, full_layers=12, member_flops=flops, by="flops")


def test_thresholds_for_speedup_three_members():
    out = random_out(depths=(2, 6, 12))
    thresholds = thresholds_for_speedup(out, 2.0, full_layers=12)
    assert len(thresholds) == 2
    assert 2.0 <= realised(out, thresholds) <= 2.0 * 1.02
    # the chosen combination is at least as accurate as every grid combination that reaches the target
    chosen = evaluate_routing(out, route(out, thresholds), metric="accuracy", full_layers=12)["metric"]
    table = sweep_cascade(out, [(t1, t2) for t1 in np.linspace(0, 1, 11) for t2 in np.linspace(0, 1, 11)],
                          metric="accuracy", full_layers=12)
    assert chosen >= table.loc[table["speedup_layers"] >= 2.0, "metric"].max() - 1.0
    assert thresholds_for_speedup(out, 6.5, full_layers=12) is None


# --- sweep and from_outputs -----------------------------------------------------------------------------------

def test_sweep_cascade_rows():
    out = random_out(n=200)
    table = sweep_cascade(out, [0.9, 0.3, 0.6], metric="accuracy", full_layers=12)
    assert table["threshold_complete-2L"].tolist() == [0.3, 0.6, 0.9]
    assert table["speedup_layers"].is_monotonic_decreasing
    assert {"metric", "mean_layers", "speedup_layers", "speedup_flops", "escalated"} <= set(table.columns)


def tidy_table(n=6, depths=(2, 6, 12), seed=0):
    rng = np.random.default_rng(seed)
    ids, labels = [f"id{i}" for i in range(n)][::-1], rng.integers(0, 2, n)
    logits = rng.normal(size=(len(depths), n, 2))
    frames = [outputs_frame(logits[j], split="tune", example_ids=ids, labels=labels, seed=seed,
                            model=f"complete-{d}L", layer=d) for j, d in enumerate(depths)]
    return pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=1), ids, labels, logits


def test_from_outputs_round_trip():
    frame, ids, labels, logits = tidy_table()
    out = CascadeOutputs.from_outputs(frame, members=["complete-2L", "complete-12L"], split="tune", seed=0)
    order = np.argsort(ids)
    assert out.members == ("complete-2L", "complete-12L") and out.depths.tolist() == [2, 12]
    assert out.example_ids.tolist() == sorted(ids) and out.labels.tolist() == labels[order].tolist()
    assert np.allclose(out.logits, logits[[0, 2]].transpose(1, 0, 2)[order])
    assert np.allclose(out.probs.sum(-1), 1.0)


def test_from_outputs_errors():
    frame, *_ = tidy_table()
    with pytest.raises(ValueError, match=r"'complete-4L'.*\['complete-12L', 'complete-2L', 'complete-6L'\]"):
        CascadeOutputs.from_outputs(frame, members=["complete-2L", "complete-4L"], split="tune", seed=0)
    with pytest.raises(ValueError, match="increasing depth"):
        CascadeOutputs.from_outputs(frame, members=["complete-6L", "complete-2L"], split="tune", seed=0)
    gap = (frame["model"] == "complete-12L") & (frame["example_id"] == "id3")
    with pytest.raises(ValueError, match="'id3' has outputs for member 'complete-2L' but not for 'complete-12L'"):
        CascadeOutputs.from_outputs(frame[~gap], members=["complete-2L", "complete-12L"], split="tune", seed=0)
    multi = frame.assign(model="early-exit")
    with pytest.raises(ValueError, match=r"layers \[2, 6, 12\]"):
        CascadeOutputs.from_outputs(multi, members=["early-exit", "complete-12L"], split="tune", seed=0)
