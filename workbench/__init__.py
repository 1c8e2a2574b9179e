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
from workbench import names
import os

# Threads waiting for work sleep instead of spinning: with another job on the machine, spinning threads of
# torch's OpenMP runtime hold the cores the other job needs (benchmarks/contention.py). Set before torch
# loads; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from workbench.config import PRESETS, Preset, RunConfig, TaskOptions, TrainConfig, get_preset
from workbench.data.registry import list_tasks, load_task
from workbench.data.task import TaskData
from workbench.data.user import load_files
from workbench.measures.metrics import task_metric
from workbench.methods.points import OperatingPoint, Study
from workbench.models.complete import CompleteModel, ModelSpec
from workbench.models.training import train_complete_model
from workbench.runs.folder import Run, load_run, load_tables, open_run, summarize_runs
from workbench.runs.outputs import outputs_frame
from workbench.study import answers, figures, tables
from workbench.study.figures import write_figures
from workbench.study.reproduce import reproduce
from workbench.study.tables import summarize_depths

__all__ = ["PRESETS", "CompleteModel", "ModelSpec", "OperatingPoint", "Preset", "Run", "RunConfig", "Study", "TaskData",
           "TaskOptions", "TrainConfig", "answers", "figures", "get_preset", "list_tasks", "load_files", "load_run",
           "load_tables", "load_task", "names", "open_run", "outputs_frame", "reproduce", "summarize_depths",
           "summarize_runs", "tables", "task_metric", "train_complete_model", "write_figures"]
