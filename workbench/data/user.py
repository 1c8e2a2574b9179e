"""The user's own CSV, TSV or JSONL files as a task (:func:`load_files`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from workbench.data.files import DataError, is_missing, read_table, row_error, show_values
from workbench.data.task import SPLITS, TaskData, TaskSpec, examples_from_rows, split_by_mask, stratified_take
from workbench.measures.metrics import METRIC_NAMES


def _label_order(found: set[str]) -> list[str]:
    """Distinct labels sorted numerically if all are integers (so '10' follows '9'), else as strings."""
    try:
        return sorted(found, key=int)
    except ValueError:
        return sorted(found)


MAX_CLASSES = 20  # more distinct numeric labels than this is read as a score, not a class


def _refuse_numeric_labels(path, label_col: str, label_names: tuple[str, ...]) -> None:
    """Stop when the label column holds scores rather than classes: numbers that are not whole, one number
    spelled two ways ('0' and '0.00'), or more than MAX_CLASSES distinct numbers."""
    try:
        values = [float(name) for name in label_names]
    except ValueError:
        return  # names, not numbers
    fractional = [name for name, v in zip(label_names, values) if not math.isfinite(v) or v != int(v)]
    same = len(set(values)) < len(values)
    if fractional or same or len(values) > MAX_CLASSES:
        why = (f"values such as {show_values(fractional)} are not whole numbers" if fractional else
               "some values are the same number written differently" if same else
               f"{len(values)} distinct numbers is more than the {MAX_CLASSES} classes a label column is read as")
        raise DataError(f"{path}, field {label_col!r}: the label column looks numeric or continuous "
                        f"({len(values)} distinct values, e.g. {show_values(label_names)}; {why}). The workbench "
                        "classifies and does not support regression: map the scores to class names first, or pick "
                        "the right column with --label-col.")


def load_files(
    *,
    train: str | Path,
    test: str | Path,
    tune: str | Path | None = None,
    text_col: str,
    label_col: str,
    text_b_col: str | None = None,
    fmt: str | None = None,
    label_names: tuple[str, ...] | list[str] | None = None,
    name: str = "custom",
    metric: str = "accuracy",
    split_seed: int = 0,
    tune_fraction: float = 0.1,
) -> TaskData:
    """Load the user's own CSV / TSV / JSONL files as a task.

    Without a ``tune`` file, a seeded, label-stratified ``tune_fraction`` of train becomes tune.
    ``label_names=None`` takes the distinct labels of train (sorted, numerically when all are integers);
    a label in tune or test that is not among them is an error. ``example_id`` is ``<split>-<line>``.
    """
    if metric not in METRIC_NAMES:
        raise ValueError(f"metric must be one of {METRIC_NAMES}, got {metric!r}")
    if not 0 < tune_fraction < 1:
        raise ValueError(f"tune_fraction must be between 0 and 1, got {tune_fraction!r}")
    paths = {"train": train, "tune": tune, "test": test}
    raw = {
        split: read_table(path, fmt=fmt, option=f"--{split}-file", required=(text_col, text_b_col, label_col))
        for split, path in paths.items() if path is not None
    }
    if label_names is None:
        for line, row in raw["train"]:
            if is_missing(row[label_col]):
                raise row_error(train, line, label_col, row[label_col], "is a missing label",
                                "Fill in the label or remove the line; rows without a label are not dropped silently.")
        label_names = tuple(_label_order({row[label_col].strip() for _, row in raw["train"]}))
        _refuse_numeric_labels(train, label_col, label_names)
        label_fix = f"This label does not occur in the training file {train}; add training examples with it or fix it."
    else:
        label_names = tuple(label_names)
        label_fix = "Fix the label, or pass label names that match the file."
    if len(label_names) < 2 or len(set(label_names)) != len(label_names):
        raise DataError(f"{train}: labels must be at least two distinct names, got {list(label_names)}; "
                        f"check the label column {label_col!r} or the label names given.")
    labels = {label: i for i, label in enumerate(label_names)}
    frames = {
        split: examples_from_rows(paths[split], rows, id_prefix=split, text_a=text_col, text_b=text_b_col, label=label_col,
                         labels=labels, label_fix=label_fix)
        for split, rows in raw.items()
    }
    notes = []
    if tune is None:
        count = round(tune_fraction * len(frames["train"]))
        if not 0 < count < len(frames["train"]):
            raise DataError(f"{train}: {len(frames['train'])} training rows leave no room for a tune split of "
                            f"{tune_fraction:.0%}; add rows or pass --tune-file FILE.")
        mask = stratified_take(frames["train"]["label"].to_numpy(), count, np.random.default_rng(split_seed))
        frames["train"], frames["tune"] = split_by_mask(frames["train"], mask)
        notes.append(f"tune: {count} label-stratified examples ({tune_fraction:.0%}) carved from train")
    description = f"user files: {Path(train).name}, {Path(test).name}"
    spec = TaskSpec(name, label_names, metric, text_b_col is not None, description)
    splits = {split: frames[split] for split in SPLITS}
    source = "; ".join(f"{split}={path}" for split, path in paths.items() if path is not None)
    return TaskData(spec, splits, source, tuple(notes), split_seed, "file" if tune is not None else "train")


