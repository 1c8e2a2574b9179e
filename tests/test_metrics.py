import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from workbench.measures.metrics import accuracy, f1, mcc, task_metric


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels, preds = rng.integers(0, 2, 50), rng.integers(0, 2, 50)
    assert accuracy(labels, preds) == pytest.approx(100 * accuracy_score(labels, preds))
    assert f1(labels, preds) == pytest.approx(100 * f1_score(labels, preds))
    assert mcc(labels, preds) == pytest.approx(100 * matthews_corrcoef(labels, preds))


def test_degenerate_cases():
    assert f1([0, 0], [0, 0]) == 0.0
    assert mcc([1, 1], [1, 1]) == 0.0
    assert accuracy([1, 2, 0], [1, 2, 2]) == pytest.approx(200 / 3)


def test_task_metric_errors():
    with pytest.raises(ValueError, match="unknown metric"):
        task_metric("auc", [0], [0])
    with pytest.raises(ValueError, match="2 labels but 3 predictions"):
        accuracy([0, 1], [0, 1, 1])
