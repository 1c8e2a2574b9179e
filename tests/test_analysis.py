import math

import numpy as np
import pandas as pd
import pytest

from workbench.measures.analysis import (BootstrapResult, DisResult, difficulty_inversion_score, dis_table,
                                         escalation_budget, gap_closed, logit_margin, oracle_cascade, oracle_ceiling,
                                         paired_bootstrap, paired_bootstrap_metric, random_escalation)
from workbench.measures.metrics import accuracy, f1


def brute_force_dis(signal, correct):
    """O(n^2) reference: every (correct, wrong) pair."""
    concordant = ties = pairs = 0
    for i in np.flatnonzero(correct):
        for j in np.flatnonzero(~np.asarray(correct)):
            pairs += 1
            concordant += signal[i] > signal[j]
            ties += signal[i] == signal[j]
    return concordant, ties, pairs


# ----------------------------------------------------------------------------- DIS

def test_dis_by_hand():
    # pairs (correct, wrong): (.9,.8) c, (.9,.6) c, (.8,.8) tie, (.8,.6) c -> (3 + 0.5) / 4
    result = difficulty_inversion_score([0.9, 0.8, 0.8, 0.6], [True, True, False, False])
    assert result == DisResult(dis=87.5, ties=1, pairs=4)
    assert difficulty_inversion_score([0.1, 0.2, 0.9], [1, 1, 0]) == DisResult(dis=0.0, ties=0, pairs=2)
    assert difficulty_inversion_score([0.9, 0.2, 0.1], [1, 0, 0]) == DisResult(dis=100.0, ties=0, pairs=2)


def test_dis_counts_saturated_ties_exactly():
    signal = np.array([1.0, 1.0, 1.0, 1.0, 0.7, 0.6])
    correct = np.array([True, True, True, False, False, True])
    # correct {1, 1, 1, .6}, wrong {1, .7}: ties 3 (1 vs 1); concordant 3 (1 vs .7); .6 loses both
    assert difficulty_inversion_score(signal, correct) == DisResult(dis=100 * 4.5 / 8, ties=3, pairs=8)
    constant = difficulty_inversion_score(np.ones(10), np.arange(10) < 4)
    assert constant == DisResult(dis=50.0, ties=24, pairs=24)


@pytest.mark.parametrize("seed", range(8))
def test_dis_matches_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    signal = np.round(rng.random(n), 1)                     # many ties
    correct = rng.random(n) < 0.6
    result = difficulty_inversion_score(signal, correct)
    concordant, ties, pairs = brute_force_dis(signal, correct)
    assert (result.ties, result.pairs) == (ties, pairs)
    if pairs:
        assert result.dis == pytest.approx(100 * (concordant + 0.5 * ties) / pairs, abs=1e-12)
    else:
        assert math.isnan(result.dis)


@pytest.mark.parametrize("seed", range(3))
def test_dis_is_100_times_auroc(seed):
    roc_auc_score = pytest.importorskip("sklearn.metrics").roc_auc_score
    rng = np.random.default_rng(seed)
    signal = np.minimum(rng.random(500) * 1.3, 1.0)         # a third saturates at 1.0
    correct = rng.random(500) < signal * 0.8
    expected = 100 * roc_auc_score(correct, signal)
    assert difficulty_inversion_score(signal, correct).dis == pytest.approx(expected, abs=1e-9)


def test_dis_on_70k_items_with_many_ties():
    rng = np.random.default_rng(0)
    signal = np.round(rng.random(70_000), 3)
    correct = rng.random(70_000) < signal
    result = difficulty_inversion_score(signal, correct)
    assert result.pairs == int(correct.sum()) * int((~correct).sum())
    assert 70 < result.dis < 90                             # AUROC of p for Bernoulli(p) on uniform p is 0.83


def test_dis_without_pairs_is_nan():
    for correct in ([True, True], [False, False, False], []):
        result = difficulty_inversion_score(np.linspace(0, 1, len(correct)), correct)
        assert math.isnan(result.dis) and result.pairs == 0 and result.ties == 0


def test_dis_validation():
    with pytest.raises(ValueError, match="signal has 3 items but correct has 2"):
        difficulty_inversion_score([0.1, 0.2, 0.3], [True, False])
    with pytest.raises(ValueError, match="NaN at index 1"):
        difficulty_inversion_score([0.1, np.nan], [True, False])
    with pytest.raises(ValueError, match="got 3 at index 1"):
        difficulty_inversion_score([0.1, 0.2], [1, 3])


def test_logit_margin():
    margin = logit_margin([[1.0, 3.0, 2.5], [0.0, -1.0, 0.0], [-2.0, 5.0, 1.0]])
    assert margin.tolist() == [0.5, 0.0, 4.0]
    with pytest.raises(ValueError, match=r"got shape \(2, 1\)"):
        logit_margin([[1.0], [2.0]])


# ----------------------------------------------------------------------------- dis_table

def outputs_rows(split, model, layer, seed, logits, labels):
    logits = np.asarray(logits, dtype=float)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    frame = pd.DataFrame({"split": split, "example_id": [f"e{i}" for i in range(len(labels))], "seed": seed,
                          "model": model, "layer": layer, "label": labels, "pred": probs.argmax(1),
                          "confidence": probs.max(1), "correct": probs.argmax(1) == np.asarray(labels)})
    for c in range(logits.shape[1]):
        frame[f"prob_{c}"] = probs[:, c]
    for c in range(logits.shape[1]):
        frame[f"logit_{c}"] = logits[:, c]
    return frame


def test_dis_table_one_row_per_exit():
    # correct items have margins 3, 1 and wrong items 2, 0.5: concordant (3,2) (3,.5) (1,.5) -> 75
    logits = [[3.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.5, 0.0]]
    labels = [0, 0, 1, 1]
    # probabilities saturate: 40 vs 41 and 40 vs 39 tie at confidence 1.0, not on the margin
    saturated = [[40.0, 0.0], [0.0, 41.0], [39.0, 0.0], [0.0, 0.0]]
    outputs = pd.concat([outputs_rows("test", "complete-2L", 2, 1, logits, labels),
                         outputs_rows("test", "complete-12L", 12, 1, saturated, [0, 1, 1, 1]),
                         outputs_rows("test", "complete-2L", 2, 2, logits, [1, 1, 0, 0]),
                         outputs_rows("tune", "complete-2L", 2, 1, logits, [0, 1, 1, 1])], ignore_index=True)
    table = dis_table(outputs)
    assert list(table.columns) == ["model", "layer", "seed", "dis", "dis_logit", "ties", "ties_logit", "pairs",
                                   "accuracy", "n"]
    assert len(table) == 3
    row = table[(table["model"] == "complete-2L") & (table["seed"] == 1)].iloc[0]
    assert (row["dis"], row["dis_logit"], row["pairs"], row["accuracy"], row["n"]) == (75.0, 75.0, 4, 50.0, 4)
    flipped = table[(table["model"] == "complete-2L") & (table["seed"] == 2)].iloc[0]
    assert flipped["dis"] == 25.0                            # now the wrong items are the confident ones
    big = table[table["model"] == "complete-12L"].iloc[0]
    # correct: margins 40, 41 (confidence 1.0, 1.0); wrong: 39 (1.0) and 0 (0.5)
    assert (big["ties"], big["ties_logit"], big["pairs"]) == (2, 0, 4)
    assert big["dis"] == 75.0 and big["dis_logit"] == 100.0
    assert dis_table(outputs, split="tune")["accuracy"].tolist() == [25.0]


def test_dis_table_errors():
    frame = outputs_rows("test", "m", 2, 1, [[1.0, 0.0]], [0])
    with pytest.raises(ValueError, match=r"no rows of split 'dev'; splits present: \['test'\]"):
        dis_table(frame, split="dev")
    with pytest.raises(ValueError, match="lacks column"):
        dis_table(frame.drop(columns=["confidence"]))


# ----------------------------------------------------------------------------- paired bootstrap

def test_paired_bootstrap_diff_and_pairing():
    result = paired_bootstrap([True, True, True, False], [True, False, True, False])
    assert isinstance(result, BootstrapResult) and result.diff == 25.0
    assert result.low <= result.diff <= result.high
    same = np.random.default_rng(0).random(300) < 0.7
    tied = paired_bootstrap(same, same.copy())               # paired resampling: difference is always 0
    assert (tied.diff, tied.low, tied.high, tied.verdict) == (0.0, 0.0, 0.0, "indistinguishable")


def test_paired_bootstrap_verdicts_and_symmetry():
    rng = np.random.default_rng(1)
    b = rng.random(2000) < 0.75
    a = b | (rng.random(2000) < 0.2)                         # A fixes about 5 points of B's errors
    better = paired_bootstrap(a, b, seed=3)
    worse = paired_bootstrap(b, a, seed=3)
    assert better.verdict == "better" and worse.verdict == "worse"
    assert better.diff == pytest.approx(100 * (a.mean() - b.mean()))
    assert (worse.low, worse.high) == pytest.approx((-better.high, -better.low))
    assert paired_bootstrap(a, b, seed=3) == better          # deterministic given the seed


def test_paired_bootstrap_width_matches_normal_theory():
    rng = np.random.default_rng(2)
    a, b = rng.random(2000) < 0.80, rng.random(2000) < 0.78
    d = 100 * (a.astype(float) - b)
    half_width = 1.96 * d.std() / np.sqrt(len(d))
    result = paired_bootstrap(a, b, n_boot=2000)
    assert (result.high - result.low) / 2 == pytest.approx(half_width, rel=0.1)


def test_paired_bootstrap_scale_for_scores():
    result = paired_bootstrap([0.2, 0.4, 0.6], [0.1, 0.1, 0.1], scale=1.0, n_boot=50)
    assert result.diff == pytest.approx(0.3)


def test_paired_bootstrap_metric_agrees_with_accuracy_bootstrap():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 400)
    pred_a = np.where(rng.random(400) < 0.85, labels, 1 - labels)
    pred_b = np.where(rng.random(400) < 0.80, labels, 1 - labels)
    by_metric = paired_bootstrap_metric(labels, pred_a, pred_b, metric_fn=accuracy, n_boot=300, seed=5)
    by_mean = paired_bootstrap(pred_a == labels, pred_b == labels, n_boot=300, seed=5)
    assert (by_metric.diff, by_metric.low, by_metric.high) == pytest.approx((by_mean.diff, by_mean.low,
                                                                             by_mean.high))
    assert by_metric.verdict == by_mean.verdict


def test_paired_bootstrap_metric_f1_by_hand():
    # F1(A) = 2*2 / (4 + 1) = 80; F1(B) = 2*1 / (2 + 0 + 1) = 66.67
    result = paired_bootstrap_metric([1, 1, 0, 0], [1, 1, 0, 1], [1, 0, 0, 0], metric_fn=f1, n_boot=100)
    assert result.diff == pytest.approx(80 - 200 / 3)


def test_paired_bootstrap_validation():
    with pytest.raises(ValueError, match="a has 3 items but b has 2"):
        paired_bootstrap([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="confidence must be in"):
        paired_bootstrap([1, 0], [1, 0], confidence=95)
    with pytest.raises(ValueError, match="n_boot must be an integer >= 1; got 0"):
        paired_bootstrap([1, 0], [1, 0], n_boot=0)
    with pytest.raises(ValueError, match="labels has 2 items but pred_b has 3"):
        paired_bootstrap_metric([1, 0], [1, 0], [1, 0, 0], metric_fn=f1)


# ----------------------------------------------------------------------------- cascade reference lines

A_SMALL = np.array([1, 1, 0, 0, 0, 1, 0, 1, 0, 0], dtype=bool)   # P(a_S) = 0.4
A_LARGE = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 0], dtype=bool)   # P(a_L) = 0.6; fixes items 2, 3, 6


def test_random_escalation_by_hand():
    assert random_escalation(A_SMALL, A_LARGE, 0.2) == pytest.approx(100 * (0.8 * 0.4 + 0.2 * 0.6))  # 44
    assert random_escalation(A_SMALL, A_LARGE, 0.0) == pytest.approx(40.0)
    assert random_escalation(A_SMALL, A_LARGE, 1.0) == pytest.approx(60.0)


def test_oracle_cascade_and_ceiling_by_hand():
    assert oracle_cascade(A_SMALL, A_LARGE, 0.2) == pytest.approx(60.0)       # 40 + min(20, 30)
    assert oracle_cascade(A_SMALL, A_LARGE, 0.5) == pytest.approx(70.0)       # 40 + min(50, 30)
    assert oracle_cascade(A_SMALL, A_LARGE, 0.0) == pytest.approx(40.0)
    assert oracle_ceiling(A_SMALL, A_LARGE) == pytest.approx(70.0)            # items 0,1,2,3,5,6,7


def test_gap_closed():
    assert gap_closed(52.0, 44.0, 60.0) == pytest.approx(0.5)
    assert gap_closed(44.0, 44.0, 60.0) == 0.0
    assert gap_closed(40.0, 44.0, 60.0) == pytest.approx(-0.25)
    assert math.isnan(gap_closed(50.0, 60.0, 60.0))


def test_reference_lines_validation():
    with pytest.raises(ValueError, match="a_small has 2 items but a_large has 3"):
        oracle_ceiling([1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="got 1.5"):
        random_escalation(A_SMALL, A_LARGE, 1.5)


def test_escalation_budget_paper_targets():
    assert escalation_budget(4.0, 2, 12, 12) == pytest.approx(1 / 12, abs=1e-15)
    assert escalation_budget(3.0, 2, 12, 12) == pytest.approx(1 / 6, abs=1e-15)
    assert escalation_budget(2.0, 2, 12, 12) == pytest.approx(1 / 3, abs=1e-15)
    assert escalation_budget(6.0, 2, 12, 12) == 0.0                       # the ceiling: nothing escalated
    assert escalation_budget(0.5, 2, 12, 12) == 1.0                       # clipped
    r = escalation_budget(2.5, 3, 12, 12)
    assert 12 / (3 + r * 12) == pytest.approx(2.5)


def test_escalation_budget_rejects_speedups_above_ceiling():
    with pytest.raises(ValueError, match=r"speed-up 7\.0 exceeds the ceiling 6 "):
        escalation_budget(7.0, 2, 12, 12)
    with pytest.raises(ValueError, match="speedup must be > 0"):
        escalation_budget(0.0, 2, 12, 12)


def test_escalation_references_in_any_metric():
    from workbench.measures.analysis import escalation_references
    from workbench.measures.metrics import accuracy, mcc
    labels = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    small = np.array([0, 0, 1, 1, 0, 0, 1, 0])     # wrong on items 1, 3, 4, 7
    large = np.array([0, 1, 1, 0, 1, 1, 0, 1])     # fixes 1, 3, 4, 7; breaks 5, 6
    refs = escalation_references(labels, small, large, 0.25, metric_fn=accuracy)
    a_small, a_large = small == labels, large == labels
    assert refs["oracle"] == pytest.approx(oracle_cascade(a_small, a_large, 0.25))      # two of the four fixes
    assert refs["ceiling"] == pytest.approx(oracle_ceiling(a_small, a_large))
    assert refs["random"] == pytest.approx(random_escalation(a_small, a_large, 0.25), abs=2.0)
    in_mcc = escalation_references(labels, small, large, 0.25, metric_fn=mcc)
    fixed = small.copy()
    fixed[[1, 3]] = large[[1, 3]]
    assert in_mcc["oracle"] == pytest.approx(mcc(labels, fixed))
    assert in_mcc["random"] <= in_mcc["oracle"] <= in_mcc["ceiling"]


def test_gap_closed_is_undefined_when_there_is_no_gap():
    assert np.isnan(gap_closed(80.0, 80.0, 80.0 + 1e-14))
    assert gap_closed(81.0, 80.0, 82.0) == pytest.approx(0.5)


def test_an_interval_end_at_zero_up_to_float_sums_is_a_tie():
    """Accuracy averaged over 3 seeds per item gives thirds; a resample whose differences cancel exactly can
    sum to -6e-17 instead of 0, which must not turn a tie into 'worse' (seen on SST-2: [-5.43, -6.2e-17])."""
    from workbench.measures.analysis import _summarise
    tie = _summarise(-1.0, np.array([-2.0] * 50 + [-6.19e-17] * 950), 0.95)
    assert tie.high == 0.0 and tie.verdict == "indistinguishable"
    assert _summarise(-1.0, np.array([-2.0] * 50 + [-1e-6] * 950), 0.95).verdict == "worse"
    per_seed = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0]], dtype=float)  # three items, three seeds
    a, b = per_seed.mean(axis=1), per_seed[[1, 2, 0]].mean(axis=1)  # the same thirds, summed in another order
    assert paired_bootstrap(a, b, n_boot=200).verdict == "indistinguishable"
