"""One check of a run's whole configuration, before any work starts.

Every numeric option in its range, depths within the backbone, seeds and targets distinct, sources that
exclude each other, and paths of the right kind: the first problem stops the run with a `ConfigError` that
names the option as the command line spells it and the value at fault. Nothing is trained, downloaded or
written before this passes.
"""
from __future__ import annotations

import math
from pathlib import Path

from workbench.config import RunConfig, TrainConfig
from workbench.data.files import DataError

# command-line spelling of each training field (the ones without an option are set by presets)
_TRAIN_OPTIONS = {"epochs": "--epochs", "lr": "--lr", "batch_size": "--batch-size", "max_length": "--max-length",
                  "train_limit": "--train-limit", "eval_limit": "--eval-limit"}


class ConfigError(DataError):
    """An option is out of range, conflicts with another, or names a path of the wrong kind."""


def _fail(option: str, value, problem: str) -> None:
    raise ConfigError(f"{option} {value!r}: {problem}")


def _option(field: str) -> str:
    return _TRAIN_OPTIONS.get(field, f"training setting {field!r}")


def check_train(train: TrainConfig) -> None:
    """Every training setting in its range."""
    at_least_one = ("epochs", "batch_size", "evals_per_epoch", "eval_batch_size", "checkpoint_every")
    for field in at_least_one:
        value = getattr(train, field)
        if not isinstance(value, int) or value < 1:
            _fail(_option(field), value, "must be a whole number of at least 1")
    for field in ("train_limit", "eval_limit"):
        value = getattr(train, field)
        if value is not None and (not isinstance(value, int) or value < 1):
            _fail(_option(field), value, "must be at least 1 example (leave it out to use every example)")
    if not isinstance(train.max_length, int) or not 2 <= train.max_length <= 4096:
        _fail("--max-length", train.max_length, "must be between 2 and 4096 tokens (the special tokens take 2)")
    for field in ("lr", "head_lr", "max_grad_norm"):
        value = getattr(train, field)
        if value is not None and not (math.isfinite(value) and value > 0):
            _fail(_option(field), value, "must be a positive number")
    for field, high in (("warmup_ratio", 1.0), ("dropout", 1.0)):
        value = getattr(train, field)
        if not (math.isfinite(value) and 0 <= value < high):
            _fail(_option(field), value, f"must lie in [0, {high:g})")
    if not (math.isfinite(train.weight_decay) and train.weight_decay >= 0):
        _fail(_option("weight_decay"), train.weight_decay, "must be 0 or more")


def _distinct(option: str, values) -> None:
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        _fail(option, ",".join(str(v) for v in values), f"lists {seen[0]} twice")


def backbone_layers_of(option: str, backbone: str) -> int:
    """Layers of a backbone, or a ConfigError naming the option when its configuration cannot be loaded."""
    from workbench.models.backbones import backbone_layers
    try:
        return backbone_layers(backbone)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{option} {backbone!r}: cannot load its configuration ({first}); without a reachable "
                          "model hub, pass a packaged alias (minilm, mpnet, tiny-random-bert) or a local folder") \
            from None


def check_run(config: RunConfig, *, depth_option: str = "--depths") -> int:
    """Every option of a run, against each other and the backbones' depths; returns the backbone's layers.
    `depth_option` is how the command at hand spells the depths (`train` takes one `--depth`)."""
    check_train(config.train)
    check_sources(config)
    check_paths(config)
    full_layers = backbone_layers_of("--model", config.backbone)
    small_layers = backbone_layers_of("--small-model", config.small_backbone) if config.small_backbone else None
    if not config.depths:
        _fail(depth_option, "", "needs at least one depth")
    _distinct(depth_option, list(config.depths))
    for depth in config.depths:
        if not 1 <= depth <= full_layers:
            _fail(depth_option, depth, f"must lie between 1 and the {full_layers} layers of backbone {config.backbone!r}")
    if not config.seeds:
        _fail("--seeds", "", "needs at least one seed")
    _distinct("--seeds", list(config.seeds))
    if any(seed < 0 for seed in config.seeds):
        _fail("--seeds", min(config.seeds), "seeds must be 0 or more")
    if not config.targets:
        _fail("--targets", "", "needs at least one target speed-up")
    _distinct("--targets", list(config.targets))
    for target in config.targets:
        if not (math.isfinite(target) and 1 <= target <= full_layers * 8):
            _fail("--targets", target, f"a target speed-up must lie between 1 and {full_layers * 8} "
                                       f"(the backbone has {full_layers} layers)")
    if not (math.isfinite(config.sufficiency_target) and config.sufficiency_target >= 1):
        _fail("sufficiency_target", config.sufficiency_target, "must be a speed-up of at least 1")
    if config.study:
        try:
            config.all_cascades(full_layers, small_layers)
        except ValueError as err:
            raise ConfigError(f"--cascades: {err}") from None
    difficulty = config.difficulty
    if not (math.isfinite(difficulty.margin) and difficulty.margin >= 0):
        _fail("--da-margin", difficulty.margin, "must be 0 or more")
    if not (math.isfinite(difficulty.weight) and difficulty.weight >= 0):
        _fail("--da-weight", difficulty.weight, "must be 0 or more")
    return full_layers


def check_sources(config: RunConfig) -> None:
    """The user's files exclude the GLUE folder and the hub, and must not borrow a built-in task's name."""
    from workbench.data.registry import TASKS

    task = config.task
    if not task.user_files:
        return
    if task.glue_dir:
        _fail("--glue-dir", task.glue_dir, "cannot be combined with --train-file/--test-file: pass one source")
    if task.source == "hub":
        _fail("--source", "hub", "cannot be combined with --train-file/--test-file: pass one source")
    if task.name.lower() in TASKS:
        _fail("--task", task.name, "is a built-in task, so your files would be reported under its name; with "
                                   "--train-file give your task a name of its own, e.g. --task mydata")


def check_paths(config: RunConfig) -> None:
    """Folders that must be folders (or not exist yet), and a model folder that exists when one is named."""
    for option, value in (("--out", config.out), ("--cache-dir", config.cache_dir)):
        if value and Path(value).exists() and not Path(value).is_dir():
            _fail(option, value, "is a file; pass a folder (it is created when missing)")
    if config.small_backbone and config.small_backbone == config.backbone:
        _fail("--small-model", config.small_backbone, "is the same as --model; leave it out to use --model's truncated "
                                                      "copies as the small members")
    for option, value in (("--model", config.backbone), ("--small-model", config.small_backbone)):
        if value and looks_like_path(value) and not Path(value).is_dir():
            _fail(option, value, "looks like a local folder but there is no such folder; pass a backbone alias "
                                 "(minilm, mpnet, tiny-random-bert), a Hugging Face name, or an existing folder")


def looks_like_path(name: str) -> bool:
    """True for names written as paths (absolute, relative with ./ or ../, or ~), not hub ids like 'org/model'."""
    return name.startswith(("/", "./", "../", "~")) or Path(name).exists()
