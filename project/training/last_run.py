"""`--ckpt_path last`: find the newest resumable run under `trainer.default_root_dir` and continue its TensorBoard
run in place, dropping what the interrupted run logged after its checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.loggers import TensorBoardLogger

from project.core.errors import UserError

RUNS_NAME = "lightning_logs"  # Lightning's own name for the logger's folder under default_root_dir


def newest_resumable_run(root: Path) -> int | None:
    """Version number of the run under `root` whose last.ckpt was written most recently."""
    candidates = [
        path
        for path in (root / RUNS_NAME).glob("version_*/checkpoints/last.ckpt")
        if path.parent.parent.name.removeprefix("version_").isdigit()
    ]
    if not candidates:
        return None
    newest = max(candidates, key=lambda path: path.stat().st_mtime)
    return int(newest.parent.parent.name.removeprefix("version_"))


def run_to_resume(config) -> int:
    """The version `--ckpt_path last` resumes, from the parsed (not yet instantiated) config."""
    if config["trainer.logger"] not in (None, True) or config["checkpoint.dirpath"] is not None:
        raise UserError("--ckpt_path last finds runs of the default logger and checkpoint folder; pass a file path")
    root = Path(config["trainer.default_root_dir"])
    version = newest_resumable_run(root)
    if version is None:
        raise UserError(f"--ckpt_path last: no {root}/{RUNS_NAME}/version_*/checkpoints/last.ckpt to resume")
    return version


def resumed_logger(root: str, version: int) -> TensorBoardLogger:
    """The same TensorBoard run and checkpoint folder as the run being resumed; Lightning then finds last.ckpt.

    purge_step makes TensorBoard drop what the interrupted run logged after that checkpoint, so the curves have no
    duplicated steps.
    """
    last = Path(root) / RUNS_NAME / f"version_{version}" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
    # A checkpoint taken between micro-batches (SIGTERM) already logged part of its step: keep that step.
    step = checkpoint["global_step"] + ("gradients" in checkpoint.get("resume", {}))
    return TensorBoardLogger(root, name=RUNS_NAME, version=version, purge_step=step)
