import pytest
import torch
from transformers import AutoModel

from workbench.models.backbones import backbone_layers, backbone_path, default_pooling, load_encoder, load_tokenizer
from workbench.models.complete import CompleteModel, ModelSpec, pool


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


def _tiny_mpnet_folder(tmp_path):
    """A random 3-layer MPNet (hidden 32) saved as a local backbone folder."""
    from transformers import MPNetConfig, MPNetModel
    torch.manual_seed(0)
    config = MPNetConfig(vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)
    MPNetModel(config).save_pretrained(tmp_path / "mpnet")
    return str(tmp_path / "mpnet")


@pytest.mark.parametrize("backbone", ["tiny-random-bert", "mpnet"])
def test_layer_by_layer_equals_the_encoder(backbone, tmp_path):
    """embed + run_layer, with rows dropped and padding trimmed between layers, equals the encoder's own
    forward (MPNet needs its relative position bias at every layer)."""
    from workbench.models.backbones import additive_mask, embed, run_layer
    name = _tiny_mpnet_folder(tmp_path) if backbone == "mpnet" else backbone
    encoder = load_encoder(name, 3, dropout=0.0).eval()
    pad = 1 if backbone == "mpnet" else 0
    ids = torch.tensor([[0, 5, 6, 7, 8, 2], [0, 9, 10, 2, pad, pad], [0, 11, 2, pad, pad, pad]])
    attention = (ids != pad).long()
    with torch.no_grad():
        reference = encoder(input_ids=ids, attention_mask=attention).last_hidden_state
        hidden = embed(encoder, ids)
        hidden = run_layer(encoder, 0, hidden, additive_mask(attention, hidden.dtype))
        hidden, attention = hidden[1:, :4], attention[1:, :4]  # drop row 0, trim to the longest row left
        for j in (1, 2):
            hidden = run_layer(encoder, j, hidden, additive_mask(attention, hidden.dtype))
    torch.testing.assert_close(hidden[0], reference[1, :4])
    torch.testing.assert_close(hidden[1, :3], reference[2, :3])


def test_backbone_without_sdpa_falls_back_to_eager(tmp_path):
    encoder = load_encoder(_tiny_mpnet_folder(tmp_path), 2)
    assert encoder.config._attn_implementation == "eager" and len(encoder.encoder.layer) == 2
