"""A cache that checks itself, and one run at a time on a cache folder.

Each cache entry (a folder under `<out>/cache`, keyed by config and data hash) records the sha256 of its
files in `checksums.json` when a part of it is completed: the trained checkpoint with its `done.json`, each
outputs parquet. Before an entry is reused, :func:`ensure_intact` checks every recorded file; one that is
missing or fails its check is reported by name and the entry is emptied, so its stage runs again instead
of failing later with an error that names no file. Entries from before checksums were recorded are
reused as they are.

:func:`cache_lock` takes a file lock (the `filelock` package, the one the Hugging Face hub uses) on the
cache folder, so that a second run on the same cache stops at once with a clear message.
"""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from workbench.data.fetch import sha256_file
from workbench.data.files import DataError
from workbench.runs.distributed import is_main_process
from workbench.store import read_json, write_json

CHECKSUMS = "checksums.json"
_intact: set[tuple[str, float]] = set()  # (folder, mtime of its checksums) already checked in this process


def _files(folder: Path, parts) -> list[Path]:
    found = []
    for part in parts:
        path = folder / part
        found += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return found


def record(folder: str | Path, *parts: str) -> None:
    """Add the sha256 of `parts` (files, or folders taken file by file) to the entry's checksums (in the process
    that writes: the only one, or the main one of several)."""
    if not is_main_process():
        return
    folder = Path(folder)
    checksums = read_json(folder / CHECKSUMS) if (folder / CHECKSUMS).is_file() else {}
    for path in _files(folder, parts):
        checksums[path.relative_to(folder).as_posix()] = sha256_file(path)
    write_json(folder / CHECKSUMS, checksums)


def damaged(folder: str | Path) -> list[str]:
    """The recorded files of an entry that are missing or whose sha256 differs, with what is wrong."""
    folder = Path(folder)
    try:
        checksums = read_json(folder / CHECKSUMS) if (folder / CHECKSUMS).is_file() else {}
    except ValueError:
        return [f"{CHECKSUMS} (not valid JSON)"]
    problems = []
    for name, expected in checksums.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} (missing)")
        elif sha256_file(path) != expected:
            problems.append(f"{name} (sha256 differs from the one recorded when it was written)")
    return problems


def ensure_intact(folder: str | Path) -> None:
    """Check a cache entry before reuse; a damaged one is reported by file and emptied, so it is recomputed."""
    folder = Path(folder)
    stamp = (folder / CHECKSUMS).stat().st_mtime if (folder / CHECKSUMS).is_file() else None
    if stamp is None or (str(folder), stamp) in _intact:
        return
    problems = damaged(folder)
    if problems:
        if is_main_process():  # in a run of several processes the main one reports and empties it
            tqdm.write(f"cache entry {folder} is damaged: {'; '.join(problems)}; recomputing it")
            shutil.rmtree(folder)
        return
    _intact.add((str(folder), (folder / CHECKSUMS).stat().st_mtime))


@contextmanager
def cache_lock(cache: str | Path):
    """Hold the cache folder's lock for a run; a second run on the same cache stops with a DataError."""
    cache = Path(cache)
    if not is_main_process():  # the processes of one launched run share the main one's lock
        yield
        return
    cache.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(cache / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise DataError(f"another run is using the cache {cache} (its lock file {cache / '.lock'} is held); wait "
                        "for it to finish, or pass another --cache-dir or --out") from None
    try:
        yield
    finally:
        lock.release()
