"""Task types (`model.task`); each module registers its Task in `TASKS`."""

from project.tasks import multi_label, regression, single_label  # noqa: F401
from project.tasks.base import TASK_ARGUMENTS, TASKS, LabelCodec, Task, build_task, register_task

__all__ = ["TASK_ARGUMENTS", "TASKS", "LabelCodec", "Task", "build_task", "register_task"]
