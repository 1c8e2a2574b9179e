import json

import numpy as np
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


def test_distilled_members_learn_from_the_cached_teacher(tmp_path, toy_task, monkeypatch):
    """With distill_members, a small complete model trains on the full model's logits, which are computed once
    per teacher and reused; a rerun trains nothing; another teacher gives the student another cache entry."""
    import workbench as wb
    from workbench.methods.difficulty import DifficultyAwareObjective, DistilledObjective
    config = wb.RunConfig.from_preset("smoke", out=str(tmp_path / "run"), distill_members=True, seeds=(0,))
    fits = []
    real_fit = stages.fit
    monkeypatch.setattr(stages, "fit", lambda *a, **k: fits.append(a[1]) or real_fit(*a, **k))
    folder, rows = stages.complete_model(toy_task, config, 1, 0, progress=False)
    assert set(rows["model"]) == {"complete-1L"}
    assert len(fits) == 1 and isinstance(fits[0], DistilledObjective)  # the teacher trains through its own path
    teacher, teacher_folder = stages.teacher_logits(toy_task, config, 0, progress=False)
    assert teacher.shape == (len(toy_task.splits["train"]), 2)
    np.testing.assert_allclose(fits[0].teacher.numpy(), teacher)
    assert (teacher_folder / "train_outputs.parquet").is_file()

    # a rerun: no training, and the teacher's logits are read back, not recomputed
    real_load = stages._load_complete
    monkeypatch.setattr(stages, "_load_complete", lambda *_: pytest.fail("the teacher ran again"))
    again, _ = stages.complete_model(toy_task, config, 1, 0, progress=False)
    assert again == folder and len(fits) == 1
    monkeypatch.setattr(stages, "_load_complete", real_load)

    # the difficulty-aware member is a student too: its cross-entropy becomes the distillation loss
    easy = np.arange(len(toy_task.splits["train"])) % 2 == 0
    _, da_rows = stages.da_member(toy_task, config, 1, 0, easy, progress=False)
    assert set(da_rows["model"]) == {"complete-1L-da"}
    assert isinstance(fits[-1], DifficultyAwareObjective) and fits[-1].teacher is not None
    np.testing.assert_allclose(fits[-1].teacher.teacher.numpy(), teacher)

    # the plain model of the same depth is another entry; the full model is never a student
    plain, _ = stages.complete_model(toy_task, config, 1, 0, distilled=False, progress=False)
    assert plain != folder
    # another teacher (other logits, in another folder): the student trains again, in another folder
    monkeypatch.setattr(stages, "teacher_logits",
                        lambda *a, **k: (np.zeros_like(teacher), teacher_folder.with_name("another-teacher")))

    class Stop(Exception):
        pass

    def record(build, objective, task, train, *, folder, **_):
        fits.append((objective, folder))
        raise Stop
    monkeypatch.setattr(stages, "fit", record)
    with pytest.raises(Stop):
        stages.complete_model(toy_task, config, 1, 0, progress=False)
    objective, other = fits[-1]
    assert len(fits) == 3 and other != folder and not np.allclose(objective.teacher.numpy(), teacher)


def test_distillation_loss_of_a_student_equal_to_its_teacher_is_its_cross_entropy_share():
    import torch

    from workbench.config import DistillConfig
    from workbench.methods.difficulty import DistilledObjective
    teacher = np.array([[1.0, -1.0], [0.5, 2.0]], dtype=np.float32)
    objective = DistilledObjective(teacher, DistillConfig(weight=0.5, temperature=2.0))
    logits, labels = torch.tensor(teacher[[1, 0]]), torch.tensor([1, 0])
    ce = torch.nn.functional.cross_entropy(logits, labels)
    torch.testing.assert_close(objective.loss(logits, labels, np.array([1, 0])), 0.5 * ce)
