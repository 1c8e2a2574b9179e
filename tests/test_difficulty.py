import numpy as np
import pytest
import torch

from workbench.config import DifficultyConfig
from workbench.methods.difficulty import (DifficultyAwareObjective, difficulty_aware_loss, easy_from_runs,
                                          kfold_assignment)


def test_loss_on_hand_made_batch():
    conf = torch.tensor([0.9, 0.8, 0.6, 0.7])
    easy = torch.tensor([True, True, False, False])
    # every easy item is paired with a hard one: pairs (0.9, h), (0.8, h) with h in {0.6, 0.7}
    gen = torch.Generator().manual_seed(0)
    partner = torch.randint(2, (2,), generator=torch.Generator().manual_seed(0))
    hard = torch.tensor([0.6, 0.7])[partner]
    expected = torch.clamp(0.5 - (torch.tensor([0.9, 0.8]) - hard), min=0).mean()
    torch.testing.assert_close(difficulty_aware_loss(conf, easy, margin=0.5, generator=gen), expected)


def test_hinge_is_zero_when_easy_items_are_confident_enough():
    conf = torch.tensor([1.0, 0.5])
    assert difficulty_aware_loss(conf, torch.tensor([True, False]), margin=0.3).item() == 0.0
    assert difficulty_aware_loss(conf, torch.tensor([True, False]), margin=0.6).item() == pytest.approx(0.1)


def test_zero_without_either_kind_and_gradient_flows():
    conf = torch.tensor([0.7, 0.9], requires_grad=True)
    assert difficulty_aware_loss(conf, torch.tensor([True, True]), margin=0.5).item() == 0.0
    assert difficulty_aware_loss(conf, torch.tensor([False, False]), margin=0.5).item() == 0.0
    loss = difficulty_aware_loss(conf, torch.tensor([True, False]), margin=0.5)
    loss.backward()
    assert conf.grad.tolist() == [-1.0, 1.0]  # pushes easy confidence up, hard confidence down


def test_labels_and_folds():
    assert easy_from_runs(np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]], bool)).tolist() == [True, False, False]
    folds = kfold_assignment(10, 3, seed=1)
    assert sorted(np.bincount(folds).tolist()) == [3, 3, 4]
    assert (folds == kfold_assignment(10, 3, seed=1)).all()
    with pytest.raises(ValueError, match="folds must be"):
        kfold_assignment(3, 5)
    with pytest.raises(ValueError, match="rule must be one of"):
        DifficultyConfig(rule="votes")
    with pytest.raises(ValueError, match="needs runs >= 2"):
        DifficultyConfig(rule="kfold", runs=1)


def test_objective_adds_weighted_regularizer():
    class Fixed(torch.nn.Module):
        def forward(self, **batch):
            return type("Out", (), {"logits": batch["logits"]})()
    logits = torch.tensor([[3.0, 0.0], [0.2, 0.0]])
    labels = torch.tensor([0, 0])
    objective = DifficultyAwareObjective(np.array([True, False]), DifficultyConfig(margin=0.5, weight=0.5))
    conf = torch.softmax(logits, -1).max(-1).values
    expected = torch.nn.functional.cross_entropy(logits, labels) + 0.5 * max(0.0, 0.5 - float(conf[0] - conf[1]))
    got = objective(Fixed(), {"logits": logits}, labels, np.array([0, 1]))
    assert got.item() == pytest.approx(expected.item())
