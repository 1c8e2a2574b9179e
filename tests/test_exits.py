"""Early-exit policies on hand-made outputs: strict thresholds, PABEE patience, oracle, speed-ups, tuning."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.methods.exits import (ExitOutputs, choose_for_speedup, default_grid, entropy, entropy_exit,
                                     evaluate_decision, maxprob_exit, oracle_exit, patience_exit, random_exit_reference,
                                     static_exit, sweep)
from workbench.runs.outputs import outputs_frame


def make_out(probs, labels, layers=None) -> ExitOutputs:
    probs = np.asarray(probs, dtype=np.float64)
    n, m, _ = probs.shape
    layers = np.arange(1, m + 1) if layers is None else np.asarray(layers)
    return ExitOutputs(example_ids=np.array([f"ex{i:03d}" for i in range(n)]), labels=np.asarray(labels),
                       layers=layers, probs=probs, logits=np.log(probs + 1e-12))


def from_preds(preds, labels=None, conf=0.9) -> ExitOutputs:
    """Binary outputs whose argmax sequence per example is `preds` [n, m]."""
    preds = np.asarray(preds)
    probs = np.where(preds[..., None] == np.arange(2), conf, 1 - conf)
    return make_out(probs, np.zeros(len(preds), dtype=int) if labels is None else labels)


def random_out(n=500, m=6, classes=3, seed=0) -> ExitOutputs:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, m, classes)) * np.linspace(0.5, 3, m)[None, :, None]
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return make_out(probs, rng.integers(0, classes, n))


# --- max-prob -------------------------------------------------------------------------------------------------

def test_maxprob_is_strict_at_the_threshold():
    out = make_out([[[0.75, 0.25], [0.9, 0.1], [0.95, 0.05]]], [0])
    assert maxprob_exit(out, 0.75).exit_layer.tolist() == [2]  # 0.75 is not > 0.75
    assert maxprob_exit(out, 0.7499).exit_layer.tolist() == [1]
    assert maxprob_exit(out, 0.9).exit_layer.tolist() == [3]


def test_maxprob_threshold_zero_and_one():
    out = random_out(n=50)
    assert (maxprob_exit(out, 0.0).exit_index == 0).all()
    assert (maxprob_exit(out, 1.0).exit_index == out.num_exits - 1).all()
    with pytest.raises(ValueError, match="1.5"):
        maxprob_exit(out, 1.5)


def test_decision_reads_the_exit_taken():
    out = make_out([[[0.6, 0.4], [0.2, 0.8], [0.1, 0.9]]], [1], layers=[2, 4, 6])
    decision = maxprob_exit(out, 0.7)
    assert decision.exit_index.tolist() == [1]
    assert decision.exit_layer.tolist() == [4] and decision.layers_executed.tolist() == [4]
    assert decision.pred.tolist() == [1] and decision.confidence.tolist() == [0.8]


# --- entropy (DeeBERT) ----------------------------------------------------------------------------------------

def test_entropy_uses_natural_log():
    assert entropy(np.array([0.5, 0.5])) == pytest.approx(np.log(2))
    assert entropy(np.array([0.25] * 4)) == pytest.approx(np.log(4))
    assert entropy(np.array([1.0, 0.0])) == 0.0


def test_entropy_zero_never_exits_early_even_when_one_hot():
    out = make_out([[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]] * 2, [0, 0])
    assert (entropy_exit(out, 0.0).exit_index == 2).all()
    assert (entropy_exit(out, 1e-9).exit_index == 0).all()


def test_entropy_is_strict_at_the_threshold():
    out = make_out([[[0.8, 0.2], [0.99, 0.01]]], [0])
    h = float(entropy(np.array([0.8, 0.2])))
    assert entropy_exit(out, h).exit_index.tolist() == [1]  # equal is not below
    assert entropy_exit(out, np.nextafter(h, 1.0)).exit_index.tolist() == [0]


def test_negative_entropy_threshold_raises():
    with pytest.raises(ValueError, match="-0.1.*never"):
        entropy_exit(random_out(n=5), -0.1)


# --- patience (PABEE) -----------------------------------------------------------------------------------------

def test_patience_by_hand():
    out = from_preds([[1, 1, 0, 0, 0, 1]])  # counters 0, 1, 0, 1, 2, 0
    assert patience_exit(out, 2).exit_layer.tolist() == [5]
    assert patience_exit(out, 1).exit_layer.tolist() == [2]
    assert patience_exit(out, 3).exit_layer.tolist() == [6]  # never reached: the last exit


def test_patience_decision_takes_the_prediction_at_the_exit():
    out = from_preds([[0, 1, 1, 1, 0, 0], [1, 0, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0]])
    decision = patience_exit(out, 2)
    assert decision.exit_layer.tolist() == [4, 6, 3]
    assert decision.pred.tolist() == [1, 0, 0]


def test_patience_zero_is_the_full_model():
    out = from_preds([[1, 1, 1, 1, 1, 1], [0, 1, 0, 1, 0, 1]])
    assert patience_exit(out, 0).exit_layer.tolist() == [6, 6]


@pytest.mark.parametrize("patience", [-1, 6, 9, 1.5])
def test_impossible_patience_raises_naming_both_numbers(patience):
    out = from_preds([[1, 1, 0, 0, 0, 1]])
    with pytest.raises(ValueError, match=rf"0\.\.5 .*6 exits.*{patience}"):
        patience_exit(out, patience)


def test_largest_patience_exits_only_when_all_agree():
    out = from_preds([[1] * 6, [1, 1, 1, 1, 1, 0]])
    assert patience_exit(out, 5).exit_layer.tolist() == [6, 6]


# --- oracle and static ----------------------------------------------------------------------------------------

def test_oracle_takes_the_first_correct_exit_or_the_last():
    out = from_preds([[0, 0, 1, 1, 0, 1], [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], labels=[1, 0, 0])
    decision = oracle_exit(out)
    assert decision.exit_layer.tolist() == [3, 1, 6]
    assert decision.pred.tolist() == [1, 0, 1]


def test_static_exit():
    out = random_out(n=20)
    decision = static_exit(out, 4)
    assert (decision.exit_layer == 4).all()
    assert (decision.pred == out.pred[:, 3]).all()
    with pytest.raises(ValueError, match="layer 7 .*1, 2, 3, 4, 5, 6"):
        static_exit(out, 7)


# --- evaluation -----------------------------------------------------------------------------------------------

def test_evaluate_decision_by_hand():
    # 4 examples exit at layers 2, 2, 4, 12 of a 12-layer model with exits at 2, 4, 12
    preds = np.array([[1, 0, 0], [0, 0, 0], [1, 1, 0], [1, 1, 0]])
    probs = np.where(preds[..., None] == np.arange(2), 0.9, 0.1)
    probs[:2, 0] = [0.99, 0.01]  # examples 0 and 1 confident at the first exit: predict 0
    probs[2, 1] = [0.01, 0.99]   # example 2 confident at the second exit: predicts 1
    out = make_out(probs, [0, 1, 1, 0], layers=[2, 4, 12])
    decision = maxprob_exit(out, 0.95)
    assert decision.exit_layer.tolist() == [2, 2, 4, 12]
    result = evaluate_decision(out, decision, metric="accuracy", full_layers=12,
                               exit_flops=np.array([3.0, 5.0, 13.0]), full_flops=12.0)
    assert result["metric"] == 75.0  # preds 0, 0, 1, 0 against labels 0, 1, 1, 0
    assert result["mean_layers"] == 5.0
    assert result["speedup_layers"] == 12 / 5
    assert result["speedup_flops"] == pytest.approx(12 / ((3 + 3 + 5 + 13) / 4))
    assert (result["share_exit_2"], result["share_exit_4"], result["share_exit_12"]) == (0.5, 0.25, 0.25)
    assert np.isnan(evaluate_decision(out, decision, metric="accuracy", full_layers=12)["speedup_flops"])


def test_evaluate_decision_checks_exit_flops_length():
    out = random_out(n=10)
    with pytest.raises(ValueError, match=r"must have shape \(6,\) or \(10, 6\), got \(3,\)"):
        evaluate_decision(out, static_exit(out, 6), metric="accuracy", full_layers=6,
                          exit_flops=np.ones(3), full_flops=1.0)


def test_per_example_flops_weight_each_example_by_its_own_cost():
    out = random_out(n=4)
    decision = static_exit(out, 6)
    flops = np.tile(np.arange(1.0, 7.0), (4, 1)) * np.array([[1.0], [1.0], [3.0], [3.0]])  # long examples cost 3x
    full = np.array([6.0, 6.0, 18.0, 18.0])
    result = evaluate_decision(out, decision, metric="accuracy", full_layers=6, exit_flops=flops, full_flops=full)
    assert result["speedup_flops"] == pytest.approx(1.0)
    first = evaluate_decision(out, static_exit(out, out.layers[0]), metric="accuracy", full_layers=6,
                              exit_flops=flops, full_flops=full)
    assert first["speedup_flops"] == pytest.approx(48 / 8)


def test_sweep_is_tidy_and_sorted():
    out = random_out()
    table = sweep(out, "maxprob", [0.9, 0.5, 0.0, 1.0], metric="accuracy", full_layers=6)
    assert table["param"].tolist() == [0.0, 0.5, 0.9, 1.0]
    assert {"policy", "param", "metric", "mean_layers", "speedup_layers", "speedup_flops"} <= set(table.columns)
    shares = table[[f"share_exit_{layer}" for layer in range(1, 7)]].sum(axis=1)
    assert np.allclose(shares, 1.0)
    assert table["speedup_layers"].is_monotonic_decreasing
    assert table["speedup_layers"].iloc[0] == 6.0 and table["speedup_layers"].iloc[-1] == 1.0
    with pytest.raises(ValueError, match="'greedy'"):
        sweep(out, "greedy", [1], metric="accuracy", full_layers=6)


def test_default_grids_span_full_model_to_first_exit():
    out = random_out()
    for policy, fastest in (("maxprob", 6.0), ("entropy", 6.0), ("patience", 1.5)):  # random argmaxes rarely agree
        table = sweep(out, policy, default_grid(policy, out), metric="accuracy", full_layers=6)
        assert table["speedup_layers"].min() == 1.0
        assert table["speedup_layers"].max() >= fastest
    assert default_grid("patience", out).tolist() == [0, 1, 2, 3, 4, 5]
    assert default_grid("entropy", out)[-1] == pytest.approx(np.log(3))
    grid = default_grid("maxprob", out)
    assert grid[0] == 0.0 and grid[-1] == 1.0 and 0.999999 in grid and len(grid) > 40


def test_random_exit_reference_mixes_adjacent_static_exits():
    # accuracy 0% at layer 2, 100% at layer 4, 50% at layer 12
    preds = np.array([[1, 0, 0], [1, 0, 1]])
    out = from_preds(preds, labels=[0, 0])
    out = ExitOutputs(out.example_ids, out.labels, np.array([2, 4, 12]), out.probs, out.logits)
    assert random_exit_reference(out, 3.0, metric="accuracy") == 50.0
    assert random_exit_reference(out, 3.5, metric="accuracy") == 75.0
    assert random_exit_reference(out, 4.0, metric="accuracy") == 100.0
    assert random_exit_reference(out, 6.0, metric="accuracy") == 100.0 - 50.0 * 2 / 8
    with pytest.raises(ValueError, match="13"):
        random_exit_reference(out, 13.0, metric="accuracy")


def test_random_exit_reference_matches_simulation():
    out = random_out(n=400)
    rng = np.random.default_rng(1)
    w = 0.3  # mean layers 2.3: layer 3 with probability 0.3, else layer 2
    draws = [np.where(rng.random(out.n) < w, out.pred[:, 2], out.pred[:, 1]) for _ in range(2000)]
    simulated = np.mean([100 * np.mean(d == out.labels) for d in draws])
    assert random_exit_reference(out, 2.3, metric="accuracy") == pytest.approx(simulated, abs=0.2)


# --- choosing a parameter for a target speed-up ---------------------------------------------------------------

def test_choose_for_speedup_is_closest_from_above():
    out = random_out(n=1000)
    for policy in ("maxprob", "entropy"):
        grid = default_grid(policy, out)
        table = sweep(out, policy, grid, metric="accuracy", full_layers=6)
        param = choose_for_speedup(out, policy, 2.0, full_layers=6)
        chosen = table.loc[table["param"] == param, "speedup_layers"].iloc[0]
        assert chosen >= 2.0
        assert chosen == table.loc[table["speedup_layers"] >= 2.0, "speedup_layers"].min()


def test_choose_for_speedup_prefers_the_least_aggressive_tie():
    out = from_preds([[1, 1, 1, 1, 1, 1]] * 4)  # every threshold below 0.9 exits at layer 1
    assert choose_for_speedup(out, "maxprob", 6.0, full_layers=6, grid=[0.0, 0.3, 0.8, 0.95]) == 0.8
    assert choose_for_speedup(out, "entropy", 6.0, full_layers=6, grid=[0.1, 0.5, 0.7]) == 0.5


def test_choose_for_speedup_returns_none_when_patience_is_too_coarse():
    # the second example never settles: patience 1, 2 and 0 give 6 / 4 = 1.5x, 6 / 4.5 = 1.33x and 1x
    out = from_preds([[1, 1, 1, 1, 1, 1], [0, 1, 0, 1, 0, 1]])
    assert choose_for_speedup(out, "patience", 1.4, full_layers=6) == 1.0
    assert choose_for_speedup(out, "patience", 1.3, full_layers=6) == 2.0
    assert choose_for_speedup(out, "patience", 1.6, full_layers=6) is None


# --- from_outputs ---------------------------------------------------------------------------------------------

def tidy_table(n=5, layers=(1, 2, 3), seed=0, model="pabee-3L", classes=3):
    rng = np.random.default_rng(seed)
    ids, labels = [f"id{i}" for i in range(n)][::-1], rng.integers(0, classes, n)
    logits = rng.normal(size=(len(layers), n, classes))
    frames = [outputs_frame(logits[j], split=split, example_ids=ids, labels=labels, seed=seed, model=model,
                            layer=layer) for split in ("tune", "test") for j, layer in enumerate(layers)]
    return pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=0), ids, labels, logits


def test_from_outputs_round_trip():
    frame, ids, labels, logits = tidy_table()
    out = ExitOutputs.from_outputs(frame, model="pabee-3L", split="test", seed=0)
    order = np.argsort(ids)
    assert out.example_ids.tolist() == sorted(ids)
    assert out.layers.tolist() == [1, 2, 3] and (out.n, out.num_exits) == (5, 3)
    assert out.labels.tolist() == labels[order].tolist()
    assert np.allclose(out.logits, logits.transpose(1, 0, 2)[order])
    assert np.allclose(out.probs.sum(-1), 1.0)
    assert (out.pred == out.logits.argmax(-1)).all()


def test_from_outputs_names_what_is_available():
    frame, *_ = tidy_table()
    with pytest.raises(ValueError, match=r"model='deebert'.*\['pabee-3L'\].*\['test', 'tune'\].*\[0\]"):
        ExitOutputs.from_outputs(frame, model="deebert", split="test", seed=0)
    with pytest.raises(ValueError, match=r"seed=3.*seeds \[0\]"):
        ExitOutputs.from_outputs(frame, model="pabee-3L", split="test", seed=3)


def test_from_outputs_names_the_missing_exit():
    frame, *_ = tidy_table()
    gap = (frame["example_id"] == "id2") & (frame["layer"] == 2) & (frame["split"] == "test")
    with pytest.raises(ValueError, match="'id2' lacks the exit at layer 2"):
        ExitOutputs.from_outputs(frame[~gap], model="pabee-3L", split="test", seed=0)
    ExitOutputs.from_outputs(frame[~gap], model="pabee-3L", split="tune", seed=0)  # the other split is complete


def test_from_outputs_rejects_duplicate_rows():
    frame, *_ = tidy_table()
    twice = pd.concat([frame, frame[(frame["example_id"] == "id4") & (frame["layer"] == 3)]])
    with pytest.raises(ValueError, match="'id4' has more than one row at layer 3"):
        ExitOutputs.from_outputs(twice, model="pabee-3L", split="test", seed=0)
