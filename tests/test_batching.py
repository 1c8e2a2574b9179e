import numpy as np
import pandas as pd

from workbench.data.batching import batch_indices, collate, encode
from workbench.models.backbones import load_tokenizer


def test_training_batches_cover_every_example_once_and_are_seeded():
    lengths = np.random.default_rng(0).integers(3, 60, 1000)
    batches = batch_indices(lengths, 32, shuffle=True, seed=1, epoch=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    again = batch_indices(lengths, 32, shuffle=True, seed=1, epoch=0)
    assert all((a == b).all() for a, b in zip(batches, again))
    other = batch_indices(lengths, 32, shuffle=True, seed=1, epoch=1)
    assert any(len(a) != len(b) or (a != b).any() for a, b in zip(batches, other))


def test_bucketing_reduces_padding():
    lengths = np.random.default_rng(0).integers(3, 60, 3200)
    def padded(batches):
        return sum(lengths[b].max() * len(b) for b in batches)
    bucketed = padded(batch_indices(lengths, 32, shuffle=True, seed=0))
    plain = padded(batch_indices(lengths, 32, shuffle=True, seed=0, bucket=False))
    assert bucketed < 0.7 * plain


def test_encode_counts_truncation_and_collate_pads():
    tok = load_tokenizer("minilm")
    split = pd.DataFrame({"text_a": ["short one", "a much longer sentence " * 5], "text_b": [None, None]})
    enc = encode(tok, split, max_length=8)
    assert enc.truncated == 1 and enc.lengths.tolist() == [4, 8]
    batch = collate(enc, np.array([0, 1]))
    assert batch["input_ids"].shape == (2, 8)
    assert batch["attention_mask"].sum(1).tolist() == [4, 8]
    assert collate(enc, np.array([0]), pad_to=16)["input_ids"].shape == (1, 16)


def test_pairs_get_segment_ids():
    tok = load_tokenizer("minilm")
    split = pd.DataFrame({"text_a": ["a cat sat"], "text_b": ["on the mat"]})
    enc = encode(tok, split, max_length=32)
    assert set(enc.token_type_ids[0]) == {0, 1}
