"""CascadeBERT workbench: why dynamic early exit fails at high speed-ups, and cascades of complete models.

The dozen names a notebook needs; everything else is importable from its module
(data, tasks, models, batching, training, earlyexit, difficulty, outputs, exits, cascade, executor,
cost, calibration, analysis, report, plots, pipeline, study, store, cli).
"""
from .config import PRESETS, Preset, TrainConfig, get_preset
from .metrics import task_metric
from .models import CompleteModel, ModelSpec
from .outputs import outputs_frame
from .pipeline import RunConfig, TaskOptions
from .study import load_run, load_tables, open_run, reproduce, summarize_depths, write_figures
from .tasks import TaskData, list_tasks, load_files, load_task
from .training import train_complete_model

__all__ = ["PRESETS", "Preset", "TrainConfig", "get_preset", "task_metric", "CompleteModel", "ModelSpec",
           "outputs_frame", "RunConfig", "TaskOptions", "load_run", "load_tables", "open_run", "reproduce", "summarize_depths",
           "write_figures", "TaskData",
           "list_tasks", "load_files", "load_task", "train_complete_model"]
