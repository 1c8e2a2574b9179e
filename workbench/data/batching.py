"""Tokenising a split once, and cutting it into length-bucketed, dynamically padded batches.

Padding every batch to a fixed length wastes most of the compute on short sentences (SST-2 and
Rotten Tomatoes snippets are 10-30 tokens). Batches here are formed from examples of similar
length and padded only to the longest one in the batch; `benchmarks/train_throughput.py`
measures the gain. Texts longer than `max_length` are truncated and counted, never silently.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

BUCKET_BATCHES = 50  # shuffled chunks of this many batches are sorted by length before cutting


@dataclass(frozen=True)
class Encoded:
    """A tokenised split: one entry per example, in the split's order."""
    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    lengths: np.ndarray        # [n] tokens per example after truncation
    truncated: int             # examples that were longer than max_length
    max_length: int
    pad_token_id: int

    def __len__(self) -> int:
        return len(self.input_ids)


def encode(tokenizer, split: pd.DataFrame, max_length: int) -> Encoded:
    """Tokenise `text_a` (and `text_b` where present) with truncation to `max_length`, counting truncations."""
    texts_a = split["text_a"].tolist()
    texts_b = split["text_b"].tolist() if "text_b" in split and split["text_b"].notna().any() else None
    if texts_b is not None and any(t is None for t in texts_b):
        raise ValueError("some rows have a second text and others do not; a pair task needs text_b on every row")
    full = tokenizer(texts_a, texts_b, truncation=False, add_special_tokens=True, verbose=False)["input_ids"]
    truncated = int(sum(len(ids) > max_length for ids in full))
    enc = tokenizer(texts_a, texts_b, truncation=True, max_length=max_length, return_token_type_ids=True)
    input_ids = enc["input_ids"]
    token_type_ids = enc.get("token_type_ids") or [[0] * len(ids) for ids in input_ids]
    return Encoded(input_ids=input_ids, token_type_ids=token_type_ids,
                   lengths=np.array([len(ids) for ids in input_ids]), truncated=truncated,
                   max_length=max_length, pad_token_id=int(tokenizer.pad_token_id or 0))


def batch_indices(lengths: np.ndarray, batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0,
                  bucket: bool = True) -> list[np.ndarray]:
    """Split example indices into batches.

    Evaluation (`shuffle=False`, `bucket=True`): sorted by length, for the least padding.
    Training (`shuffle=True`): a permutation seeded by (seed, epoch), cut into chunks of
    BUCKET_BATCHES batches, each chunk sorted by length, and the batch order shuffled again,
    so batches hold similar lengths but still vary between epochs. Deterministic given the seed.
    """
    n = len(lengths)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not shuffle:
        order = np.argsort(lengths, kind="stable") if bucket else np.arange(n)
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    if bucket:
        chunk = batch_size * BUCKET_BATCHES
        order = np.concatenate([c[np.argsort(lengths[c], kind="stable")]
                                for c in np.array_split(order, max(1, -(-n // chunk)))]) if n else order
    batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))] if bucket else batches


def collate(encoded: Encoded, idx: np.ndarray, *, pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Pad the examples `idx` to the longest among them (or to `pad_to`) -> input_ids, attention_mask,
    token_type_ids, each [batch, seq]."""
    width = pad_to or int(encoded.lengths[idx].max())
    input_ids = torch.full((len(idx), width), encoded.pad_token_id, dtype=torch.long)
    token_type_ids = torch.zeros((len(idx), width), dtype=torch.long)
    attention_mask = torch.zeros((len(idx), width), dtype=torch.long)
    for row, i in enumerate(idx):
        ids = encoded.input_ids[i]
        input_ids[row, :len(ids)] = torch.tensor(ids)
        token_type_ids[row, :len(ids)] = torch.tensor(encoded.token_type_ids[i])
        attention_mask[row, :len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
