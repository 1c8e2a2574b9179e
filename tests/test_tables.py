"""Report functions on hand-made outputs tables."""
import numpy as np
import pandas as pd
import pytest

from workbench.measures.cost import EncoderShape
from workbench.methods.points import Study, static_point, tuned_cascade_point
from workbench.runs.outputs import outputs_frame
from workbench.study.tables import sufficiency_table, summarize_answers

STUDY = Study("toy", "accuracy", 4, EncoderShape(8, 16, 4), 2)


def _complete(model, layer, logits, labels, split="test", seed=0):
    ids = [f"x{i}" for i in range(len(labels))]
    return outputs_frame(np.asarray(logits, float), split=split, example_ids=ids, labels=labels, seed=seed,
                         model=model, layer=layer, tokens=np.full(len(labels), 5))


def test_static_answers_pick_the_deepest_model_meeting_the_target():
    labels = [0, 1, 1, 0]
    frame = pd.concat([_complete("complete-1L", 1, [[1, 0]] * 4, labels), _complete("complete-2L", 2, [[0, 1]] * 4,
                                                                                      labels)])
    answers = static_point(frame, STUDY, 2.0, 0)
    assert answers.method == "static 2L" and answers.layers_executed.tolist() == [2, 2, 2, 2]
    assert static_point(frame, STUDY, 3.0, 0).method == "static 1L"
    assert static_point(frame, STUDY, 5.0, 0) is None


def test_tuned_cascade_point_and_summary_by_hand():
    labels = [0, 1, 1, 0]
    small = [[3, 0], [0.2, 0], [0, 3], [0, 0.1]]   # confident on items 0 and 2
    large = [[0, 1], [0, 1], [0, 1], [1, 0]]       # right on 1, 2, 3
    frame = pd.concat([_complete("complete-1L", 1, small, labels, split=s) for s in ("tune", "test")] +
                      [_complete("complete-4L", 4, large, labels, split=s) for s in ("tune", "test")])
    answers = tuned_cascade_point(frame, STUDY, ("complete-1L", "complete-4L"), 1.6, 0, label="cascade")
    # escalating the two least confident items costs 3 layers on average (1.33x, too slow); escalating only
    # the least confident one (item 3, confidence 0.525) costs (1 + 1 + 1 + 5) / 4 = 2 layers: 2x
    assert answers.layers_executed.tolist() == [1, 1, 1, 5]
    assert answers.pred.tolist() == [0, 0, 1, 0]
    table = summarize_answers([answers], STUDY)
    assert table.loc[0, "metric"] == pytest.approx(100 * np.mean(answers.correct))
    assert table.loc[0, "speedup_layers"] == pytest.approx(4 / answers.layers_executed.mean())


def test_sufficiency_needs_enough_examples():
    assert sufficiency_table(pd.DataFrame(columns=["model", "seed", "split"]), STUDY).empty


def test_results_table_cells():
    from workbench.study.tables import results_table
    main = pd.DataFrame([
        {"task": "a", "method": "deebert", "target_speedup": 2.0, "metric_name": "f1", "metric": 80.0,
         "metric_sd": 0.5, "seeds": 3, "speedup_layers": 2.1, "verdict": None},
        {"task": "a", "method": "cascade 1L>6L", "target_speedup": 2.0, "metric_name": "f1", "metric": 78.0,
         "metric_sd": 0.25, "seeds": 3, "speedup_layers": 1.9, "verdict": "worse"},
        {"task": "a", "method": "pabee", "target_speedup": 2.0, "metric_name": None, "metric": np.nan,
         "metric_sd": np.nan, "seeds": np.nan, "speedup_layers": np.nan, "verdict": "unreachable"},
        {"task": "a", "method": "oracle cascade 1L>6L", "target_speedup": 2.0, "metric_name": "accuracy",
         "metric": 90.0, "metric_sd": 0.0, "seeds": 3, "speedup_layers": 2.0, "verdict": None},
        {"task": "b", "method": "deebert", "target_speedup": 2.0, "metric_name": "accuracy", "metric": 70.0,
         "metric_sd": 0.0, "seeds": 1, "speedup_layers": 2.0, "verdict": None},
    ])
    table = results_table(main).set_index("method")
    assert list(table.index) == ["deebert", "pabee", "cascade 1L>6L"]  # references left out, static/exits first
    assert table.loc["deebert", "a (f1)"] == "80.00 ± 0.50 (2.10x)"
    assert table.loc["cascade 1L>6L", "a (f1)"] == "78.00 ± 0.25 (1.90x) worse"
    assert table.loc["pabee", "a (f1)"] == "unreachable"
    assert table.loc["deebert", "b (accuracy)"] == "70.00 (2.00x)"  # one seed: no sd


def test_reference_rows_carry_the_tasks_metric():
    f1_study = Study("toy", "f1", 4, EncoderShape(8, 16, 4), 2)
    labels = [0, 1, 1, 0]
    frame = pd.concat([_complete("complete-1L", 1, [[3, 0], [0.2, 0], [0, 3], [0, 0.1]], labels),
                       _complete("complete-4L", 4, [[0, 1], [0, 1], [0, 1], [1, 0]], labels)])
    from workbench.measures.metrics import f1
    from workbench.study.tables import cascade_references
    refs = cascade_references(frame, f1_study, "complete-1L", "complete-4L", 2.0, 0)
    assert refs["ceiling"] == pytest.approx(f1(labels, [0, 1, 1, 0]))   # small, fixed where the large is right
    table = summarize_answers([], f1_study, references={("oracle cascade 1L>4L", 2.0): [
        {"metric": refs["oracle"], "speedup_layers": refs["speedup_layers"], "speedup_flops": refs["speedup_flops"]}]})
    assert table.loc[0, "metric_name"] == "f1"


def test_the_speed_accuracy_figure_draws_more_methods_than_its_palette_has_colours():
    import matplotlib
    matplotlib.use("Agg")
    from workbench.study.figures import speed_accuracy
    curves = pd.DataFrame([{"method": f"method {i:02d}", "speedup_flops": s, "metric": 80 - i - s}
                           for i in range(14) for s in (1.0, 2.0, 4.0)])
    ax = speed_accuracy(curves, x="speedup_flops")
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert len(lines) == 14
    seen = {(line.get_color(), line.get_linestyle()) for line in lines.values()}
    assert len(seen) == 14  # colours repeat only with another line style


def test_gap_closed_table_leaves_out_gaps_narrower_than_one_test_example():
    from workbench.methods.points import OperatingPoint
    from workbench.study.tables import gap_closed_table
    n = 10  # one example moves accuracy by 10 points
    labels = np.zeros(n, dtype=int)
    pred = np.array([0] * 6 + [1] * 4)  # 60.0

    def point(seed):
        return OperatingPoint(method="cascade 1L>2L", members=("complete-1L", "complete-2L"), policy="maxprob",
                              values=(0.9,), setting="tau=0.9", target=2.0, split="test", seed=seed,
                              metric_name="accuracy", full_layers=2, exits=(1, 2), example_ids=np.arange(n),
                              labels=labels, pred=pred, confidence=np.ones(n), exit_index=np.zeros(n, dtype=int),
                              layers_executed=np.ones(n), flops=None, full_flops=None)

    refs = pd.DataFrame([{"pair": "1L>2L", "target_speedup": 2.0, "seed": 0, "random": 50.0, "oracle": 70.0},
                         {"pair": "1L>2L", "target_speedup": 2.0, "seed": 1, "random": 50.0, "oracle": 55.0}])
    table = gap_closed_table([point(0), point(1)], refs, {"cascade 1L>2L": "1L>2L"})
    row = table.iloc[0]
    assert row["gap_closed"] == pytest.approx(0.5)  # seed 1's 5-point gap (half an example) is left out, not 2.0
