import json
from dataclasses import dataclass

import pandas as pd

from workbench.store import (atomic_write_text, content_hash, environment, markdown_table, read_json, write_json,
                             write_parquet, write_table)


@dataclass(frozen=True)
class Cfg:
    lr: float = 1e-3
    depth: int = 2


def test_atomic_writes_leave_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(tmp_path / "a.txt", "two")
    write_json(tmp_path / "b.json", {"cfg": Cfg(), "path": tmp_path})
    write_parquet(tmp_path / "c.parquet", pd.DataFrame({"x": [1, 2]}))
    assert (tmp_path / "a.txt").read_text() == "two"
    assert read_json(tmp_path / "b.json")["cfg"] == {"lr": 1e-3, "depth": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "c.parquet"]


def test_content_hash_tracks_every_field():
    base = content_hash(Cfg(), "data-fingerprint")
    assert base == content_hash(Cfg(), "data-fingerprint")
    assert base != content_hash(Cfg(lr=2e-3), "data-fingerprint")
    assert base != content_hash(Cfg(), "other-fingerprint")


def test_tables_and_environment(tmp_path):
    df = pd.DataFrame({"model": ["complete-1L"], "metric": [81.23456]})
    write_table(tmp_path / "t", df)
    assert (tmp_path / "t.csv").read_text().startswith("model,metric")
    assert "| complete-1L | 81.2346 |" in markdown_table(df)
    table = markdown_table(pd.DataFrame({"method": ["a | b", "c"], "examples": [200.0, float("nan")],
                                         "metric": [75.0, 80.25], "ci": [float("nan"), 1.5]}))
    lines = table.splitlines()
    assert lines[2] == "| a \\| b | 200 | 75.0000 | \u2014 |"  # a count prints as one, a pipe is escaped
    assert lines[3] == "| c | \u2014 | 80.2500 | 1.5000 |"  # a missing value is a dash, never 'nan'
    env = environment()
    assert env["packages"]["torch"].startswith("2.13")
    json.dumps(env)
