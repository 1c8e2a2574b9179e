"""GLUE tasks: from a folder in the official download layout, or from the Hugging Face hub.

``<glue_dir>/SST-2/train.tsv`` and its dev file are read with no quote processing (see
`workbench.data.files`). GLUE test labels are private, so the official dev set stands in for test, and
tune comes from dev by default (see `workbench.data.task.split_train_dev`): SST-2's train set is mostly
short phrases (about 13 tokens) while dev holds full sentences (about 25 tokens), so a threshold
chosen on a tune split carved from train misses its speed-up target on test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.data.files import DataError, read_table
from workbench.data.task import TaskData, TaskSpec, examples_from_rows, split_train_dev

_NLI2 = ("entailment", "not_entailment")
_NLI3 = ("contradiction", "entailment", "neutral")
GLUE_SPECS: dict[str, TaskSpec] = {spec.name: spec for spec in (
    TaskSpec("sst2", ("negative", "positive"), "accuracy", False, "GLUE SST-2: movie-review phrase sentiment"),
    TaskSpec("mrpc", ("not_equivalent", "equivalent"), "f1", True, "GLUE MRPC: are two news sentences paraphrases"),
    TaskSpec("rte", _NLI2, "accuracy", True, "GLUE RTE: does the premise entail the hypothesis"),
    TaskSpec("cola", ("unacceptable", "acceptable"), "mcc", False, "GLUE CoLA: is the sentence grammatical"),
    TaskSpec("qnli", _NLI2, "accuracy", True, "GLUE QNLI: does the sentence answer the question"),
    TaskSpec("qqp", ("not_duplicate", "duplicate"), "f1", True, "GLUE QQP: are two Quora questions duplicates"),
    TaskSpec("mnli", _NLI3, "accuracy", True, "GLUE MNLI: premise / hypothesis inference, matched dev"),
    TaskSpec("mnli-mm", _NLI3, "accuracy", True, "GLUE MNLI: premise / hypothesis inference, mismatched dev"),
    TaskSpec("wnli", ("not_entailment", "entailment"), "accuracy", True, "GLUE WNLI: pronoun resolution as entailment"),
)}


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


def glue_files(name: str) -> str:
    """The two files a GLUE folder must hold for task `name`, e.g. 'SST-2/train.tsv and SST-2/dev.tsv'."""
    layout = _GLUE[name]
    return f"{layout.folder}/train.tsv and {layout.folder}/{layout.dev_file}"


def _glue_labels(spec: TaskSpec, layout: _GlueLayout) -> dict[str, int]:
    """Raw label value -> id: by integer value for numeric files, by name otherwise."""
    if layout.numeric_labels:
        return {str(i): i for i in range(len(spec.label_names))}
    return {name: i for i, name in enumerate(spec.label_names)}


def load_glue_files(spec: TaskSpec, glue_dir: str | Path, *, split_seed: int, tune_from: str) -> TaskData:
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
        frames.append(examples_from_rows(
            path, rows, id_prefix=Path(file).stem, text_a=layout.text_a, text_b=layout.text_b, label=layout.label,
            labels=_glue_labels(spec, layout), label_fix=label_fix,
        ))
    folder = Path(glue_dir) / layout.folder
    source = f"{folder / 'train.tsv'}; {folder / layout.dev_file}"
    return split_train_dev(spec, frames[0], frames[1], source=source, split_seed=split_seed, tune_from=tune_from)


def load_glue_hub(spec: TaskSpec, *, split_seed: int, tune_from: str) -> TaskData:
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
        frames.append(examples_from_rows(
            f"hub glue/{config} {split}", rows, id_prefix=split, text_a="text_a",
            text_b="text_b" if text_b else None, label="label", labels=labels,
            label_fix="The hub copy looks damaged; load from --glue-dir instead.",
        ))
    source = f"hub: glue/{config} train, {layout.hub_dev}"
    return split_train_dev(spec, frames[0], frames[1], source=source, split_seed=split_seed, tune_from=tune_from)


