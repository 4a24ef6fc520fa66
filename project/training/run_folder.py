"""A run's folder under `trainer.default_root_dir`: claimed atomically for a new run, found again for
`--ckpt_path last` (whose TensorBoard run continues in place, without what was logged after its checkpoint)."""

from __future__ import annotations

import os
from pathlib import Path

from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.loggers import TensorBoardLogger

from project.core.checkpoints import read_checkpoint
from project.core.errors import UserError
from project.training.resume import resumable_checkpoint

RUNS_NAME = "lightning_logs"  # Lightning's own name for the logger's folder under default_root_dir


def newest_resumable_run(root: Path) -> int | None:
    """Version number of the run under `root` whose last checkpoint (last.ckpt, or another one where a kill came
    before last.ckpt) was written most recently."""
    candidates = [
        path
        for path in (root / RUNS_NAME).glob("version_*/checkpoints/*.ckpt")
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
        raise UserError(f"--ckpt_path last: no {root}/{RUNS_NAME}/version_*/checkpoints/*.ckpt to resume")
    return version


def resumed_logger(root: str, version: int) -> TensorBoardLogger:
    """The same TensorBoard run and checkpoint folder as the run being resumed; Lightning then finds last.ckpt.

    purge_step makes TensorBoard drop what the interrupted run logged after that checkpoint, so the curves have no
    duplicated steps.
    """
    last = resumable_checkpoint(Path(root) / RUNS_NAME / f"version_{version}")
    checkpoint = read_checkpoint(last, "--ckpt_path last")
    # A checkpoint taken between micro-batches (SIGTERM) already logged part of its step: keep that step.
    step = checkpoint["global_step"] + ("gradients" in checkpoint.get("resume", {}))
    return TensorBoardLogger(root, name=RUNS_NAME, version=version, purge_step=step, default_hp_metric=False)


def claims_its_own_folder() -> bool:
    """Whether this process picks a new run's version: not in a SLURM job (Lightning names the run after the job
    id, which no other job shares), and only rank 0 of a distributed run (the launchers set one of these variables
    for every rank; Lightning hands rank 0's folder to the others)."""
    if SLURMEnvironment.job_id() is not None:
        return False
    for variable in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        if variable in os.environ:
            return int(os.environ[variable]) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0
    return True


def claim_new_run(root: str | Path) -> int:
    """The next free version number under `root`, claimed by creating its folder: `mkdir` either creates it or
    fails, so two runs started at the same moment (sweeps, array jobs) never share a folder."""
    runs = Path(root) / RUNS_NAME
    runs.mkdir(parents=True, exist_ok=True)
    taken = [int(path.name.removeprefix("version_")) for path in runs.glob("version_*")
             if path.name.removeprefix("version_").isdigit()]  # fmt: skip
    version = max(taken, default=-1) + 1
    while True:
        try:
            (runs / f"version_{version}").mkdir()
            return version
        except FileExistsError:
            version += 1
