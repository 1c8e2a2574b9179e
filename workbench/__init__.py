"""CascadeBERT workbench: why dynamic early exit fails at high speed-ups, and cascades of complete models.

The folders group the system by floor, from the data up to the interfaces:

- `data/`      tasks and their sources (rt, GLUE, user files), reading files, batching;
- `models/`    backbones, complete and multi-exit models, training;
- `methods/`   exit policies, cascades, difficulty, operating points, executors (pure over stored outputs);
- `measures/`  metrics, cost, calibration, analysis;
- `runs/`      the outputs store and run folders;
- `study/`     the main job: stages, tables, figures, answers;
- `ui/`        the command line and the explorer;

plus three shared modules: `config` (every configuration), `names` (the vocabulary) and `store` (atomic
writes and hashes). Below are the names a notebook needs; everything else is importable from its module.
"""
import os

# Threads waiting for work sleep instead of spinning: with another job on the machine, spinning threads of
# torch's OpenMP runtime hold the cores the other job needs (benchmarks/contention.py). Set before torch
# loads; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import importlib

# name -> (module, attribute or None for the module itself). Imported on first use, so that `import workbench`
# and `python -m workbench --help` stay light (torch, transformers and matplotlib load only when needed).
_EXPORTS = {
    "PRESETS": ("workbench.config", "PRESETS"), "Preset": ("workbench.config", "Preset"),
    "RunConfig": ("workbench.config", "RunConfig"), "TaskOptions": ("workbench.config", "TaskOptions"),
    "TrainConfig": ("workbench.config", "TrainConfig"), "get_preset": ("workbench.config", "get_preset"),
    "list_tasks": ("workbench.data.registry", "list_tasks"), "load_task": ("workbench.data.registry", "load_task"),
    "TaskData": ("workbench.data.task", "TaskData"), "load_files": ("workbench.data.user", "load_files"),
    "task_metric": ("workbench.measures.metrics", "task_metric"),
    "OperatingPoint": ("workbench.methods.points", "OperatingPoint"), "Study": ("workbench.methods.points", "Study"),
    "CompleteModel": ("workbench.models.complete", "CompleteModel"),
    "ModelSpec": ("workbench.models.complete", "ModelSpec"),
    "train_complete_model": ("workbench.models.training", "train_complete_model"),
    "Run": ("workbench.runs.folder", "Run"), "load_run": ("workbench.runs.folder", "load_run"),
    "load_tables": ("workbench.runs.folder", "load_tables"), "open_run": ("workbench.runs.folder", "open_run"),
    "summarize_runs": ("workbench.runs.folder", "summarize_runs"),
    "outputs_frame": ("workbench.runs.outputs", "outputs_frame"),
    "write_figures": ("workbench.study.figures", "write_figures"),
    "reproduce": ("workbench.study.reproduce", "reproduce"),
    "load_method": ("workbench.study.classify", "load_method"),
    "summarize_depths": ("workbench.study.tables", "summarize_depths"),
    "names": ("workbench.names", None), "answers": ("workbench.study.answers", None),
    "figures": ("workbench.study.figures", None), "tables": ("workbench.study.tables", None),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = importlib.import_module(module)
    value = getattr(value, attribute) if attribute else value
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
