"""Operating points: one record, built by keyword, from which every reported number is derived."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from workbench.measures.calibration import ece
from workbench.measures.cost import EncoderShape, complete_flops, exit_flops
from workbench.methods.cascade import CascadeOutputs
from workbench.methods.exits import ExitOutputs
from workbench.methods.points import OperatingPoint, Study, cascade_point, exit_point, token_counts
from workbench.runs.outputs import outputs_frame

STUDY = Study("toy", "accuracy", 4, EncoderShape(8, 16, 4), 2)
LABELS = [0, 1, 1, 0]


def _rows(model, layer, logits, tokens=(3, 5, 7, 9), split="test"):
    return outputs_frame(np.asarray(logits, float), split=split, example_ids=[f"x{i}" for i in range(4)],
                         labels=LABELS, seed=0, model=model, layer=layer, tokens=np.asarray(tokens))


def test_a_point_derives_every_number_from_its_arrays():
    point = OperatingPoint(method="m", members=("a", "b"), policy="maxprob", values=(0.8,), setting="tau=0.8000",
                           target=2.0, split="test", seed=0, metric_name="accuracy", full_layers=4, exits=(1, 4),
                           example_ids=np.array(["x0", "x1", "x2", "x3"]), labels=np.array(LABELS),
                           pred=np.array([0, 0, 1, 0]), confidence=np.array([0.9, 0.6, 0.95, 0.7]),
                           exit_index=np.array([0, 1, 0, 1]), layers_executed=np.array([1, 5, 1, 5]),
                           flops=np.array([1.0, 5.0, 1.0, 5.0]), full_flops=np.array([4.0, 4.0, 4.0, 4.0]))
    assert point.metric == 75.0 and point.mean_layers == 3.0 and point.speedup_layers == pytest.approx(4 / 3)
    assert point.speedup_flops == pytest.approx(4 / 3)
    assert point.ece == pytest.approx(ece(point.confidence, point.correct))
    assert point.exit_layer.tolist() == [1, 4, 1, 4] and point.early.tolist() == [True, False, True, False]
    assert point.exit_shares.to_dict() == {1: 0.5, 4: 0.5}
    assert point.thresholds == (0.8,) and point.param == 0.8
    assert list(point.examples.columns)[:2] == ["example_id", "text"] and point.wrong_early_exits.empty
    assert "m, max prob > 0.8: accuracy 75.0 at 1.33x" in point.summary()


def test_points_are_keyword_only():
    fields = ("m", ("a",), "maxprob", (0.5,), "s", None, "test", 0, "accuracy", 4, (4,), np.array(["x"]), np.array([0]),
              np.array([0]), np.array([1.0]), np.array([0]), np.array([4]), None, None)
    with pytest.raises(TypeError, match="positional"):
        OperatingPoint(*fields)


def test_exit_point_prices_the_exits_it_passed():
    logits = np.array([[[3, 0], [3, 0], [3, 0], [3, 0]],   # confident at once
                       [[0, 0.1], [0, 0.2], [0, 0.3], [0, 3]],
                       [[0, 3], [0, 3], [0, 3], [0, 3]],
                       [[0.1, 0], [0.1, 0], [3, 0], [3, 0]]])
    frame = pd.concat([_rows("deebert", layer + 1, logits[:, layer]) for layer in range(4)])
    view = ExitOutputs.from_outputs(frame, model="deebert", split="test", seed=0)
    point = exit_point(frame, view, study=STUDY, model="deebert", policy="maxprob", param=0.9, split="test", seed=0)
    assert point.layers_executed.tolist() == [1, 4, 1, 3]
    tokens = token_counts(frame, "deebert", "test", 0, view.example_ids)
    expected = exit_flops(STUDY.shape, tokens, 2, 4)[np.arange(4), [0, 3, 0, 2]]
    assert np.allclose(point.flops, expected)
    assert np.allclose(point.full_flops, complete_flops(STUDY.shape, 4, tokens, 2))
    assert point.setting == "maxprob=0.9" and point.thresholds == ()


def test_cascade_point_pays_every_member_and_each_members_own_width():
    small = [[3, 0], [0.2, 0], [0, 3], [0, 0.1]]
    large = [[0, 1], [0, 1], [0, 1], [1, 0]]
    frame = pd.concat([_rows("small-1L", 1, small, tokens=(4, 6, 8, 10)), _rows("complete-4L", 4, large)])
    view = CascadeOutputs.from_outputs(frame, members=("small-1L", "complete-4L"), split="test", seed=0)
    narrow = EncoderShape(4, 8, 2)
    study = dataclasses.replace(STUDY, small_shape=narrow)
    point = cascade_point(frame, view, study=study, label="cascade", thresholds=(0.9,), split="test", seed=0)
    assert point.layers_executed.tolist() == [1, 5, 1, 5] and point.exits == (1, 4)
    small_cost = complete_flops(narrow, 1, np.array([4, 6, 8, 10]), 2)
    large_cost = complete_flops(STUDY.shape, 4, np.array([3, 5, 7, 9]), 2)
    assert np.allclose(point.flops, small_cost + np.array([0, 1, 0, 1]) * large_cost)
    assert point.speedup_flops == pytest.approx(large_cost.mean() / point.flops.mean())
    assert point.setting == "tau=0.9000"
