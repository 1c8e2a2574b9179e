"""Reading text-classification files (TSV, CSV, JSONL) and checking what is in them.

Everything a loader reads comes back as ``(line, row)`` pairs, where ``line`` is the 1-based line
number in the file (a header is line 1) and ``row`` maps a column name to its raw string value. The
checks below turn a bad value into a :class:`DataError` that names the file, the line, the field,
the value, and what to do about it, so nothing is dropped or guessed silently.

Format traps handled here (all present in genuine GLUE files):

- TSV is read with no quote processing (``csv.QUOTE_NONE``): GLUE texts contain unbalanced double
  quotes, and the default dialect would silently merge rows until the next quote.
- Files are decoded as ``utf-8-sig``, so MRPC's byte-order mark does not stick to its first column.
- Header-less files (CoLA) get their column names from ``columns``.
- Blank lines carry no data and are skipped; every other line must have exactly the header's fields.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

FORMATS = ("tsv", "csv", "jsonl")
_EXTENSIONS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_SHOW_CHARS = 80  # longest value quoted verbatim in an error message
_SHOW_VALUES = 8  # most values listed in an error message
MISSING = ("", "nan", "none", "null", "na", "n/a")  # label spellings that mean "no label" (any case)


class DataError(ValueError):
    """A data file is missing or holds a value the workbench cannot use; the message says where and what to do."""


# ----------------------------------------------------------------------------- error messages


def show_value(value: object) -> str:
    """Quote ``value`` for an error message, shortened to a readable length."""
    text = repr(value)
    return text if len(text) <= _SHOW_CHARS else text[: _SHOW_CHARS - 5] + "...'"


def show_values(values) -> str:
    """At most a few values quoted for an error message, with how many more there are."""
    values = list(values)
    shown = ", ".join(show_value(v) for v in values[:_SHOW_VALUES])
    return shown + (f" and {len(values) - _SHOW_VALUES} more" if len(values) > _SHOW_VALUES else "")


def is_missing(value: str | None) -> bool:
    """True for an empty label or one spelled as missing ('NaN', 'None', 'null', 'NA', 'N/A')."""
    return value is None or value.strip().lower() in MISSING


def row_error(path: str | Path, line: int, field: str, value: object, problem: str, fix: str) -> DataError:
    """Build a DataError for one value: ``<file>, line <n>, field '<f>': value <v> <problem>. <fix>``."""
    return DataError(f"{path}, line {line}, field {field!r}: value {show_value(value)} {problem}. {fix}")


def _given_by(option: str | None) -> str:
    return f" (given by {option})" if option else ""


# ----------------------------------------------------------------------------- reading


def format_of(path: str | Path, fmt: str | None = None) -> str:
    """Return ``fmt`` if given, else the format implied by the file extension (``tsv``, ``csv`` or ``jsonl``)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise DataError(f"{path}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise DataError(
            f"{path}: cannot tell the format from the extension {suffix!r}; rename the file to "
            f"{', '.join(_EXTENSIONS)} or pass the format explicitly ({', '.join(FORMATS)})."
        )
    return _EXTENSIONS[suffix]


def read_table(
    path: str | Path,
    *,
    fmt: str | None = None,
    has_header: bool = True,
    columns: Iterable[str] | None = None,
    option: str | None = None,
    required: Iterable[str | None] = (),
) -> list[tuple[int, dict[str, str]]]:
    """Read a TSV, CSV or JSONL file into ``(line, row)`` pairs, one per record, checking field counts.

    ``fmt`` is ``'tsv'``, ``'csv'``, ``'jsonl'`` or ``None`` (from the extension). ``columns`` names the
    fields of a header-less delimited file (``has_header=False``); it is required there and not allowed
    otherwise. ``option`` is the command-line option that gave ``path`` (e.g. ``'--glue-dir'``), named
    in the error when the file is missing. ``required`` lists columns that the header (or, in JSONL,
    every object) must have; ``None`` entries are ignored. JSONL values are returned as strings
    (JSON ``null`` as ``''``).
    """
    path = Path(path)
    fmt = format_of(path, fmt)
    required = tuple(name for name in required if name is not None)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "not found"
        raise DataError(f"{path}: {what}{_given_by(option)}; check the path and that the file is in place.")
    if fmt == "jsonl":
        if columns is not None or not has_header:
            raise ValueError("JSONL rows name their own fields; do not pass columns or has_header=False")
        return _read_jsonl(path, required, option)
    names = None if columns is None else tuple(columns)
    if has_header == (names is not None):
        raise ValueError("pass columns=... exactly when has_header=False (header-less files)")
    return _read_delimited(path, fmt, names, required, option)


def _read_delimited(
    path: Path, fmt: str, names: tuple[str, ...] | None, required: tuple[str, ...], option: str | None
) -> list[tuple[int, dict[str, str]]]:
    """Read TSV (no quote processing) or CSV (standard quoting); a record's line is the line it starts on."""
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {}
    separator = "tab" if fmt == "tsv" else "comma"
    rows: list[tuple[int, dict[str, str]]] = []
    with io.StringIO(_decode(path), newline="") as handle:
        reader = csv.reader(handle, **dialect)
        next_line = 1
        try:
            for fields in reader:
                line, next_line = next_line, reader.line_num + 1
                if not fields:
                    continue  # blank line
                if names is None:
                    names = _header(path, line, fields)
                    _check_columns(path, line, "header", names, required, option)
                    continue
                if len(fields) != len(names):
                    raise DataError(
                        f"{path}, line {line}: expected {len(names)} {separator}-separated fields "
                        f"({', '.join(names)}) but got {len(fields)}, starting {show_value(fields[0])}. "
                        f"Fix or remove this line (a stray {separator} inside a text, or a cut-off line)."
                    )
                rows.append((line, dict(zip(names, fields))))
        except csv.Error as err:
            raise DataError(f"{path}, line {next_line}: unreadable {fmt.upper()} ({err}); fix this line.") from err
    if names is None:
        raise DataError(f"{path}: the file is empty; expected a header line and data rows.")
    if not rows:
        raise DataError(f"{path}: no data rows after the header; check that this is the right file.")
    return rows


def _decode(path: Path) -> str:
    """The file's text (UTF-8, a byte-order mark dropped); a bad byte is reported with its real line and column."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataError(f"{path}, line {line}, column {column}: not valid UTF-8 (byte {data[err.start]:#04x}, "
                        f"{err.reason}); re-save the file as UTF-8.") from None


def _header(path: Path, line: int, fields: list[str]) -> tuple[str, ...]:
    """Column names from a header line; names must be non-empty and distinct."""
    names = tuple(field.strip() for field in fields)
    for name in names:
        if not name or names.count(name) > 1:
            problem = "is empty" if not name else "appears twice"
            raise DataError(
                f"{path}, line {line}: header column {name!r} {problem} (header: {list(names)}); "
                "give every column a distinct name, or read the file as header-less."
            )
    return names


def _read_jsonl(path: Path, required: tuple[str, ...], option: str | None) -> list[tuple[int, dict[str, str]]]:
    """Read one JSON object per non-blank line, with scalar values turned into strings."""
    rows: list[tuple[int, dict[str, str]]] = []
    for line, text in enumerate(io.StringIO(_decode(path)), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(
                f"{path}, line {line}: not valid JSON ({err.msg} at column {err.colno}); "
                "each line must be one JSON object."
            ) from err
        if not isinstance(record, dict):
            raise DataError(
                f"{path}, line {line}: expected a JSON object, got {type(record).__name__} "
                f"{show_value(text.strip())}; write one object per line, e.g. "
                '{"text": "...", "label": "..."}.'
            )
        _check_columns(path, line, "object", tuple(record), required, option)
        rows.append((line, {str(k): _json_scalar(path, line, str(k), v) for k, v in record.items()}))
    if not rows:
        raise DataError(f"{path}: the file has no JSON rows; check that this is the right file.")
    return rows


def _json_scalar(path: Path, line: int, field: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)  # true/false, 1, 0.5: the spelling in the file
    raise row_error(path, line, field, value, "is a list or object", "Use a string or number for this field.")


# ----------------------------------------------------------------------------- checks


def _check_columns(
    path: Path, line: int, what: str, found: tuple[str, ...], required: tuple[str, ...], option: str | None
) -> None:
    """Raise a DataError naming the found and expected columns if any required one is missing."""
    missing = [name for name in required if name not in found]
    if missing:
        raise DataError(
            f"{path}, line {line}: the {what} lacks column(s) {missing}; found {list(found)}, expected "
            f"{list(required)}. Check the column options, or that the file{_given_by(option)} is the right one."
        )


def check_text(path: str | Path, line: int, field: str, value: str, *, fix: str | None = None) -> str:
    """Return ``value`` unchanged if it has any non-space character, else raise a DataError."""
    if value is None or not value.strip():
        raise row_error(
            path, line, field, value, "is an empty text",
            fix or "Fill in the text or remove the line; examples with no text cannot be classified.",
        )
    return value


def parse_label(
    path: str | Path, line: int, field: str, value: str, labels: Mapping[str, int], *, fix: str | None = None
) -> int:
    """Map a raw label (surrounding spaces ignored) to its id via ``labels``; name the allowed labels if absent.

    >>> parse_label("dev.tsv", 2, "label", "not_entailment ", {"entailment": 0, "not_entailment": 1})
    1
    """
    key = value.strip()
    if is_missing(value) and key not in labels:
        raise row_error(path, line, field, value, "is a missing label",
                        "Fill in the label or remove the line; rows without a label are not dropped silently.")
    if key not in labels:
        allowed = show_values(labels)
        raise row_error(
            path, line, field, value, f"is not one of the allowed labels ({allowed})",
            fix or "Fix the label, or check that the file belongs to this task.",
        )
    return labels[key]
