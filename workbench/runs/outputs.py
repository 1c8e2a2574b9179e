"""The outputs table: every example's prediction at every exit, stored once and analysed many times.

Schema (one row per example x model x exit):

| column        | type    | meaning                                                         |
|---------------|---------|-----------------------------------------------------------------|
| split         | str     | 'tune' or 'test' (or 'train')                                   |
| example_id    | str     | the task's stable id of the example                             |
| seed          | int     | training seed of the model                                      |
| model         | str     | e.g. 'complete-2L'                                              |
| layer         | int     | the exit: transformer layers executed to produce this row      |
| label         | int     | gold label id                                                   |
| pred          | int     | argmax of the probabilities                                     |
| confidence    | float   | max softmax probability                                         |
| correct       | bool    | pred == label                                                   |
| prob_<c>      | float   | softmax probability of class c, one column per class            |
| logit_<c>     | float   | raw logit of class c (for margins and temperature scaling)      |
| tokens        | int     | tokens of the example after truncation (for FLOPs); optional    |
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

BASE_COLUMNS = ("split", "example_id", "seed", "model", "layer", "label", "pred", "confidence", "correct")


def outputs_frame(logits: np.ndarray, *, split: str, example_ids, labels, seed: int, model: str,
                  layer: int, tokens=None) -> pd.DataFrame:
    """Tidy rows for one model exit over one split, from logits [n, num_labels]."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or logits.shape[0] != len(labels):
        raise ValueError(f"got logits of shape {logits.shape} for {len(labels)} labels")
    probs = torch.softmax(torch.from_numpy(logits), dim=-1).numpy()
    pred = probs.argmax(1)
    frame = pd.DataFrame({
        "split": split, "example_id": np.asarray(example_ids, dtype=object).astype(str), "seed": int(seed),
        "model": model, "layer": int(layer), "label": labels, "pred": pred, "confidence": probs.max(1),
        "correct": pred == labels,
    })
    for c in range(logits.shape[1]):
        frame[f"prob_{c}"] = probs[:, c]
    for c in range(logits.shape[1]):
        frame[f"logit_{c}"] = logits[:, c]
    if tokens is not None:
        frame["tokens"] = np.asarray(tokens, dtype=np.int64)
    return frame


def validate_outputs(frame: pd.DataFrame) -> pd.DataFrame:
    """Check the schema and that no (split, example, seed, model, layer) appears twice."""
    missing = [c for c in BASE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"outputs table lacks column(s) {missing}; found {list(frame.columns)}")
    if not any(c.startswith("prob_") for c in frame.columns):
        raise ValueError("outputs table has no prob_<class> columns")
    key = ["split", "example_id", "seed", "model", "layer"]
    dup = frame.duplicated(key)
    if dup.any():
        first = frame.loc[dup, key].iloc[0].to_dict()
        raise ValueError(f"outputs table has {int(dup.sum())} duplicate rows, e.g. {first}")
    return frame


def prob_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The probability columns as an array [rows, num_labels]."""
    cols = sorted((c for c in frame.columns if c.startswith("prob_")), key=lambda c: int(c.split("_")[1]))
    return frame[cols].to_numpy()
