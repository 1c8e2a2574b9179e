import numpy as np
import pytest
import torch

import workbench.models.training as training
from workbench.config import TrainConfig
from workbench.data.task import limit_rows
from workbench.models.complete import CompleteModel, ModelSpec
from workbench.models.training import lr_factor, model_folder, train_complete_model

CONFIG = TrainConfig(epochs=4, lr=3e-3, batch_size=16, max_length=32, checkpoint_every=5)
SPEC = ModelSpec(backbone="tiny-random-bert", depth=2, num_labels=2)


def _logits(folder, task):
    from workbench.data.batching import encode
    from workbench.models.backbones import load_tokenizer
    model = CompleteModel.from_pretrained(folder / "best")
    return training.predict_logits(model, encode(load_tokenizer("tiny-random-bert"), task.splits["test"], 32))


def test_lr_schedule():
    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10) == pytest.approx(0.5)
    assert lr_factor(100, 100, 10) == 0.0
    assert lr_factor(0, 10, 0) == 1.0


def test_training_learns_and_is_deterministic(tmp_path, toy_task):
    a = train_complete_model(SPEC, toy_task, CONFIG, seed=0, folder=tmp_path / "a", progress=False)
    train_complete_model(SPEC, toy_task, CONFIG, seed=0, folder=tmp_path / "b", progress=False)
    assert a.best_tune_metric > 70, a.history
    np.testing.assert_array_equal(_logits(tmp_path / "a", toy_task), _logits(tmp_path / "b", toy_task))
    assert len(a.history) == CONFIG.epochs
    again = train_complete_model(SPEC, toy_task, CONFIG, seed=0, folder=tmp_path / "a", progress=False)
    assert again.cached and again.best_tune_metric == a.best_tune_metric


def test_different_seed_gives_different_model(tmp_path, toy_task):
    train_complete_model(SPEC, toy_task, CONFIG, seed=0, folder=tmp_path / "a", progress=False)
    train_complete_model(SPEC, toy_task, CONFIG, seed=1, folder=tmp_path / "b", progress=False)
    assert not np.array_equal(_logits(tmp_path / "a", toy_task), _logits(tmp_path / "b", toy_task))


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, toy_task, monkeypatch):
    train_complete_model(SPEC, toy_task, CONFIG, seed=0, folder=tmp_path / "whole", progress=False)
    calls = {"n": 0}
    real_clip = torch.nn.utils.clip_grad_norm_

    def interrupt_at_step_13(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 13:
            raise KeyboardInterrupt
        return real_clip(*args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", interrupt_at_step_13)
    with pytest.raises(KeyboardInterrupt):
        train_complete_model(SPEC, toy_task, CONFIG, seed=0, folder=tmp_path / "resumed", progress=False)
    assert (tmp_path / "resumed" / "state" / "progress.json").is_file()
    assert not (tmp_path / "resumed" / "done.json").exists()
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", real_clip)
    train_complete_model(SPEC, toy_task, CONFIG, seed=0, folder=tmp_path / "resumed", progress=False)
    np.testing.assert_array_equal(_logits(tmp_path / "whole", toy_task), _logits(tmp_path / "resumed", toy_task))


def test_cache_folder_changes_with_config_seed_and_data(tmp_path, toy_task, toy_files):
    from workbench.data.user import load_files
    base = model_folder(tmp_path, SPEC, CONFIG, 0, toy_task)
    assert base == model_folder(tmp_path, SPEC, CONFIG, 0, toy_task)
    assert base != model_folder(tmp_path, SPEC, TrainConfig(epochs=5), 0, toy_task)
    assert base != model_folder(tmp_path, SPEC, CONFIG, 1, toy_task)
    assert base != model_folder(tmp_path, ModelSpec(backbone="tiny-random-bert", depth=3), CONFIG, 0, toy_task)
    text = open(toy_files["train"]).read().replace("good", "nice", 1)
    open(toy_files["train"], "w").write(text)
    changed = load_files(train=toy_files["train"], test=toy_files["test"], text_col="text", label_col="label",
                         name="toy")
    assert base != model_folder(tmp_path, SPEC, CONFIG, 0, changed)


def test_limit_rows_is_a_seeded_subset(toy_task):
    train = toy_task.splits["train"]
    sub = limit_rows(train, 50)
    assert len(sub) == 50 and sub["example_id"].is_unique
    assert sub["example_id"].tolist() == limit_rows(train, 50)["example_id"].tolist()
    assert limit_rows(train, None) is train


def test_heads_get_their_own_learning_rate():
    from dataclasses import replace

    from workbench.models.multiexit import MultiExitModel, MultiExitSpec
    from workbench.models.training import _optimizer
    model = CompleteModel.build(SPEC)
    groups = _optimizer(model, replace(CONFIG, lr=1e-5, head_lr=1e-3)).param_groups
    by_lr = {}
    for g in groups:
        by_lr[g["base_lr"]] = by_lr.get(g["base_lr"], 0) + sum(p.numel() for p in g["params"])
    head = sum(p.numel() for p in model.head.parameters())
    assert by_lr == {1e-5: sum(p.numel() for p in model.encoder.parameters()), 1e-3: head}
    assert {g["base_lr"] for g in _optimizer(model, CONFIG).param_groups} == {CONFIG.lr}
    pabee = MultiExitModel.build_pabee(MultiExitSpec(kind="pabee", backbone="tiny-random-bert", num_layers=2))
    shared = [g for g in _optimizer(pabee, replace(CONFIG, head_lr=1e-3)).param_groups if g["base_lr"] == 1e-3]
    assert sum(p.numel() for g in shared for p in g["params"]) == sum(p.numel() for p in pabee.heads.parameters())
