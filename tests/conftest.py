"""Shared fixtures: one thread, no hub, and a toy sentiment task a tiny BERT can learn in seconds."""
from __future__ import annotations

import os
import random

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(1)

POSITIVE = ["good", "great", "fine", "superb", "moving", "funny", "charming", "smart"]
NEGATIVE = ["bad", "dull", "awful", "boring", "weak", "flat", "tedious", "messy"]
FILLER = ["the", "film", "plot", "cast", "is", "a", "story", "with", "its", "ending", "and", "very"]


def toy_rows(n: int, seed: int) -> list[tuple[str, int]]:
    """Sentences whose label is carried by one sentiment word among filler words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randrange(2)
        words = rng.choices(FILLER, k=rng.randint(3, 12))
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        rows.append((" ".join(words), label))
    return rows


def write_csv(path, rows) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write("text,label\n")
        for text, label in rows:
            f.write(f"{text},{label}\n")
    return str(path)


@pytest.fixture
def toy_files(tmp_path):
    """Paths of train / test CSV files of the toy task."""
    return {"train": write_csv(tmp_path / "train.csv", toy_rows(240, 1)),
            "test": write_csv(tmp_path / "test.csv", toy_rows(80, 2))}


@pytest.fixture
def toy_task(toy_files):
    from workbench.data.user import load_files
    return load_files(train=toy_files["train"], test=toy_files["test"], text_col="text", label_col="label",
                      name="toy")
