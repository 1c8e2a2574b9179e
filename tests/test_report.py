"""Report functions on hand-made outputs tables."""
import numpy as np
import pandas as pd
import pytest

from workbench.cost import EncoderShape
from workbench.outputs import outputs_frame
from workbench.report import Study, cascade_answers, static_answers, summarize_answers, sufficiency_table

STUDY = Study("toy", "accuracy", 4, EncoderShape(8, 16, 4), 2)


def _complete(model, layer, logits, labels, split="test", seed=0):
    ids = [f"x{i}" for i in range(len(labels))]
    return outputs_frame(np.asarray(logits, float), split=split, example_ids=ids, labels=labels, seed=seed,
                         model=model, layer=layer, tokens=np.full(len(labels), 5))


def test_static_answers_pick_the_deepest_model_meeting_the_target():
    labels = [0, 1, 1, 0]
    frame = pd.concat([_complete("complete-1L", 1, [[1, 0]] * 4, labels), _complete("complete-2L", 2, [[0, 1]] * 4,
                                                                                      labels)])
    answers = static_answers(frame, STUDY, 2.0, 0)
    assert answers.method == "static 2L" and answers.layers_executed.tolist() == [2, 2, 2, 2]
    assert static_answers(frame, STUDY, 3.0, 0).method == "static 1L"
    assert static_answers(frame, STUDY, 5.0, 0) is None


def test_cascade_answers_and_summary_by_hand():
    labels = [0, 1, 1, 0]
    small = [[3, 0], [0.2, 0], [0, 3], [0, 0.1]]   # confident on items 0 and 2
    large = [[0, 1], [0, 1], [0, 1], [1, 0]]       # right on 1, 2, 3
    frame = pd.concat([_complete("complete-1L", 1, small, labels, split=s) for s in ("tune", "test")] +
                      [_complete("complete-4L", 4, large, labels, split=s) for s in ("tune", "test")])
    answers = cascade_answers(frame, STUDY, ("complete-1L", "complete-4L"), 1.6, 0, name="cascade")
    # escalating the two least confident items costs 3 layers on average (1.33x, too slow); escalating only
    # the least confident one (item 3, confidence 0.525) costs (1 + 1 + 1 + 5) / 4 = 2 layers: 2x
    assert answers.layers_executed.tolist() == [1, 1, 1, 5]
    assert answers.pred.tolist() == [0, 0, 1, 0]
    table = summarize_answers([answers], STUDY)
    assert table.loc[0, "metric"] == pytest.approx(100 * np.mean(answers.correct))
    assert table.loc[0, "speedup_layers"] == pytest.approx(4 / answers.layers_executed.mean())


def test_sufficiency_needs_enough_examples():
    assert sufficiency_table(pd.DataFrame(columns=["model", "seed", "split"]), STUDY).empty
