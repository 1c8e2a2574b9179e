"""Tasks and their examples: the registry, one module per source (rt, GLUE, user files), reading files, batching."""
from workbench.data.files import DataError
from workbench.data.registry import TASKS, list_tasks, load_task, load_task_options, prepare_task
from workbench.data.task import TaskData, TaskSpec
from workbench.data.user import load_files

__all__ = ["DataError", "TASKS", "TaskData", "TaskSpec", "list_tasks", "load_files", "load_task", "load_task_options",
           "prepare_task"]
