"""Exit and deferral signals on hand-computed toy outputs; cross-fitting never scores an example with its label."""
import numpy as np
import pytest

from workbench.methods.signals import (FEATURES, SIGNALS, Scored, Stages, agreement_signal, auroc_wrong,
                                       averaged_signal, deferral_features, fold_ids, maxprob_signal, score_splits,
                                       stage_thresholds, stop, threshold_for_speedup, thresholds_per_stage)


def toy() -> Stages:
    # 3 examples, 3 stages, 2 classes
    probs = np.array([[[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]],
                      [[0.4, 0.6], [0.7, 0.3], [0.2, 0.8]],
                      [[0.55, 0.45], [0.6, 0.4], [0.95, 0.05]]])
    return Stages(np.array(["a", "b", "c"]), np.array([0, 1, 0]), probs, np.array([10.0, 20.0, 30.0]))


def synthetic(n: int, m: int = 4, seed: int = 0) -> Stages:
    """Stages that grow surer and more often right, with difficulty shared across stages."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    difficulty = rng.normal(size=n)
    logits = np.zeros((n, m, 2))
    for k in range(m):
        strength = (k + 1) * 0.8 - difficulty + rng.normal(scale=0.7, size=n)
        logits[np.arange(n), k, labels] = strength
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return Stages(np.array([f"x{i}" for i in range(n)]), labels, probs, rng.integers(5, 60, n).astype(float))


def test_maxprob_and_agreement_by_hand():
    s = toy()
    assert maxprob_signal(s).score.tolist() == [[0.9, 0.8, 0.7], [0.6, 0.7, 0.8], [0.55, 0.6, 0.95]]
    agree = agreement_signal(s).score
    np.testing.assert_allclose(agree[0], [0.9, 1.7, 2.4])  # all three say 0
    np.testing.assert_allclose(agree[1], [0.6, 0.7, 0.8])  # 1, 0, 1: no two consecutive agree
    np.testing.assert_allclose(agree[2], [0.55, 1.15, 2.10])


def test_averaged_answers_from_the_running_mean():
    s = averaged_signal(toy())
    # example b: stage 2 mean of [0.4,0.6] and [0.7,0.3] is [0.55,0.45] -> class 0, score 0.55
    # stage 3 mean of example b: [1.3, 1.7] / 3 -> class 1
    assert s.pred[1].tolist() == [1, 0, 1]
    np.testing.assert_allclose(s.score[1], [0.6, 0.55, 1.7 / 3])


def test_deferral_features_by_hand():
    f = deferral_features(toy())
    assert f.shape == (3, 3, len(FEATURES))
    col = {name: i for i, name in enumerate(FEATURES)}
    np.testing.assert_allclose(f[0, :, col["margin"]], [0.8, 0.6, 0.4])
    np.testing.assert_allclose(f[0, :, col["maxprob_change"]], [0.0, -0.1, -0.1])
    assert f[1, :, col["agreeing"]].tolist() == [0, 0, 0] and f[2, :, col["agreeing"]].tolist() == [0, 1, 2]
    np.testing.assert_allclose(f[:, 0, col["log_tokens"]], np.log1p([10, 20, 30]))


def test_stop_and_threshold_for_speedup():
    s = maxprob_signal(toy())
    assert stop(s, 0.85).tolist() == [0, 2, 2]
    assert stop(s, 0.0).tolist() == [0, 0, 0]
    cost = np.broadcast_to(np.array([1.0, 2.0, 3.0]), (3, 3))
    full = np.full(3, 3.0)
    # 1.5x needs mean cost <= 2. At 0.65 (midway between scores 0.6 and 0.7) a stops at stage 1, b at 2, c at 3:
    # mean cost 2. The next candidate, 0.75, sends b on to stage 3: mean 7/3, too slow.
    assert threshold_for_speedup(s, cost, full, 1.5) == pytest.approx(0.65)
    assert np.mean(cost[np.arange(3), stop(s, 0.75)]) == pytest.approx(7 / 3)
    assert threshold_for_speedup(s, cost, full, 3.1) is None


def test_a_threshold_per_stage_beats_any_single_threshold_by_hand():
    # a's first stage is sure and wrong; its second stage, like c's, is right but less sure than a's first.
    # One threshold either lets a out wrong at stage 1 or sends a and c to the last stage (too slow for 1.5x).
    score = np.array([[0.8, 0.6, 0.5], [0.9, 0.2, 0.5], [0.1, 0.6, 0.5], [0.1, 0.1, 0.5]])
    right = np.array([[0, 1, 1], [1, 1, 1], [0, 1, 1], [0, 0, 1]], dtype=bool)
    labels = np.zeros(4, dtype=np.int64)
    scored = Scored("ztw", score, np.where(right, 0, 1), score)
    cost, full = np.broadcast_to(np.array([1.0, 2.0, 3.0]), (4, 3)), np.full(4, 3.0)
    rows = np.arange(4)
    single = threshold_for_speedup(scored, cost, full, 1.5)
    assert right[rows, stop(scored, single)].mean() == 0.75
    per_stage = thresholds_per_stage(scored, labels, cost, full, 1.5)
    index = stop(scored, per_stage)
    assert index.tolist() == [1, 0, 1, 2]  # a waits for its right second stage, b leaves at once, d goes on
    assert right[rows, index].mean() == 1.0 and 3.0 / cost[rows, index].mean() == pytest.approx(1.5)
    assert thresholds_per_stage(scored, labels, cost, full, 3.1) is None  # even stopping all at stage 1 is 3x


def test_stage_thresholds_one_for_all_or_one_per_non_final_stage():
    np.testing.assert_array_equal(stage_thresholds(0.7, 3), [0.7, 0.7, 0.7])
    np.testing.assert_array_equal(stage_thresholds([0.6, 0.8], 3), [0.6, 0.8, np.inf])
    np.testing.assert_array_equal(stage_thresholds([0.6, 0.8, 0.1], 3), [0.6, 0.8, np.inf])  # the last is never read
    with pytest.raises(ValueError, match="3 stages"):
        stage_thresholds([0.1, 0.2, 0.3, 0.4], 3)


def test_per_stage_thresholds_never_miss_the_target_on_their_split():
    tune = synthetic(300, m=5, seed=7)
    scored, _ = score_splits("ztw", tune, synthetic(50, m=5, seed=8))
    cost, full = np.broadcast_to(np.arange(1.0, 6.0), (300, 5)), np.full(300, 5.0)
    rows = np.arange(300)
    for target in (1.5, 2.0, 3.0):
        per_stage = thresholds_per_stage(scored, tune.labels, cost, full, target)
        single = threshold_for_speedup(scored, cost, full, target)
        assert 5.0 / cost[rows, stop(scored, per_stage)].mean() >= target
        # it starts from the single threshold and only moves to a better metric
        assert ((scored.pred[rows, stop(scored, per_stage)] == tune.labels).mean()
                >= (scored.pred[rows, stop(scored, single)] == tune.labels).mean())


@pytest.mark.parametrize("signal", SIGNALS)
def test_every_signal_scores_tune_and_test(signal):
    tune, test = synthetic(300, seed=1), synthetic(200, seed=2)
    scored_tune, scored_test = score_splits(signal, tune, test)
    assert scored_tune.score.shape == (300, 4) and scored_test.pred.shape == (200, 4)
    auc = auroc_wrong(scored_test, test.labels)
    assert np.nanmean(auc) > 0.6  # every signal ranks wrong answers better than chance on this data


def test_fitted_signals_beat_maxprob_where_agreement_carries_information():
    # the later stages are right more often than their confidence says: the ensemble should use them
    tune, test = synthetic(600, seed=3), synthetic(600, seed=4)
    maxprob = auroc_wrong(score_splits("maxprob", tune, test)[1], test.labels)
    learned = auroc_wrong(score_splits("learned", tune, test)[1], test.labels)
    assert np.nanmean(learned) >= np.nanmean(maxprob) - 0.02


@pytest.mark.parametrize("signal", ["ensemble", "learned"])
def test_cross_fitting_never_uses_an_examples_own_label(signal):
    tune, test = synthetic(200, seed=5), synthetic(50, seed=6)
    scored, _ = score_splits(signal, tune, test, seed=0)
    fold = fold_ids(tune.n, 5, 0)
    held = np.flatnonzero(fold == 2)
    labels = tune.labels.copy()
    labels[held] = 1 - labels[held]  # flip every label in the evaluated fold
    flipped = Stages(tune.example_ids, labels, tune.probs, tune.tokens)
    again, _ = score_splits(signal, flipped, test, seed=0)
    np.testing.assert_allclose(again.score[held], scored.score[held])
    assert (again.pred[held] == scored.pred[held]).all()


def test_fitted_signal_needs_enough_tune_examples():
    with pytest.raises(ValueError, match="at least 10"):
        score_splits("learned", synthetic(8), synthetic(8))
    with pytest.raises(ValueError, match="unknown signal"):
        score_splits("vibes", synthetic(8), synthetic(8))
