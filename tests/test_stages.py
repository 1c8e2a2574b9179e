import json

import pandas as pd
import pytest

import workbench.study.stages as stages
from workbench.runs.outputs import BASE_COLUMNS
from workbench.ui.cli import main


def _reproduce(toy_files, out, *extra):
    return main(["reproduce", "--preset", "smoke", "--train-file", toy_files["train"], "--test-file",
                 toy_files["test"], "--task", "toy", "--depths", "1,2", "--complete-only", "--out", str(out), *extra])


def test_reproduce_writes_outputs_summary_and_config(tmp_path, toy_files, capsys):
    assert _reproduce(toy_files, tmp_path / "run") == 0
    printed = capsys.readouterr().out
    assert "complete-1L" in printed and "speedup_layers" in printed
    outputs = pd.read_parquet(tmp_path / "run" / "outputs.parquet")
    assert list(outputs.columns[:len(BASE_COLUMNS)]) == list(BASE_COLUMNS)
    assert set(outputs["model"]) == {"complete-1L", "complete-2L"}
    assert set(outputs["split"]) == {"tune", "test"}
    assert len(outputs[outputs["split"] == "test"]) == 2 * 80
    summary = pd.read_csv(tmp_path / "run" / "tables" / "complete_models.csv")
    assert summary["speedup_layers"].tolist() == [6.0, 3.0]
    assert (tmp_path / "run" / "tables" / "complete_models.md").is_file()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["run"]["train"]["train_limit"] == 400 and config["run"]["depths"] == [1, 2]
    assert config["environment"]["packages"]["torch"].startswith("2.13")
    assert config["task"]["sizes"]["test"] == 80


def test_rerun_reuses_cache_and_changed_config_retrains(tmp_path, toy_files, monkeypatch):
    assert _reproduce(toy_files, tmp_path / "run") == 0
    calls = []
    real = stages.train_complete_model
    monkeypatch.setattr(stages, "train_complete_model", lambda *a, **k: calls.append(k) or real(*a, **k))
    assert _reproduce(toy_files, tmp_path / "run") == 0
    assert calls == []
    assert _reproduce(toy_files, tmp_path / "run", "--epochs", "1") == 0
    assert len(calls) == 2


def test_seeds_give_mean_and_sd(tmp_path, toy_files):
    assert _reproduce(toy_files, tmp_path / "run", "--seeds", "0,1", "--depths", "1") == 0
    summary = pd.read_csv(tmp_path / "run" / "tables" / "complete_models.csv")
    assert summary["seeds"].tolist() == [2]
    assert summary["metric_sd"].iloc[0] >= 0


def test_cli_errors_name_the_problem(tmp_path, toy_files, capsys):
    code = main(["reproduce", "--preset", "smoke", "--train-file", str(tmp_path / "nope.csv"), "--test-file",
                 toy_files["test"], "--out", str(tmp_path / "x")])
    assert code == 2
    assert "nope.csv" in capsys.readouterr().err
    code = main(["reproduce", "--preset", "smoke", "--task", "sst2", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "--glue-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["reproduce", "--depths", "one"])


def test_train_and_predict_commands(tmp_path, toy_files, capsys):
    common = ["--train-file", toy_files["train"], "--test-file", toy_files["test"]]
    assert main(["train", "--preset", "smoke", *common, "--depth", "1", "--out", str(tmp_path / "t")]) == 0
    checkpoint = capsys.readouterr().out.split("checkpoint: ")[1].strip()
    out = tmp_path / "pred.parquet"
    assert main(["predict", *common, "--checkpoint", checkpoint, "--split", "test", "--out", str(out)]) == 0
    rows = pd.read_parquet(out)
    assert len(rows) == 80 and set(rows["layer"]) == {1}


def test_help_on_every_command(capsys):
    for command in ("tasks", "train", "predict", "reproduce"):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
    assert "--glue-dir" in capsys.readouterr().out
