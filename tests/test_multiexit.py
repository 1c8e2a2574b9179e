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
