"""The jobs a training command runs once its CLI has built the trainer, model and data: train (resuming if asked,
saving a resumable state on SIGTERM), then test the best checkpoint and write the run's files."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

from project.core.atomic import write_text
from project.core.checkpoints import DECISIONS_KEY, read_checkpoint, state_dict_mismatch, store_in_checkpoint
from project.core.errors import DataError, TrainingStopped, UserError, storage_problem
from project.data.identity import IDENTITY_FILE, IDENTITY_KEY, data_identity, identity_differences
from project.evaluation.baseline import baseline_metrics
from project.evaluation.data_report import DataReport
from project.evaluation.hparams import log_comparison
from project.evaluation.report import CollectOutputs, write_report
from project.training.efficiency import EfficiencyCard
from project.training.interrupt import SaveOnCtrlC
from project.training.resume import BestCheckpoint, check_same_labels, resumable_checkpoint


def train(cli, check: Callable[[], None] | None = None, callbacks: Sequence[Callback] = ()) -> None:
    """`trainer.fit` on the CLI's model and data. Bad data or options (and the job's own `check`) fail before
    anything is trained; a new run's folder (claimed when the trainer was built) is then removed, so a failed start
    leaves nothing behind."""
    trainer = cli.trainer
    run_dir = Path(trainer.log_dir)
    fresh = cli.claimed_version is not None or not run_dir.exists()
    ctrl_c = SaveOnCtrlC()
    added = [ctrl_c, *callbacks]
    own = list(trainer.callbacks)  # the Trainer's callbacks, before fit adds the job's and the model's
    try:
        if check is not None:
            check()
        cli.datamodule.setup("fit")  # read and validate the data before anything is written
        checkpoint = trainer.checkpoint_callback
        if checkpoint is not None and checkpoint.monitor and hasattr(cli.model, "require_logged_metric"):
            if isinstance(checkpoint, BestCheckpoint):
                checkpoint.follow_task(cli.model.task, cli.model.require_logged_metric)
            else:  # a ModelCheckpoint of the user's own
                cli.model.require_logged_metric(checkpoint.monitor, "checkpoint.monitor")
        labels = getattr(cli.model.hparams, "label_names", None)
        labels_file = run_dir / "labels.json"
        if labels and labels_file.exists() and json.loads(labels_file.read_text()) != {"label_names": list(labels)}:
            raise UserError(f"{labels_file} holds other labels than the data's {list(labels)}; nothing changed")
        identity = data_identity(cli.datamodule.hparams) if hasattr(cli.datamodule, "splits") else None
        check_resume_checkpoint(cli.config.get("ckpt_path"), run_dir, cli.model, identity)
        if labels:
            write_json(labels_file, {"label_names": list(labels)})
        if identity is not None:
            write_json(run_dir / IDENTITY_FILE, identity)
            added.append(RecordDataIdentity(identity))
        remove_orphaned_partials(run_dir / "checkpoints")
        trainer.callbacks.extend(added)
        trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=resume_from(cli.config.get("ckpt_path"), run_dir))
    except UserError:
        if fresh:
            remove_run(run_dir, root_too=cli.created_root)
        raise
    except OSError as error:
        # The checkpoints on disk are whole (AtomicCheckpointIO), so the run can go on from its last.ckpt.
        resume = f"resume with: python -m {cli.COMMAND} <the same options> --ckpt_path last"
        problem = storage_problem(error, resume)
        if problem is None or not (run_dir / "checkpoints" / "last.ckpt").is_file():
            raise
        raise TrainingStopped(problem) from None
    except SIGTERMException:
        signal = "Ctrl-C (SIGINT)" if ctrl_c.received else "SIGTERM"
        raise TrainingStopped(
            f"{signal} at optimizer step {trainer.global_step}: {run_dir}/checkpoints/last.ckpt holds the state; "
            f"resume with: python -m {cli.COMMAND} <the same options> --ckpt_path last"
        ) from None
    finally:
        # Lightning attaches the model's configure_callbacks anew at every entry point: left from the fit, the
        # test's would replace them with a "will override existing callbacks" line. The job's go too.
        trainer.callbacks = [callback for callback in trainer.callbacks if callback in own]


class RecordDataIdentity(Callback):
    """Every checkpoint of the run carries the identity of the data it was trained on (`data_identity`)."""

    def __init__(self, identity: dict):
        self.identity = identity

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[IDENTITY_KEY] = self.identity


def check_resume_checkpoint(ckpt_path: str | None, run_dir: Path, model, identity: dict | None = None) -> None:
    """A `--ckpt_path` that is missing, broken, holds weights of another model or was trained on other data (its
    recorded `identity`; checkpoints from before it was recorded are not compared) fails in one line before
    anything is written (Lightning would fail with a traceback after creating the run folder)."""
    if not ckpt_path:
        return
    path = resumable_checkpoint(run_dir) if ckpt_path == "last" else Path(ckpt_path)
    option = "--ckpt_path last" if ckpt_path == "last" else "--ckpt_path"
    stored = read_checkpoint(path, option)
    check_same_labels(stored, getattr(model.hparams, "label_names", None))
    differences = identity_differences(stored[IDENTITY_KEY], identity) if IDENTITY_KEY in stored and identity else []
    if differences:
        raise UserError(f"{option} {path} was trained on other data: {'; '.join(differences)}; resume on the data "
                        "and options it was trained on, or start a new run without --ckpt_path (nothing was "
                        "changed)")  # fmt: skip
    problem = state_dict_mismatch(stored["state_dict"], model.state_dict())
    if problem:
        raise UserError(
            f"{option} {path}: its weights do not fit this model ({problem}); resume with the pooler, head and "
            "encoder options it was trained with"
        )


def remove_orphaned_partials(folder: Path) -> None:
    """The temporary files of checkpoint writes whose process died mid-write (a SIGKILL): `.<name>.partial-<pid>`
    with no such process any more. A live pid's may be a run writing beside this one; it is left alone."""
    for partial in folder.glob(".*.partial-*") if folder.is_dir() else ():
        pid = partial.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not process_alive(int(pid)):
            partial.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def resume_from(ckpt_path: str | None, run_dir: Path) -> str | None:
    """The file `--ckpt_path` names: for `last`, the run's newest resumable checkpoint (said in one line when it
    is not last.ckpt: a kill came between an epoch's best checkpoint and its last.ckpt)."""
    if ckpt_path != "last":
        return ckpt_path
    path = resumable_checkpoint(run_dir)
    if path.name != "last.ckpt":
        print(f"--ckpt_path last: resuming from {path}, the run's newest whole checkpoint (it was stopped before "
              "writing last.ckpt)")  # fmt: skip
    return str(path)


def best_checkpoint(trainer) -> str:
    """The best checkpoint's path by the monitored metric; "" if none was written (nothing validated)."""
    return trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""


def fit_and_test(cli, test: bool = True, callbacks: Sequence[Callback] = ()) -> dict[str, float]:
    """Train (with `callbacks` beside the job's own), then (if `test`) test the best checkpoint, write
    test_metrics.json and the evaluation report to the run, and log the run's hyper-parameters with its metrics for
    TensorBoard's HParams tab; every fit writes its efficiency card (`training/efficiency.py`). Returns the test
    metrics, or the best epoch's validation metrics when untested."""
    trainer, data = cli.trainer, cli.datamodule
    checkpoint = trainer.checkpoint_callback
    outputs = CollectOutputs(checkpoint)
    train(cli, callbacks=[DataReport(), outputs, EfficiencyCard(), *callbacks])
    if trainer.interrupted:
        return dict(outputs.best_metrics)
    # `trainer.limit_test_batches: 0` asks for no test batches: Lightning then tests nothing and returns no results.
    if not test or not trainer.limit_test_batches or "test" not in getattr(data, "datasets", {}):
        fit_decisions(trainer, cli.model, data, outputs, best_checkpoint(trainer))
        log_comparison(trainer, cli.model, data, outputs.best_metrics)
        return dict(outputs.best_metrics)
    best = best_checkpoint(trainer)
    trainer.callbacks.append(outputs)
    try:
        results = trainer.test(cli.model, datamodule=data, ckpt_path=best or None)
    finally:
        trainer.callbacks.remove(outputs)
    metrics = {key: float(value) for key, value in results[0].items()}
    decisions = fit_decisions(trainer, cli.model, data, outputs, best)
    if cli.config.get("baseline") and trainer.is_global_zero:
        try:  # it reads the texts again: a file edited during a long run must not cost the run its metrics
            metrics.update(baseline_metrics(data.splits, data.datasets, cli.model.task))
        except DataError as error:
            print(f"TF-IDF baseline skipped: {error}")
    # Every process asks: in a distributed run log_dir is a broadcast from rank 0, which the others must join.
    metrics_path = Path(trainer.log_dir) / "test_metrics.json"
    write_json(metrics_path, {**metrics, "checkpoint": best or None, **({"decisions": decisions} if decisions else {})})
    log_comparison(trainer, cli.model, data, {**outputs.best_metrics, **metrics})
    if trainer.is_global_zero:
        summary = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items() if key.startswith("test/"))
        print(f"test ({'best checkpoint' if best else 'final weights'}): {summary}")
        baseline = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items() if key.startswith("baseline/test/"))
        if baseline:
            fitted_on = int(metrics["baseline/train_rows"])
            sampled = fitted_on < len(data.splits["train"])
            sample = f" (fitted on {fitted_on:,} sampled training rows)" if sampled else ""
            print(f"TF-IDF baseline on the same splits{sample}: {baseline}")
        test_summary = report_evaluation(trainer, cli.model, data, outputs, metrics_path.parent)
        if decisions and test_summary:  # the test split's raw and calibrated numbers, to compare them
            decided = {f"test/{key}": value for key, value in test_summary.items() if key.startswith(DECIDED_PREFIXES)}
            write_json(metrics_path, {**metrics, "checkpoint": best or None, "decisions": decisions, **decided})
        print(f"run directory: {metrics_path.parent}  (metrics in {metrics_path.name})")
        print(f"curves: tensorboard --logdir {shlex.quote(str(metrics_path.parent))}")
    return metrics


# The test numbers of the fitted decisions that test_metrics.json repeats from the report (raw and calibrated).
DECIDED_PREFIXES = ("ece", "nll", "brier", "calibrated_", "decided_", "coverage", "covered_")


def unusable_outputs(trainer, data, outputs: CollectOutputs, stage: str) -> str | None:
    """Why the collected outputs of `stage` cannot stand for the whole split under the best checkpoint's weights,
    or None where they can."""
    if stage not in outputs.outputs:
        return f"no {stage} outputs were collected"
    targets = outputs.outputs[stage][1]
    if len(targets) != len(data.splits[stage]):
        return f"the {stage} loop saw {len(targets)} of {len(data.splits[stage])} rows"
    best_score = getattr(trainer.checkpoint_callback, "best_model_score", None)
    if stage == "val" and best_score is not None and outputs.best_value is not None:
        if abs(float(best_score) - outputs.best_value) > 1e-6:  # a resumed run's best epoch came before it
            return "the best epoch was before this run resumed"
    return None


def fit_decisions(trainer, model, data, outputs: CollectOutputs, best: str) -> dict | None:
    """Fit the task's calibration and decisions (`Task.fit_decisions`) on the validation split's scores at the best
    epoch (the test split is never seen), keep them on the model and store them in the best checkpoint, where
    predict, export and serve read them. None (one line says why) where nothing could be fitted."""
    if trainer.world_size > 1:
        if trainer.is_global_zero:
            print("decisions: not fitted in a distributed run (each process saw a share of the validation rows)")
        return None
    reason = unusable_outputs(trainer, data, outputs, "val")
    if reason is not None:
        print(f"decisions: not fitted ({reason}); predictions use the raw scores")
        return None
    fitted = model.task.fit_decisions(*outputs.outputs["val"])
    if not fitted:
        return None
    model.task.decisions = fitted
    if best:
        store_in_checkpoint(best, DECISIONS_KEY, fitted)
    shown = ", ".join(f"{key} {value:.4g}" for key, value in fitted.items() if isinstance(value, float))
    print(f"decisions fitted on the {fitted['rows']} validation rows{': ' + shown if shown else ''}")
    return fitted


def report_evaluation(trainer, model, data, outputs: CollectOutputs, run_dir: Path) -> dict | None:
    """The evaluation report of the test split and of the validation split at the best epoch, each only where its
    collected outputs cover the whole split from the best checkpoint's weights (one line says why not). Returns
    the test report's summary (None where it was not written)."""
    if trainer.world_size > 1:
        print("evaluation report: not written in a distributed run (each process saw a share of the rows)")
        return None
    written, test_summary = [], None
    for stage in ("val", "test"):
        if stage not in outputs.outputs:
            continue
        reason = unusable_outputs(trainer, data, outputs, stage)
        if reason is not None:
            print(f"{stage} report: skipped, {reason}")
            continue
        evaluation = model.task.evaluate(*outputs.outputs[stage])
        if stage == "test":
            test_summary = evaluation.summary
        written += write_report(run_dir, stage, evaluation, data.splits[stage], trainer.logger, trainer.global_step)
    experiment = getattr(trainer.logger, "experiment", None)
    if hasattr(experiment, "flush"):  # the images are in the event file before the command returns
        experiment.flush()
    if written:
        main = [path.name for path in written if path.name in ("test_report.md", "test_errors.csv")]
        shown = ", ".join(main) if main else written[0].name
        print(f"evaluation report: {shown} and {len(written) - len(main or [1])} more files in {run_dir}")
    return test_summary


@rank_zero_only
def remove_run(run_dir: Path, root_too: bool = False) -> None:
    """Remove a run's folder, the logger's folder if this run was all it held, and (`root_too`, when the run
    created it) an emptied trainer.default_root_dir."""
    shutil.rmtree(run_dir, ignore_errors=True)
    for folder in (run_dir.parent, run_dir.parent.parent) if root_too else (run_dir.parent,):
        with contextlib.suppress(OSError):  # not empty: other runs live there
            folder.rmdir()


@rank_zero_only
def write_json(path: Path, content: dict) -> None:
    write_text(path, json.dumps(content, indent=2) + "\n")
