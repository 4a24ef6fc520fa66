"""What an exact resume needs beyond Lightning's own checkpoint state, and the checkpoint that carries it.

Lightning restores weights, optimizer, schedule and loop counters. It does not restore the random number
generators (dropout masks after a resume would differ), it does not save a mid-epoch checkpoint while the monitored
validation metric does not exist yet, and a SIGTERM that lands between two micro-batches of an accumulated step
would lose the gradients summed so far. `ResumeCheckpoint` writes `last.ckpt` every 30 minutes (or n steps), after
every epoch and on SIGTERM, and carries the generators and those gradients; the data order is restored by the
DataModule (`TextDataModule.state_dict`), which skips the batches the checkpoint has already seen.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from project.core.checkpoints import read_checkpoint
from project.core.errors import ConfigError, UserError


def random_states() -> dict:
    """Every generator training draws from, as tensors and primitives (checkpoints load with weights_only=True)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.copy()), "position": position,
                  "has_gauss": has_gauss, "gauss": gauss},
    }  # fmt: skip
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = states["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy(), numpy["position"], numpy["has_gauss"], numpy["gauss"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def mid_accumulation(trainer) -> bool:
    """True between the micro-batches of one optimizer step (gradients are summed but not yet applied)."""
    done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    return done % trainer.accumulate_grad_batches != 0 and done < trainer.num_training_batches


class RunRelativeCheckpoint(ModelCheckpoint):
    """A ModelCheckpoint whose saved paths follow the run folder when it is moved or copied.

    Lightning records absolute paths; resumed from a moved run it forgets the best score but keeps the old
    `best_model_path`, so the final test reads the original run's file (or crashes if it is gone), and the resume
    callback writes `last-v1.ckpt` beside a stale `last.ckpt`. Paths that lie in the recorded folder are mapped
    into this run's folder when the files are there."""

    def load_state_dict(self, state_dict: dict) -> None:
        recorded, current = state_dict.get("dirpath"), self.dirpath
        if recorded and current and recorded != current:
            state_dict = relocated(state_dict, Path(recorded), Path(current))
            if state_dict.get("dirpath") != current:
                # Another run's checkpoint (a --ckpt_path into another folder): its best checkpoint is not this
                # run's, and may be gone. Lightning would keep its path, test it, or fail on it with a traceback.
                if state_dict.get("best_model_path"):
                    print(f"{type(self).__name__}: the resumed checkpoint comes from another run ({recorded}); "
                          "this run's best checkpoint is chosen among its own, not that run's")  # fmt: skip
                state_dict = {key: value for key, value in state_dict.items() if key != "kth_value"}
                state_dict |= {"dirpath": current, "best_model_path": "", "best_model_score": None,
                               "kth_best_model_path": "", "last_model_path": "", "best_k_models": {}}  # fmt: skip
        super().load_state_dict(state_dict)


def relocated(state: dict, old: Path, new: Path) -> dict:
    """`state` with each path under `old` moved under `new`, if every such file exists there; else unchanged."""

    def move(path):
        if not path or Path(path).parent != old:
            return path
        return str(new / Path(path).name)

    paths = [state.get("best_model_path"), state.get("kth_best_model_path"), state.get("last_model_path"),
             *state.get("best_k_models", {})]  # fmt: skip
    if not all(Path(move(path)).is_file() for path in paths if path and Path(path).parent == old):
        return state
    return {
        **state,
        "dirpath": str(new),
        "best_model_path": move(state.get("best_model_path")),
        "kth_best_model_path": move(state.get("kth_best_model_path")),
        "last_model_path": move(state.get("last_model_path")),
        "best_k_models": {move(path): score for path, score in state.get("best_k_models", {}).items()},
    }


class BestCheckpoint(RunRelativeCheckpoint):
    """Lightning's ModelCheckpoint (the `checkpoint.*` options), run-relative, whose metric and `mode` come from the
    task unless set: `auto` monitors the task's quality metric, and `--checkpoint.monitor val/acc` alone keeps the
    most accurate checkpoint, not (with Lightning's default min) the least accurate one."""

    def __init__(self, *args, monitor: str | None = "val/loss", mode: Literal["min", "max"] | None = None, **kwargs):
        """The other options are Lightning's ModelCheckpoint's.

        Args:
            monitor: a metric validation logs (val/loss, val/acc, val/f1...), or auto: the task's own quality
                metric (val/f1, macro, for single-label; val/f1_micro for multi-label; val/loss for regression);
                null keeps the latest checkpoint.
            mode: min or max; null: the task's own direction for `monitor` (min for val/loss and val/mse, max for
                val/acc, val/f1, val/auroc...).
        """
        super().__init__(*args, monitor=monitor, mode=mode or "min", **kwargs)
        self.mode_from_task = mode is None

    def resolve_auto(self, task) -> None:
        """`auto` becomes the task's own metric (always one validation logs), with its direction."""
        if self.monitor == "auto":
            self.monitor = f"val/{task.selection_metric}"
            self._follow(task.direction(self.monitor))

    def follow_task(self, task, require_logged_metric) -> None:
        """Before a fit trains: a metric named by the user must be one validation logs; the mode its direction."""
        self.resolve_auto(task)
        require_logged_metric(self.monitor, "checkpoint.monitor")
        self._follow(task.direction(self.monitor))

    def _follow(self, direction: Literal["min", "max"]) -> None:
        if self.mode_from_task and direction != self.mode:
            self.mode, self.kth_value = direction, torch.tensor(torch.inf if direction == "min" else -torch.inf)


class ResumeCheckpoint(RunRelativeCheckpoint):
    """`last.ckpt` every n minutes or steps, after every epoch (and its validation) and on SIGTERM, for
    `--ckpt_path last`."""

    def __init__(self, every_n_minutes: float | None = 30.0, every_n_train_steps: int | None = None):
        """every_n_minutes: minutes of training between two writes; a kill loses at most this much work, and each
        write costs seconds (weights + AdamW state: ~270 MB for the default model), so time beats a step count
        that suits either a fast GPU or this CPU but not both.
        every_n_train_steps: optimizer steps between two writes instead (set every_n_minutes to null).
        Either way last.ckpt is also written after each epoch and on SIGTERM."""
        if every_n_minutes is not None and every_n_train_steps is not None:
            raise ConfigError("set one of resume.every_n_minutes and resume.every_n_train_steps (the other to null)")
        super().__init__(
            monitor=None, save_top_k=0, save_last=True, every_n_train_steps=every_n_train_steps or 0,
            train_time_interval=timedelta(minutes=every_n_minutes) if every_n_minutes is not None else None,
        )  # fmt: skip
        self._restored: dict | None = None

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        # Lightning turns epoch-end saving off once a step interval is set; a resume point after each epoch's
        # validation is wanted as well (even if a step-interval save fell on the epoch's last batch).
        if not (trainer.sanity_checking or trainer.fast_dev_run):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        extra = {"random_states": random_states()}
        if mid_accumulation(trainer):
            extra["gradients"] = {name: p.grad for name, p in pl_module.named_parameters() if p.grad is not None}
        checkpoint["resume"] = extra

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self._restored = checkpoint.get("resume")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # Applied here, right before the first resumed batch: nothing Lightning does between loading the checkpoint
        # and this point (sanity checks, loader set-up) can draw from the generators or clear the gradients.
        if self._restored is None:
            return
        set_random_states(self._restored["random_states"])
        for name, p in pl_module.named_parameters():
            if name in self._restored.get("gradients", {}):
                p.grad = self._restored["gradients"][name].to(p.device)
        self._restored = None

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and self.dirpath:
            # Recorded first, so the checkpoint's callback state names it: the resumed run then overwrites
            # last.ckpt instead of writing last-v1.ckpt beside it.
            self.last_model_path = str(Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}")
            trainer.save_checkpoint(self.last_model_path)


def resumable_checkpoint(run_dir: Path) -> Path:
    """What `--ckpt_path last` resumes in `run_dir`: the newest whole checkpoint that holds a training state (by
    its step; last.ckpt on a tie, as it is written after the epoch's other checkpoints). A SIGKILL between an
    epoch's best checkpoint and its last.ckpt leaves the best one newer. `last.ckpt` when none is readable, so the
    error names the file the user expects."""
    folder = run_dir / "checkpoints"
    last = folder / "last.ckpt"
    newest, newest_key = last, None
    for path in sorted(folder.glob("*.ckpt")) if folder.is_dir() else ():
        try:
            stored = read_checkpoint(path, "--ckpt_path last")
        except UserError:
            if path == last:  # a damaged last.ckpt is said in one line, never skipped silently
                return last
            continue  # a damaged other file is no resume point
        if "loops" not in stored or "optimizer_states" not in stored:  # weights only: nothing to resume
            continue
        key = (stored.get("global_step", -1), path.name == last.name)
        if newest_key is None or key > newest_key:
            newest, newest_key = path, key
    return newest


def check_resumed_plan(planned: int | None, resumed: int | None) -> None:
    """A schedule's step function is rebuilt from the config, but its step counter comes from the checkpoint: a
    resumed run with a different length would silently jump to another curve. Refuse a change of plan."""
    if planned is not None and resumed is not None and planned != resumed:
        raise ConfigError(
            f"the checkpoint's schedule spans {resumed} optimizer steps but this config gives {planned}: resume "
            "with the original trainer.max_epochs/max_steps, accumulate_grad_batches, data.batch_size and devices"
        )


def check_same_labels(checkpoint: dict, label_names: list[str] | None) -> None:
    """A checkpoint trained on other classes would map a label id to another class: refuse it."""
    trained_on = checkpoint.get("hyper_parameters", {}).get("label_names")
    if trained_on and label_names and list(trained_on) != list(label_names):
        raise ConfigError(
            f"the checkpoint was trained on labels {list(trained_on)} but the data gives {list(label_names)}: a "
            "label id would mean another class"
        )
