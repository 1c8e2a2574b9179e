"""A task's examples, split into train, tune and test, and how splits are made.

Every task comes back as a :class:`TaskData`: three DataFrames (``train``, ``tune``, ``test``) with the
columns ``example_id, text_a, text_b, label``, plus a note of where the data came from and of anything
excluded. ``tune`` is where thresholds and temperatures are chosen; ``test`` is what gets reported.
:func:`validate_split` is the one check of a split's frame; :meth:`TaskData.limited` applies a run's
train and eval limits, once, where the run prepares its data.

Splits are deterministic given ``split_seed``: items are shuffled within each label and taken at evenly
spaced positions, so every label gets its share to within one example (see :func:`stratified_take`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data.files import check_text, parse_label

SPLITS = ("train", "tune", "test")
COLUMNS = ("example_id", "text_a", "text_b", "label")


@dataclass(frozen=True)
class TaskSpec:
    """What a task is: its name, labels, reported metric and whether examples are text pairs."""

    name: str  # registry key ('rt', 'sst2', ...) or a user-given name
    label_names: tuple[str, ...]  # label id i has name label_names[i]
    metric: str  # 'accuracy' | 'f1' (of label 1) | 'mcc'
    pair: bool  # True if every example has a second text (text_b)
    description: str  # one line, for the CLI `tasks` listing



def validate_split(frame: pd.DataFrame, *, task: str, split: str) -> None:
    """The one check of a split's frame: the columns of :data:`COLUMNS`, integer labels, no missing text."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"task {task}, split {split!r}: columns {missing} are missing; a split holds {list(COLUMNS)}")
    if not pd.api.types.is_integer_dtype(frame["label"]):
        raise ValueError(f"task {task}, split {split!r}: labels must be integer ids, got dtype {frame['label'].dtype}")
    if frame["text_a"].isna().any():
        first = frame.loc[frame["text_a"].isna(), "example_id"].iloc[0]
        raise ValueError(f"task {task}, split {split!r}: example {first!r} has no text")


@dataclass(frozen=True)
class TaskData:
    """A task's examples split into train / tune / test, with where they came from."""

    spec: TaskSpec
    splits: dict[str, pd.DataFrame]  # 'train', 'tune', 'test' -> example_id, text_a, text_b, label (int64)
    source: str  # files or hub datasets the examples came from
    notes: tuple[str, ...]  # counts of anything excluded, grouped or carved, for config.json
    split_seed: int
    tune_from: str  # 'dev', 'train', 'file' (user tune file) or 'carved' (rt: one corpus, all splits carved)

    def __post_init__(self) -> None:
        if tuple(self.splits) != SPLITS:
            raise ValueError(f"splits must be {SPLITS} in that order, got {tuple(self.splits)}")
        for split, frame in self.splits.items():
            validate_split(frame, task=self.spec.name, split=split)
        ids = pd.concat([frame["example_id"] for frame in self.splits.values()])
        if ids.duplicated().any():
            raise ValueError(f"example_id not unique within task {self.spec.name}: {ids[ids.duplicated()].iloc[0]!r}")

    @property
    def num_labels(self) -> int:
        return len(self.spec.label_names)

    def fingerprint(self) -> str:
        """sha256 hex over the task name, label names and every split's ids, texts and labels, in order."""
        digest = hashlib.sha256(json.dumps([self.spec.name, list(self.spec.label_names)]).encode())
        for split, frame in self.splits.items():
            columns = [frame[c].tolist() for c in ("example_id", "text_a", "text_b", "label")]
            digest.update(json.dumps([split, *columns]).encode())
        return digest.hexdigest()

    def limited(self, *, train_limit: int | None, eval_limit: int | None) -> TaskData:
        """This task with at most `train_limit` training and `eval_limit` tune and test examples (seeded
        samples in each split's own order, see :func:`limit_rows`), each cut counted in `notes`."""
        limits = {"train": train_limit, "tune": eval_limit, "test": eval_limit}
        splits = {split: limit_rows(frame, limits[split]) for split, frame in self.splits.items()}
        notes = tuple(f"{split}: a seeded sample of {len(splits[split])} of {len(frame)} examples "
                      f"(limit {limits[split]})" for split, frame in self.splits.items() if len(splits[split]) < len(frame))
        return replace(self, splits=splits, notes=self.notes + notes) if notes else self

    def summary(self) -> pd.DataFrame:
        """One row per split: ``split``, ``examples`` and the number of examples of each label name."""
        rows = []
        for split, frame in self.splits.items():
            counts = np.bincount(frame["label"].to_numpy(), minlength=self.num_labels)
            rows.append({"split": split, "examples": len(frame), **dict(zip(self.spec.label_names, counts.tolist()))})
        return pd.DataFrame(rows)


def make_frame(ids: list[str], text_a: list[str], text_b: list[str] | None, labels: list[int]) -> pd.DataFrame:
    """Examples in the schema every split uses (text_b is all None for single-text tasks)."""
    second = pd.Series(text_b, dtype=str) if text_b is not None else pd.Series([None] * len(ids), dtype=object)
    return pd.DataFrame({
        "example_id": pd.Series(ids, dtype=str),
        "text_a": pd.Series(text_a, dtype=str),
        "text_b": second,
        "label": np.asarray(labels, dtype=np.int64),
    })


def examples_from_rows(
    source: str | Path,
    rows: list[tuple[int, dict[str, str]]],
    *,
    id_prefix: str,
    text_a: str,
    text_b: str | None,
    label: str,
    labels: Mapping[str, int],
    label_fix: str,
) -> pd.DataFrame:
    """Check every row (non-empty texts, known label) and turn the rows into an examples frame."""
    ids, texts_a, texts_b, ys = [], [], [], []
    pair_fix = f"This is a text-pair task: every row needs its second text in {text_b!r}; fill it in or drop the line."
    for line, row in rows:
        ids.append(f"{id_prefix}-{line}")
        texts_a.append(check_text(source, line, text_a, row[text_a]))
        if text_b is not None:
            texts_b.append(check_text(source, line, text_b, row[text_b], fix=pair_fix))
        ys.append(parse_label(source, line, label, row[label], labels, fix=label_fix))
    return make_frame(ids, texts_a, texts_b if text_b is not None else None, ys)


# ----------------------------------------------------------------------------- splitting


def limit_rows(split: pd.DataFrame, limit: int | None, *, seed: int = 0) -> pd.DataFrame:
    """At most `limit` rows, a seeded sample in the split's own order; all rows when `limit` is None."""
    if limit is None or limit >= len(split):
        return split
    keep = np.sort(np.random.default_rng(seed).choice(len(split), size=limit, replace=False))
    return split.iloc[keep].reset_index(drop=True)


def stratified_take(strata: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask choosing exactly ``count`` of the items, each stratum (label) in proportion.

    Items are ordered by stratum, at random within a stratum; item at position p of that order is taken
    when floor((p + 1) * count / n) > floor(p * count / n), i.e. at evenly spaced positions. The total is
    exactly ``count`` and each stratum contributes its share to within one item.

    >>> mask = stratified_take(np.array([0, 0, 0, 0, 1, 1]), 3, np.random.default_rng(0))
    >>> int(mask.sum()), int(mask[:4].sum()), int(mask[4:].sum())
    (3, 2, 1)
    """
    n = len(strata)
    order = np.lexsort((rng.random(n), strata))
    position = np.arange(n)
    taken = ((position + 1) * count) // n > (position * count) // n
    mask = np.zeros(n, dtype=bool)
    mask[order[taken]] = True
    return mask


def carve_grouped(group: np.ndarray, labels: np.ndarray, *, test_fraction: float, tune_fraction: float,
                  split_seed: int) -> np.ndarray:
    """Split index per row (0 train, 1 tune, 2 test) when rows of one group (ids from `pd.factorize`) must stay
    in one split: groups are stratified by their majority label (ties go to the lower label), and the test and
    tune shares are counted in groups."""
    n_labels = int(labels.max()) + 1
    per_label = np.bincount(group * n_labels + labels, minlength=n_labels * (group.max() + 1)).reshape(-1, n_labels)
    group_label = per_label.argmax(axis=1)
    rng = np.random.default_rng(split_seed)
    n_groups = len(group_label)
    is_test = stratified_take(group_label, round(test_fraction * n_groups), rng)
    is_tune = np.zeros(n_groups, dtype=bool)
    is_tune[~is_test] = stratified_take(group_label[~is_test], round(tune_fraction * n_groups), rng)
    return np.where(is_test, 2, np.where(is_tune, 1, 0))[group]


def split_by_mask(frame: pd.DataFrame, mask: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows where mask is False, rows where it is True), each in file order with a fresh index."""
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


def split_train_dev(
    spec: TaskSpec, train: pd.DataFrame, dev: pd.DataFrame, *, source: str, split_seed: int, tune_from: str
) -> TaskData:
    """Make train / tune / test from a train set and an official dev set (see the module docstring)."""
    rng = np.random.default_rng(split_seed)
    if tune_from == "dev":
        test, tune = split_by_mask(dev, stratified_take(dev["label"].to_numpy(), len(dev) // 2, rng))
        note = f"dev ({len(dev)} examples) split into label-stratified halves: tune {len(tune)}, test {len(test)}"
    elif tune_from == "train":
        count = min(len(dev), len(train) // 10)
        train, tune = split_by_mask(train, stratified_take(train["label"].to_numpy(), count, rng))
        test = dev
        note = f"tune: {count} label-stratified examples carved from train (as many as dev, at most 10%); test = dev"
    else:
        raise ValueError(f"tune_from must be 'dev' or 'train', got {tune_from!r}")
    splits = {"train": train, "tune": tune, "test": test}
    return TaskData(spec, splits, source, (note,), split_seed, tune_from)

