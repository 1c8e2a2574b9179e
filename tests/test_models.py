import pytest
import torch
from transformers import AutoModel

from workbench.models import (CompleteModel, ModelSpec, backbone_layers, backbone_path, default_pooling, load_encoder,
                              load_tokenizer, pool)


def _batch(backbone="minilm"):
    tok = load_tokenizer(backbone)
    return dict(tok(["a warm and funny film", "dull"], padding=True, return_tensors="pt"))


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_truncated_minilm_equals_hidden_state_k_of_full_model(depth):
    batch = _batch()
    full = AutoModel.from_pretrained(backbone_path("minilm")).eval()
    part = load_encoder("minilm", depth).eval()
    with torch.no_grad():
        reference = full(**batch, output_hidden_states=True).hidden_states[depth]
        got = part(**batch).last_hidden_state
    assert len(part.encoder.layer) == depth
    torch.testing.assert_close(got, reference)


def test_tiny_bert_depths_share_one_network():
    batch = _batch("tiny-random-bert")
    full, part = load_encoder("tiny-random-bert", 6).eval(), load_encoder("tiny-random-bert", 3).eval()
    with torch.no_grad():
        reference = full(**batch, output_hidden_states=True).hidden_states[3]
        torch.testing.assert_close(part(**batch).last_hidden_state, reference)
    assert full.config.hidden_size == 32


def test_default_pooling_and_layers():
    assert default_pooling("minilm") == "mean"  # declared by its 1_Pooling/config.json
    assert backbone_layers("minilm") == 6
    assert ModelSpec(depth=2).resolved().pooling == "mean"
    assert ModelSpec(depth=2, pooling="cls").resolved().pooling == "cls"
    with pytest.raises(ValueError, match="depth 7 exceeds"):
        load_encoder("minilm", 7)
    with pytest.raises(ValueError, match="pooling must be one of"):
        ModelSpec(pooling="max").resolved()


def test_mean_pooling_ignores_padding():
    hidden = torch.tensor([[[1.0], [3.0], [100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "mean").item() == 2.0
    assert pool(hidden, mask, "cls").item() == 1.0


def test_head_starts_from_backbone_pooler_and_round_trips(tmp_path):
    model = CompleteModel.build(ModelSpec(backbone="minilm", depth=1, num_labels=3), seed=0).eval()
    full = AutoModel.from_pretrained(backbone_path("minilm"))
    torch.testing.assert_close(model.head.dense.weight, full.pooler.dense.weight)
    assert model.encoder.pooler is None
    batch = _batch()
    with torch.no_grad():
        before = model(**batch).logits
    model.save_pretrained(tmp_path / "ckpt", tokenizer=load_tokenizer("minilm"))
    assert (tmp_path / "ckpt" / "encoder" / "model.safetensors").is_file()
    assert not list(tmp_path.glob("**/*.bin")) and not list(tmp_path.glob("**/*.pt"))
    loaded = CompleteModel.from_pretrained(tmp_path / "ckpt").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, before)
    assert loaded.spec == model.spec and before.shape == (2, 3)


def test_missing_checkpoint_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no spec.json"):
        CompleteModel.from_pretrained(tmp_path)
