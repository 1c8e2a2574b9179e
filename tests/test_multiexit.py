import numpy as np
import pytest
import torch

from workbench.config import HeadTrainConfig
from workbench.data.batching import encode
from workbench.models.backbones import load_tokenizer
from workbench.models.complete import CompleteModel, ModelSpec
from workbench.models.multiexit import (MultiExitModel, MultiExitSpec, deebert_from_complete, pabee_loss,
                                        pooled_features, probe_model, train_heads)

SPEC = MultiExitSpec(kind="pabee", backbone="tiny-random-bert", num_layers=3, num_labels=2)


def _batch(task, n=8):
    from workbench.data.batching import collate
    enc = encode(load_tokenizer("tiny-random-bert"), task.splits["test"].iloc[:n], 32)
    return collate(enc, np.arange(n))


def test_pabee_shares_one_pooler_and_round_trips(tmp_path, toy_task):
    model = MultiExitModel.build_pabee(SPEC, seed=0).eval()
    assert all(head.dense is model.heads[0].dense for head in model.heads)
    batch = _batch(toy_task)
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (8, 3, 2)
    model.save_pretrained(tmp_path / "m")
    loaded = MultiExitModel.from_pretrained(tmp_path / "m").eval()
    assert all(head.dense is loaded.heads[0].dense for head in loaded.heads)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, logits)


def test_pabee_loss_weights_deeper_exits_more():
    class Fixed(torch.nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = logits

        def forward(self, **_):
            return type("Out", (), {"logits": self.logits})()
    logits = torch.tensor([[[0.0, 0.0], [2.0, 0.0]]])  # one example, exits 1 and 2
    labels = torch.tensor([0])
    ce = [torch.nn.functional.cross_entropy(logits[:, j], labels) for j in range(2)]
    expected = (1 * ce[0] + 2 * ce[1]) / 3
    torch.testing.assert_close(pabee_loss(Fixed(logits), {}, labels, np.arange(1)), expected)


def test_deebert_last_exit_is_the_complete_model(toy_task):
    complete = CompleteModel.build(ModelSpec(backbone="tiny-random-bert", depth=3, num_labels=2), seed=0).eval()
    heads, _ = train_heads(np.zeros((4, 3, 32), np.float32), np.array([0, 1, 0, 1]), np.zeros((2, 3, 32), np.float32),
                           np.array([0, 1]), layers=[0, 1], num_labels=2, metric="accuracy",
                           config=HeadTrainConfig(epochs=1), seed=0, progress=False)
    deebert = deebert_from_complete(complete, heads).eval()
    batch = _batch(toy_task)
    with torch.no_grad():
        torch.testing.assert_close(deebert(**batch).logits[:, -1], complete(**batch).logits)
    assert deebert.spec.kind == "deebert" and deebert.spec.num_layers == 3


def test_heads_learn_from_cached_features(toy_task):
    tok = load_tokenizer("tiny-random-bert")
    encoder = CompleteModel.build(ModelSpec(backbone="tiny-random-bert", depth=2, num_labels=2)).encoder
    train, tune = toy_task.splits["train"], toy_task.splits["tune"]
    feats = pooled_features(encoder, "mean", encode(tok, train, 32))
    tune_feats = pooled_features(encoder, "mean", encode(tok, tune, 32))
    assert feats.shape == (len(train), 2, 32)
    heads, history = train_heads(feats, train["label"].to_numpy(), tune_feats, tune["label"].to_numpy(),
                                 layers=[0, 1], num_labels=2, metric="accuracy",
                                 config=HeadTrainConfig(epochs=30, lr=1e-2), seed=0, progress=False)
    assert set(heads) == {0, 1} and len(history[1]) == 30
    assert max(history[1]) > 60  # a random backbone's mean-pooled words still carry the sentiment word
    probes = probe_model(MultiExitSpec(kind="probe", backbone="tiny-random-bert", num_layers=2, num_labels=2), heads)
    assert probes.spec.kind == "probe" and len(probes.heads) == 2


def test_self_distillation_loss_by_hand():
    import math
    from workbench.config import DistillConfig
    from workbench.models.multiexit import self_distillation_loss
    logits = torch.tensor([[2.0, 0.0]])
    labels = torch.tensor([0])
    ce = math.log(1 + math.exp(-2.0))
    assert self_distillation_loss(logits, torch.tensor([[5.0, 1.0]]), labels, DistillConfig(weight=0.0)).item() == \
        pytest.approx(ce)
    same = self_distillation_loss(logits, logits.clone(), labels, DistillConfig(weight=1.0, temperature=3.0))
    assert same.item() == pytest.approx(0.0, abs=1e-7)
    # T = 2: the student softmax([1, 0]), the teacher softmax([0, 1]); KL(teacher || student) by hand
    p_student = 1 / (1 + math.exp(-1.0))
    kl = (1 - p_student) * math.log((1 - p_student) / p_student) + p_student * math.log(p_student / (1 - p_student))
    got = self_distillation_loss(logits, torch.tensor([[0.0, 2.0]]), labels, DistillConfig(weight=0.5, temperature=2.0))
    assert got.item() == pytest.approx(0.5 * ce + 0.5 * 4 * kl)
    with pytest.raises(ValueError, match="weight"):
        DistillConfig(weight=1.5)
    with pytest.raises(ValueError, match="temperature"):
        DistillConfig(temperature=0)


def _ce(logit_row, label):
    import math
    return -logit_row[label] + math.log(sum(math.exp(v) for v in logit_row))


def test_alternating_objective_by_hand():
    from workbench.models.multiexit import alternating_objective
    logits = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]]])  # one example, three exits
    labels = torch.tensor([0])
    ce = [_ce(row, 0) for row in logits[0].tolist()]
    assert alternating_objective(logits, labels, step=0).item() == pytest.approx(ce[-1])  # the last exit alone
    assert alternating_objective(logits, labels, step=4).item() == pytest.approx(ce[-1])
    assert alternating_objective(logits, labels, step=1).item() == pytest.approx(sum(ce) / 3)  # every exit


def test_mutual_objective_by_hand():
    import math
    from workbench.config import DistillConfig
    from workbench.models.multiexit import MUTUAL_ENTROPY, mutual_objective
    labels = torch.tensor([1])
    # every exit says the same: each KL term is zero, and equal weights leave (1 - b) * CE alone
    same = torch.tensor([[[0.5, 1.5]] * 3])
    got = mutual_objective(same, labels, torch.zeros(3), DistillConfig(weight=0.4, temperature=2.0))
    assert got.item() == pytest.approx(0.6 * _ce([0.5, 1.5], 1))
    # two exits, b = 1, T = 1: each learns the other's distribution; weights softmax([0, log 3]) = (1/4, 3/4)
    logits = torch.tensor([[[0.0, 0.0], [2.0, 0.0]]])
    p = [torch.softmax(logits[0, j], 0).tolist() for j in range(2)]

    def kl(q, r):
        return sum(a * math.log(a / b) for a, b in zip(q, r))
    w = (0.25, 0.75)
    entropy = -sum(v * math.log(v) for v in w)
    expected = w[0] * kl(p[1], p[0]) + w[1] * kl(p[0], p[1]) + MUTUAL_ENTROPY * (math.log(2) - entropy)
    got = mutual_objective(logits, labels, torch.tensor([0.0, math.log(3)]), DistillConfig(weight=1.0, temperature=1.0))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_mutual_objective_teachers_get_no_gradient():
    """Each exit's teacher (the other exits' mean) is a fixed target: the gradient of exit k's logits comes from
    its own terms alone, as if every other exit were frozen."""
    from workbench.config import DistillConfig
    from workbench.models.multiexit import mutual_objective
    torch.manual_seed(0)
    logits = torch.randn(4, 3, 2, requires_grad=True)
    labels, phi = torch.tensor([0, 1, 1, 0]), torch.tensor([0.2, -0.1, 0.3])
    config = DistillConfig(weight=0.7, temperature=2.0)
    mutual_objective(logits, labels, phi, config).backward()
    w = torch.softmax(phi, 0)
    for k in range(3):
        own = logits.detach().clone().requires_grad_(True)
        frozen = torch.cat([logits.detach()[:, :k], own[:, k:k + 1], logits.detach()[:, k + 1:]], dim=1)
        log_p = torch.log_softmax(frozen / 2.0, -1)
        others = (log_p.exp().detach().sum(1) - log_p.exp().detach()[:, k]) / 2
        term = (0.3 * torch.nn.functional.cross_entropy(frozen[:, k], labels)
                + 0.7 * 4 * (others * (others.log() - log_p[:, k])).sum(-1).mean())
        (w[k] * term).backward()
        torch.testing.assert_close(logits.grad[:, k], own.grad[:, k])


def test_learned_exit_weights_stay_positive_sum_to_one_and_move(toy_task):
    from workbench.config import DistillConfig
    from workbench.models.multiexit import JointObjective
    spec = MultiExitSpec(kind="mutual", backbone="tiny-random-bert", num_layers=3, num_labels=2)
    model = MultiExitModel.build_pabee(spec, seed=0)
    np.testing.assert_allclose(model.loss_weights(), [1 / 3] * 3)
    objective = JointObjective("mutual", DistillConfig())
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
    batch, labels = _batch(toy_task), torch.tensor(toy_task.splits["test"]["label"].iloc[:8].to_numpy())
    for step in range(20):
        objective(model, batch, labels, np.arange(8), step).backward()
        optimizer.step()
        optimizer.zero_grad()
    weights = model.loss_weights()
    assert (weights > 0).all() and weights.sum() == pytest.approx(1.0)
    assert np.abs(weights - 1 / 3).max() > 1e-3  # learned, not fixed


def test_joint_kinds_round_trip_with_their_weights(tmp_path, toy_task):
    for kind in ("berxit", "mutual"):
        model = MultiExitModel.build_pabee(MultiExitSpec(kind=kind, backbone="tiny-random-bert", num_layers=3,
                                                         num_labels=2), seed=0).eval()
        if kind == "mutual":
            with torch.no_grad():
                model.exit_weights.copy_(torch.tensor([0.3, -0.2, 0.1]))
        model.save_pretrained(tmp_path / kind)
        loaded = MultiExitModel.from_pretrained(tmp_path / kind).eval()
        assert all(head.dense is loaded.heads[0].dense for head in loaded.heads)
        batch = _batch(toy_task)
        with torch.no_grad():
            torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)
        if kind == "mutual":
            np.testing.assert_allclose(loaded.loss_weights(), model.loss_weights())
        else:
            assert loaded.loss_weights() is None
    with pytest.raises(ValueError, match="not trained jointly"):
        MultiExitModel.build_pabee(MultiExitSpec(kind="deebert", backbone="tiny-random-bert", num_layers=3))
