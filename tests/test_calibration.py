import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy.special import softmax  # noqa: E402

from workbench.measures.calibration import (apply_temperature, brier, ece, fit_temperature,  # noqa: E402
                                            nll, reliability_diagram, reliability_table)


def netcal_ece(confidence, correct, *, bins=10, equal_intervals=True):
    netcal = pytest.importorskip("netcal.metrics")
    measure = netcal.ECE(bins=bins, equal_intervals=equal_intervals)
    return 100.0 * float(measure.measure(np.asarray(confidence, dtype=np.float64),
                                         np.asarray(correct).astype(np.int64)))


# ----------------------------------------------------------------------------- ECE against netcal

@pytest.mark.parametrize("seed", range(6))
def test_ece_matches_netcal_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    n = [50, 300, 2000, 7, 1000, 500][seed]
    confidence = rng.uniform(0.3, 1.0, n) ** 0.5
    correct = rng.random(n) < confidence - 0.1
    for bins in (10, 15, 3):
        assert ece(confidence, correct, bins=bins) == pytest.approx(netcal_ece(confidence, correct, bins=bins),
                                                                    abs=1e-9)


def test_ece_matches_netcal_on_bin_edges_zero_and_one():
    decimal_edges = np.round(np.arange(11) / 10, 1)          # 0.0, 0.1, ..., 1.0 as written
    float_edges = np.linspace(0, 1, 11)                      # 0.30000000000000004 etc.
    confidence = np.concatenate([decimal_edges, float_edges, [1.0, 1.0, 1.0, 0.0, 0.55, 0.99]])
    correct = np.arange(confidence.size) % 3 != 0
    assert ece(confidence, correct) == pytest.approx(netcal_ece(confidence, correct), abs=1e-9)
    for value in (0.3, 0.6, 0.7, 1.0, 0.5, 0.8):              # each edge with a neighbour just below it
        conf = np.array([value, value, value - 0.05, 0.05])
        corr = np.array([True, True, False, True])
        assert ece(conf, corr) == pytest.approx(netcal_ece(conf, corr), abs=1e-9)


def test_ece_matches_netcal_with_saturated_confidence():
    rng = np.random.default_rng(3)
    confidence = np.where(rng.random(400) < 0.5, 1.0, rng.uniform(0.5, 1.0, 400))
    correct = rng.random(400) < 0.85
    assert ece(confidence, correct) == pytest.approx(netcal_ece(confidence, correct), abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_quantile_ece_matches_netcal_equal_mass_bins(seed):
    rng = np.random.default_rng(10 + seed)
    confidence = rng.beta(5, 1.5, 600)
    correct = rng.random(600) < confidence
    assert ece(confidence, correct, strategy="quantile") == pytest.approx(
        netcal_ece(confidence, correct, equal_intervals=False), abs=1e-9)


# ----------------------------------------------------------------------------- hand-computed values

def test_ece_and_table_by_hand():
    confidence = [0.05, 0.15, 0.55, 0.55, 0.95, 0.95, 0.95, 0.95]
    correct = [False, False, True, False, True, True, True, False]
    # bins: [0,.1): conf .05 acc 0; [.1,.2): .15 / 0; [.5,.6): .55 / .5; [.9,1]: .95 / .75
    expected = 100 * (1 / 8 * 0.05 + 1 / 8 * 0.15 + 2 / 8 * 0.05 + 4 / 8 * 0.20)
    assert ece(confidence, correct) == pytest.approx(expected)
    assert expected == pytest.approx(13.75)
    table = reliability_table(confidence, correct)
    assert list(table.columns) == ["bin", "lower", "upper", "count", "mean_confidence", "accuracy", "gap"]
    assert table["count"].tolist() == [1, 1, 0, 0, 0, 2, 0, 0, 0, 4]
    assert table.loc[9, "accuracy"] == pytest.approx(0.75)
    assert table.loc[9, "gap"] == pytest.approx(0.20)
    assert table.loc[5, "mean_confidence"] == pytest.approx(0.55)
    assert table.loc[2, ["mean_confidence", "accuracy", "gap"]].isna().all()
    assert table["lower"].tolist() == pytest.approx(np.arange(10) / 10)
    assert table["upper"].tolist() == pytest.approx(np.arange(1, 11) / 10)


def test_edge_convention():
    table = reliability_table([0.0, 0.3, 0.5, 0.6, 1.0], [True] * 5)
    bins_with_items = table.loc[table["count"] > 0, "bin"].tolist()
    # 0.0 -> bin 0, 0.3 -> bin 2 (below linspace's 0.30000000000000004), 0.5 -> bin 5,
    # 0.6 -> bin 5 (below 0.6000000000000001), 1.0 -> bin 9
    assert bins_with_items == [0, 2, 5, 9]
    assert table.loc[5, "count"] == 2


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_ece_equals_table_sum(strategy):
    rng = np.random.default_rng(7)
    confidence = rng.uniform(0.5, 1.0, 333)
    correct = rng.random(333) < 0.8
    for bins in (1, 4, 10, 20):
        table = reliability_table(confidence, correct, bins=bins, strategy=strategy)
        assert table["count"].sum() == 333 and len(table) == bins
        n = table["count"].sum()
        by_table = 100 * np.nansum(table["count"] / n * table["gap"].abs())
        assert ece(confidence, correct, bins=bins, strategy=strategy) == pytest.approx(by_table, abs=1e-12)


def test_quantile_bins_hold_equal_mass():
    confidence = np.linspace(0.505, 0.995, 100)
    table = reliability_table(confidence, np.ones(100, bool), strategy="quantile")
    assert table["count"].tolist() == [10] * 10
    assert table["lower"].iloc[0] == 0.0 and table["upper"].iloc[-1] == 1.0


def test_one_bin_is_accuracy_minus_mean_confidence():
    assert ece([0.9, 0.7, 0.8, 0.6], [1, 1, 0, 1], bins=1) == pytest.approx(100 * abs(0.75 - 0.75))
    assert ece([0.9, 0.9], [1, 0], bins=1) == pytest.approx(40.0)


# ----------------------------------------------------------------------------- validation

def test_validation_messages():
    with pytest.raises(ValueError, match="3 values but correct has 2"):
        ece([0.5, 0.6, 0.7], [True, False])
    with pytest.raises(ValueError, match=r"1\.2.* at index 1"):
        ece([0.5, 1.2, 0.7], [True, False, True])
    with pytest.raises(ValueError, match=r"-0\.1.* at index 2"):
        reliability_table([0.5, 0.2, -0.1], [True, False, True])
    with pytest.raises(ValueError, match="nan"):
        ece([np.nan], [True])
    with pytest.raises(ValueError, match="bins must be an integer >= 1; got 0"):
        ece([0.5], [True], bins=0)
    with pytest.raises(ValueError, match="unknown strategy 'equal'"):
        ece([0.5], [True], strategy="equal")
    with pytest.raises(ValueError, match="got 2 at index 0"):
        ece([0.5], [2])
    with pytest.raises(ValueError, match="empty"):
        ece([], [])


# ----------------------------------------------------------------------------- NLL, Brier, temperature

def test_nll_and_brier_by_hand():
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    labels = np.array([0, 0, 0])
    assert nll(probs, labels) == pytest.approx(-(np.log(0.5) + np.log(0.9) + np.log(0.2)) / 3)
    assert brier(probs, labels) == pytest.approx((0.5 + 0.02 + 1.28) / 3)
    assert np.isfinite(nll([[0.0, 1.0]], [0]))
    with pytest.raises(ValueError, match="label 2 at index 1"):
        nll(probs, [0, 2, 1])
    with pytest.raises(ValueError, match="3 rows but labels has 2"):
        brier(probs, [0, 1])


def test_temperature_one_is_softmax_and_rejects_bad_values():
    logits = np.random.default_rng(0).normal(size=(5, 4)) * 10
    assert np.allclose(apply_temperature(logits, 1.0), softmax(logits, axis=1))
    assert np.allclose(apply_temperature(logits, 2.0), softmax(logits / 2, axis=1))
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="temperature must be"):
            apply_temperature(logits, bad)


def test_fit_temperature_analytic_binary_case():
    # logits (0, a) everywhere, a share q of labels is 1: NLL is minimal where sigmoid(a / T) = q
    a, q = 4.0, 0.75
    logits = np.tile([0.0, a], (8, 1))
    labels = np.array([1, 1, 1, 1, 1, 1, 0, 0])
    assert fit_temperature(logits, labels) == pytest.approx(a / np.log(q / (1 - q)), rel=1e-4)


def test_fit_temperature_recovers_known_temperature_and_lowers_nll():
    rng = np.random.default_rng(0)
    t_true, n = 2.5, 20000
    logits = rng.normal(size=(n, 3)) * 4.0
    probs = softmax(logits / t_true, axis=1)
    labels = np.minimum((probs.cumsum(axis=1) < rng.random(n)[:, None]).sum(axis=1), 2)
    t_fit = fit_temperature(logits, labels)
    assert t_fit == pytest.approx(t_true, rel=0.10)
    assert nll(apply_temperature(logits, t_fit), labels) < nll(apply_temperature(logits, 1.0), labels) - 0.1
    scaled = apply_temperature(logits, t_fit)
    assert (scaled.argmax(1) == logits.argmax(1)).all()
    assert ece(scaled.max(1), scaled.argmax(1) == labels) < ece(softmax(logits, 1).max(1),
                                                               logits.argmax(1) == labels)


# ----------------------------------------------------------------------------- diagram

def test_reliability_diagram_draws_bars_diagonal_and_labels():
    table = reliability_table([0.05, 0.15, 0.55, 0.55, 0.95, 0.95, 0.95, 0.95],
                              [False, False, True, False, True, True, True, False])
    ax = reliability_diagram(table, label="BERT-2L")
    assert ax.get_xlabel() == "confidence (max softmax probability)"
    assert ax.get_ylabel() == "accuracy"
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "BERT-2L (ECE 13.75)" in texts and "perfect calibration" in texts
    assert len(ax.patches) == 2 * 4                          # accuracy and gap bars of the 4 non-empty bins
    same = reliability_diagram(table, ax=ax, label="other")
    assert same is ax
    assert [line.get_label() for line in ax.get_lines()].count("perfect calibration") == 1
    plt.close("all")


def test_reliability_diagram_rejects_other_frames():
    import pandas as pd
    with pytest.raises(ValueError, match="lacks column"):
        reliability_diagram(pd.DataFrame({"bin": [0]}))


def test_reliability_diagram_starts_at_one_over_the_classes_and_counts_each_bin():
    table = reliability_table([0.55, 0.55, 0.65, 0.95, 0.95, 0.95], [True, False, True, True, True, False])
    ax = reliability_diagram(table, label="binary", x_min=0.5)
    assert ax.get_xlim() == (0.5, 1.0)
    assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "3"]  # one count above each filled bin
    legend = ax.get_legend()
    assert legend.get_bbox_to_anchor().y1 < ax.get_window_extent().y0 + 1  # the legend sits below the axes
    plt.close("all")
