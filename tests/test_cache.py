"""A cache that checks itself: damaged entries are named and recomputed; one run at a time per cache."""
import json

import pandas as pd
import pytest

from workbench.data.files import DataError
from workbench.runs import cache
from workbench.runs.folder import load_tables
from workbench.ui.cli import main


def _reproduce(toy_files, out):
    return main(["reproduce", "--preset", "smoke", "--train-file", toy_files["train"], "--test-file",
                 toy_files["test"], "--task", "toy", "--depths", "1,2", "--complete-only", "--out", str(out)])


def test_record_and_check(tmp_path):
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "w.safetensors").write_bytes(b"weights")
    (tmp_path / "done.json").write_text("{}")
    cache.record(tmp_path, "best", "done.json")
    assert set(json.loads((tmp_path / cache.CHECKSUMS).read_text())) == {"best/w.safetensors", "done.json"}
    assert cache.damaged(tmp_path) == []
    (tmp_path / "best" / "w.safetensors").write_bytes(b"weig")
    (tmp_path / "done.json").unlink()
    assert cache.damaged(tmp_path) == ["best/w.safetensors (sha256 differs from the one recorded when it was "
                                       "written)", "done.json (missing)"]


@pytest.mark.parametrize("victim", ["best/head.safetensors", "best/encoder/model.safetensors", "done.json",
                                    "best/spec.json", "outputs.parquet"])
def test_a_damaged_cache_file_is_named_and_its_stage_recomputed(tmp_path, toy_files, capsys, victim):
    assert _reproduce(toy_files, tmp_path / "run") == 0
    before = load_tables(tmp_path / "run")["complete_models"]
    entry = next(p for p in (tmp_path / "run" / "cache").iterdir() if "complete-1L" in p.name)
    path = entry / victim
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # cut off, as by a full disk or a kill
    capsys.readouterr()
    assert _reproduce(toy_files, tmp_path / "run") == 0
    printed = capsys.readouterr()
    assert f"cache entry {entry} is damaged: {victim} (sha256 differs" in printed.out + printed.err
    assert cache.damaged(entry) == [] and (entry / "done.json").is_file()
    pd.testing.assert_frame_equal(load_tables(tmp_path / "run")["complete_models"], before)  # retrained the same


def test_a_second_run_on_the_same_cache_stops(tmp_path, toy_files, capsys):
    from filelock import FileLock
    (tmp_path / "run" / "cache").mkdir(parents=True)
    with FileLock(str(tmp_path / "run" / "cache" / ".lock")):  # as another process would hold it
        assert _reproduce(toy_files, tmp_path / "run") == 2
    assert "another run is using the cache" in capsys.readouterr().err
    assert _reproduce(toy_files, tmp_path / "run") == 0  # released: runs


def test_damaged_json_and_checkpoints_name_their_file(tmp_path):
    from workbench.models.complete import CompleteModel
    from workbench.store import read_json
    (tmp_path / "x.json").write_text('{"a": "cut')
    with pytest.raises(ValueError, match=r"x.json: not valid JSON .*Unterminated string"):
        read_json(tmp_path / "x.json")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "spec.json").write_text('{"backbone": "tiny-random-bert", "depth": 1')
    with pytest.raises(DataError, match="ckpt: cannot read this checkpoint"):
        CompleteModel.from_pretrained(tmp_path / "ckpt")


def test_task_names_never_become_paths(tmp_path, toy_files):
    code = main(["reproduce", "--preset", "smoke", "--train-file", toy_files["train"], "--test-file",
                 toy_files["test"], "--task", "../../../escape", "--depths", "1", "--complete-only", "--out",
                 str(tmp_path / "a" / "b" / "run")])
    assert code == 0
    entries = list((tmp_path / "a" / "b" / "run" / "cache").iterdir())
    assert entries and all(e.parent == tmp_path / "a" / "b" / "run" / "cache" for e in entries)
    assert not list(tmp_path.glob("escape*")) and not list((tmp_path / "a").glob("escape*"))
