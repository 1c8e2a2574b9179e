import numpy as np
import pandas as pd
import pytest

from workbench.runs.outputs import BASE_COLUMNS, outputs_frame, prob_matrix, validate_outputs


def test_outputs_frame_schema_and_values():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    frame = outputs_frame(logits, split="test", example_ids=["a", "b", "c"], labels=[0, 0, 1], seed=3,
                          model="complete-2L", layer=2)
    assert list(frame.columns[:len(BASE_COLUMNS)]) == list(BASE_COLUMNS)
    assert frame["pred"].tolist() == [0, 1, 0]
    assert frame["correct"].tolist() == [True, False, False]
    assert frame["confidence"].iloc[0] == pytest.approx(1 / (1 + np.exp(-2)))
    np.testing.assert_allclose(prob_matrix(frame).sum(1), 1.0)
    assert frame[["logit_0", "logit_1"]].to_numpy().tolist() == logits.tolist()
    validate_outputs(frame)


def test_validate_rejects_duplicates_and_missing_columns():
    frame = outputs_frame(np.zeros((2, 2)), split="test", example_ids=["a", "a"], labels=[0, 1], seed=0,
                          model="m", layer=1)
    with pytest.raises(ValueError, match="duplicate rows"):
        validate_outputs(frame)
    with pytest.raises(ValueError, match="lacks column"):
        validate_outputs(pd.DataFrame({"split": ["x"]}))
    with pytest.raises(ValueError, match="shape"):
        outputs_frame(np.zeros((3, 2)), split="t", example_ids=["a"], labels=[0], seed=0, model="m", layer=1)
