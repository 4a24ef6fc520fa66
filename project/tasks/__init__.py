"""Task types (`model.task`); each module registers its Task in `TASKS`.

The task classes import torch; importing this package does not (they load on the first use of a name below), so
the torch-free ONNX predictor can use `project.tasks.decoding`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from project.tasks.base import (
        TASK_ARGUMENTS,
        TASKS,
        TEACHER_SCORES,
        LabelCodec,
        Task,
        build_task,
        register_task,
    )

__all__ = ["TASK_ARGUMENTS", "TASKS", "TEACHER_SCORES", "LabelCodec", "Task", "build_task", "register_task"]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module 'project.tasks' has no attribute '{name}'")
    from project.tasks import base, multi_label, regression, single_label  # noqa: F401 (they register the tasks)

    return getattr(base, name)
