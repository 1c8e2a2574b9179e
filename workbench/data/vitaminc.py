"""The built-in sentence-pair task ``vitaminc``: VitaminC fact verification, close to MNLI.

Each example is a piece of Wikipedia evidence and a claim about it, labelled True (the evidence supports the
claim), False (it refutes it) or Neither (not enough information): 54,668 pairs. They come from BIG-bench's
``vitaminc_fact_verification`` task, inside the ``bigbench==1.0.0`` source archive on PyPI (about 358 MB,
sdist only). :func:`fetch_vitaminc` downloads the archive once, with a progress bar, checks its sha256,
streams out the one task file, checks that too, and keeps only it under ``<data_dir>/vitaminc/``.

In the task file each example's ``input`` is ``"<evidence>\\nClaim: <claim>"`` and its label is the argmax
of ``target_scores``. The task has no official split here, so train / tune / test (70 / 10 / 20 %) are
carved with a fixed seed, stratified by label. VitaminC's examples come in contrastive pairs (one claim with
evidence revised so the verdict flips, or one piece of evidence with several claims), so examples linked by
a shared claim or a shared piece of evidence form one group, and a group stays in one split: no test claim
and no test evidence is seen in training.
"""
from __future__ import annotations

import http.client
import json
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.data.fetch import FetchError, check_sha256, sha256_bytes, sha256_file
from workbench.data.files import DataError
from workbench.data.task import SPLITS, TaskData, TaskSpec, carve_grouped, make_frame
from workbench.store import atomic_write_bytes

VITAMINC_SPEC = TaskSpec("vitaminc", ("True", "False", "Neither"), "accuracy", True,
                         "VitaminC fact verification: does the evidence support the claim? (BIG-bench, PyPI)")
BIGBENCH_SDIST = "bigbench-1.0.0.tar.gz"
BIGBENCH_URL = ("https://files.pythonhosted.org/packages/95/f8/"
                "c019b3579df548a04cac12342cfcb878e50ddf6cfcd7fddba8cfc721c157/" + BIGBENCH_SDIST)
BIGBENCH_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
VITAMINC_MEMBER = "bigbench-1.0.0/bigbench/benchmark_tasks/vitaminc_fact_verification/task.json"
VITAMINC_SHA256 = "10f83da50374701fc7ce69162a7a167b14e1a86351201aa8bf14b56fa0a3214f"
CLAIM_MARK = "\nClaim: "
VITAMINC_TEST_FRACTION, VITAMINC_TUNE_FRACTION = 0.2, 0.1


def fetch_vitaminc(data_dir: str | Path = "data", *, url: str = BIGBENCH_URL) -> Path:
    """Return ``<data_dir>/vitaminc/task.json``, downloading the BIG-bench source archive once if needed.

    A cached file with the expected sha256 is used as is (offline). Otherwise the archive is downloaded from
    `url` into a temporary folder (sha256-checked), the task file is streamed out of it, checked, and written
    atomically; the archive is deleted."""
    target = Path(data_dir) / "vitaminc" / "task.json"
    if target.is_file() and sha256_file(target) == VITAMINC_SHA256:
        return target
    manual = (f"To place it by hand: download {BIGBENCH_SDIST} from https://pypi.org/project/bigbench/1.0.0/#files "
              f"(sha256 {BIGBENCH_SHA256}), and copy its member {VITAMINC_MEMBER} to {target}.")
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / BIGBENCH_SDIST
        _download(url, archive, manual=manual)
        check_sha256(BIGBENCH_SDIST, sha256_file(archive), BIGBENCH_SHA256, manual=manual)
        data = _read_tar_member(archive, VITAMINC_MEMBER, manual=manual)
    check_sha256(f"{VITAMINC_MEMBER} in {BIGBENCH_SDIST}", sha256_bytes(data), VITAMINC_SHA256, manual=manual)
    atomic_write_bytes(target, data)
    return target


def _download(url: str, dest: Path, *, manual: str) -> None:
    """Stream `url` to `dest` with a progress bar; a FetchError with `manual` when it fails."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}") as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
    except (OSError, http.client.HTTPException) as err:  # URLError, timeouts; a body cut off midway
        raise FetchError(f"could not download {url} ({err}). {manual}") from err


def _read_tar_member(archive: Path, member: str, *, manual: str) -> bytes:
    """The bytes of one member of a .tar.gz, read in one streaming pass."""
    try:
        with tarfile.open(archive, "r|gz") as tar:
            for info in tar:
                if info.name == member and info.isfile():
                    return tar.extractfile(info).read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise FetchError(f"{archive.name}: cannot read it as a .tar.gz ({err}). {manual}") from err
    raise FetchError(f"{archive.name} has no member {member}. {manual}")


def load_vitaminc(path: str | Path, *, split_seed: int = 0) -> TaskData:
    """Read a BIG-bench task.json of VitaminC and carve train / tune / test (see the module docstring).

    Every entry must have a string ``input`` holding ``"\\nClaim: "`` exactly once, with text on both sides,
    and ``target_scores`` giving a number to each of True, False and Neither with one clear maximum; any
    other entry stops the load with an error naming its index (0-based, in ``examples``) and field.
    ``example_id`` is ``vitaminc-<index>``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; run fetch_vitaminc(data_dir) or check --data-dir.")
    try:
        task = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a JSON task file ({err}); delete it and fetch it again.") from err
    examples = task.get("examples") if isinstance(task, dict) else None
    if not isinstance(examples, list) or not examples:
        raise DataError(f"{path}: no 'examples' list; a BIG-bench task file holds {{'examples': [...]}}.")
    evidence, claims, labels = [], [], []
    for i, entry in enumerate(examples):
        e, c, y = _parse_entry(entry, where=f"{path}, examples[{i}]")
        evidence.append(e)
        claims.append(c)
        labels.append(y)
    labels = np.asarray(labels, dtype=np.int64)
    frame = make_frame([f"vitaminc-{i}" for i in range(len(examples))], evidence, claims, labels.tolist())
    group = linked_groups(claims, evidence)
    sizes = np.bincount(group)
    notes = [f"{len(examples)} evidence-claim pairs in {len(sizes)} groups linked by a shared claim or evidence "
             f"(largest {int(sizes.max())} pairs), each group kept in one split"]
    row_split = carve_grouped(group, labels, test_fraction=VITAMINC_TEST_FRACTION,
                              tune_fraction=VITAMINC_TUNE_FRACTION, split_seed=split_seed)
    splits = {name: frame[row_split == k].reset_index(drop=True) for k, name in enumerate(SPLITS)}
    return TaskData(VITAMINC_SPEC, splits, str(path), tuple(notes), split_seed, "carved")


def linked_groups(claims: list[str], evidence: list[str]) -> np.ndarray:
    """Group id per example (0, 1, ... by first appearance): examples sharing a claim or a piece of evidence
    (after stripping spaces), directly or through others, get the same id (connected components)."""
    claim_node, _ = pd.factorize(pd.Series(claims).str.strip())
    evidence_node, _ = pd.factorize(pd.Series(evidence).str.strip())
    evidence_node = evidence_node + claim_node.max() + 1
    parent = np.arange(evidence_node.max() + 1)

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving
            node = parent[node]
        return node
    for a, b in zip(claim_node, evidence_node):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    group, _ = pd.factorize(np.array([root(node) for node in claim_node]))
    return group


def _parse_entry(entry, *, where: str) -> tuple[str, str, int]:
    """(evidence, claim, label id) of one task entry; a DataError naming `where` and the field otherwise."""
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected an object with 'input' and 'target_scores', got {type(entry).__name__}")
    text = entry.get("input")
    if not isinstance(text, str):
        raise DataError(f"{where}, field 'input': expected a string, got {text!r}")
    if text.count(CLAIM_MARK) != 1:
        raise DataError(f"{where}, field 'input': expected '<evidence>\\nClaim: <claim>' with one claim mark, found "
                        f"{text.count(CLAIM_MARK)} in {text[:80]!r}")
    evidence, claim = (part.strip() for part in text.split(CLAIM_MARK))
    if not evidence or not claim:
        raise DataError(f"{where}, field 'input': the {'evidence' if not evidence else 'claim'} is empty")
    scores = entry.get("target_scores")
    names = VITAMINC_SPEC.label_names
    if not isinstance(scores, dict) or set(scores) != set(names):
        raise DataError(f"{where}, field 'target_scores': expected scores for exactly {list(names)}, got {scores!r}")
    values = [scores[name] for name in names]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in values):
        raise DataError(f"{where}, field 'target_scores': every score must be a finite number, got {scores!r}")
    best = max(values)
    if values.count(best) != 1:
        raise DataError(f"{where}, field 'target_scores': no single label has the highest score in {scores!r}")
    return evidence, claim, values.index(best)
