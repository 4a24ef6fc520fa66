"""Exact resume: killed (SIGKILL) or pre-empted (SIGTERM) runs, resumed with `--ckpt_path last`, end where the
uninterrupted run ends: same weights (fp32, atol 1e-6), same sample order, same LR schedule, one TensorBoard curve."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from project.evaluation.curves import read_scalars
from tests.test_fit_end_to_end import fit, tiny_args

pytestmark = pytest.mark.slow
# 48 training rows, batch 8: 6 batches an epoch; accumulation 2: 3 optimizer steps an epoch, 9 over 3 epochs.
# last.ckpt every optimizer step (the SIGTERM test: only at epoch ends); shuffling is always on for training.
OPTIONS = [
    "--trainer.max_epochs", "3", "--trainer.accumulate_grad_batches", "2", "--trainer.precision", "32-true",
    "--resume.every_n_minutes", "null", "--resume.every_n_train_steps", "1", "--model.learning_rate", "1e-3",
]  # fmt: skip


def run(root: Path, encoder: str, *extra: str, callbacks: list[dict] = ()) -> "tuple[int, str]":
    recorder = {"class_path": "tests.helpers.RecordSamples", "init_args": {"path": str(root / "samples.txt")}}
    args = [*tiny_args(root, encoder), *OPTIONS, "--trainer.callbacks", json.dumps([recorder, *callbacks]), *extra]
    result = fit(*args)
    return result.returncode, result.stderr


def samples(root: Path) -> list[tuple[int, int, str]]:
    lines = (root / "samples.txt").read_text().splitlines()
    return [(int(epoch), int(batch), prints) for epoch, batch, prints in (line.split(" ", 2) for line in lines)]


def final_weights(root: Path) -> dict[str, torch.Tensor]:
    checkpoint = root / "runs" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    return torch.load(checkpoint, weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_encoder) -> Path:
    root = tmp_path_factory.mktemp("uninterrupted")
    code, stderr = run(root, tiny_encoder)
    assert code == 0, stderr[-3000:]
    return root


def assert_same_as_uninterrupted(root: Path, reference: Path, before: list) -> None:
    resumed = samples(root)[len(before) :]
    # The interrupted process may have trained past its last checkpoint; those batches are trained again.
    kept = [line for line in before if line[:2] < resumed[0][:2]]
    assert kept + resumed == samples(reference)
    runs = sorted((root / "runs" / "lightning_logs").iterdir())
    assert [run.name for run in runs] == ["version_0"]  # appended to the killed run, no new run
    assert (runs[0] / "config.yaml").exists() and list(runs[0].glob("config-resumed-*.yaml"))
    checkpoints = runs[0] / "checkpoints"
    assert [path.name for path in checkpoints.glob("last*.ckpt")] == ["last.ckpt"]  # overwritten, not versioned
    expected = final_weights(reference)
    for name, value in final_weights(root).items():
        torch.testing.assert_close(value, expected[name], atol=1e-6, rtol=0, msg=name)
    scalars, reference_scalars = (
        read_scalars(root / "runs" / "lightning_logs" / "version_0"),
        read_scalars(reference / "runs" / "lightning_logs" / "version_0"),
    )
    for tag in ("train/loss", "lr-AdamW/encoder", "val/acc"):
        steps, values = zip(*scalars[tag], strict=True)
        reference_steps, reference_values = zip(*reference_scalars[tag], strict=True)
        assert steps == reference_steps  # no step twice, none missing (train/loss: one point per micro-batch)
        assert values == pytest.approx(reference_values, abs=1e-6)
    assert sorted({step for step, _ in scalars["lr-AdamW/encoder"]}) == list(range(9))  # every optimizer step


@pytest.mark.parametrize(
    ("epoch", "batch"),
    [(1, 2), (1, 3), (1, 0)],
    ids=["between-micro-batches", "right-after-a-step", "epoch-boundary"],  # the last checkpoint: step 4, 4, 3
)
def test_sigkill_then_resume_matches_the_uninterrupted_run(tmp_path, tiny_encoder, uninterrupted, epoch, batch):
    killer = {"class_path": "tests.helpers.SignalAtBatch", "init_args": {"epoch": epoch, "batch": batch}}
    code, _ = run(tmp_path, tiny_encoder, callbacks=[killer])
    assert code == -9
    before = samples(tmp_path)
    code, stderr = run(tmp_path, tiny_encoder, "--ckpt_path", "last")
    assert code == 0, stderr[-3000:]
    assert "not resumable" not in stderr  # Lightning's warning is wrong here: the sampler resumes (below)
    assert_same_as_uninterrupted(tmp_path, uninterrupted, before)


@pytest.mark.parametrize("signal_name, said", [("TERM", "SIGTERM"), ("INT", "Ctrl-C (SIGINT)")])
def test_sigterm_or_ctrl_c_writes_a_resumable_checkpoint_mid_accumulation_and_exits_non_zero(
    tmp_path, tiny_encoder, uninterrupted, signal_name, said
):
    # Batch 2 of epoch 1 is the first micro-batch of a step: the checkpoint must carry its gradient.
    terminator = {
        "class_path": "tests.helpers.SignalAtBatch",
        "init_args": {"epoch": 1, "batch": 2, "signal_name": signal_name},
    }
    code, stderr = run(tmp_path, tiny_encoder, "--resume.every_n_train_steps", "null", callbacks=[terminator])
    assert code == 2
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"{said} at optimizer step 4" in errors[0], errors
    assert "python -m project.fit <the same options> --ckpt_path last" in errors[0]
    last = tmp_path / "runs" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["resume"]["gradients"]
    before = samples(tmp_path)
    code, stderr = run(tmp_path, tiny_encoder, "--ckpt_path", "last", "--resume.every_n_train_steps", "null")
    assert code == 0, stderr[-3000:]
    assert_same_as_uninterrupted(tmp_path, uninterrupted, before)


@pytest.mark.parametrize("how", ["moved", "copied"])
def test_a_moved_or_copied_run_resumes_inside_itself(tmp_path, tiny_encoder, how):
    import shutil

    original, elsewhere = tmp_path / "original", tmp_path / "elsewhere"
    original.mkdir()
    terminator = {
        "class_path": "tests.helpers.SignalAtBatch",
        "init_args": {"epoch": 1, "batch": 2, "signal_name": "TERM"},
    }
    assert run(original, tiny_encoder, callbacks=[terminator])[0] == 2
    (shutil.move if how == "moved" else shutil.copytree)(original, elsewhere)
    before = {path: path.read_bytes() for path in original.rglob("*") if path.is_file()}
    code, stderr = run(elsewhere, tiny_encoder, "--ckpt_path", "last")
    assert code == 0, stderr[-3000:]
    assert "The dirpath has changed" not in stderr
    run_dir = elsewhere / "runs" / "lightning_logs" / "version_0"
    recorded = json.loads((run_dir / "test_metrics.json").read_text())["checkpoint"]
    assert Path(recorded).parent == run_dir / "checkpoints" and Path(recorded).is_file()
    assert sorted(path.name for path in (run_dir / "checkpoints").glob("last*")) == ["last.ckpt"]
    assert {path: path.read_bytes() for path in original.rglob("*") if path.is_file()} == before


def test_a_kill_between_the_best_checkpoint_and_last_ckpt_resumes_from_the_newest_whole_one(
    tmp_path, tiny_encoder, uninterrupted
):
    # last.ckpt only at epoch ends: the kill after epoch 0's validation leaves best-epoch0-step3.ckpt and no last.ckpt.
    killer = {"class_path": "tests.helpers.KillBeforeLastCheckpoint", "init_args": {"epoch": 0}}
    code, _ = run(tmp_path, tiny_encoder, "--resume.every_n_train_steps", "null", callbacks=[killer])
    assert code == -9
    checkpoints = tmp_path / "runs" / "lightning_logs" / "version_0" / "checkpoints"
    assert [path.name for path in checkpoints.iterdir()] == ["best-epoch0-step3.ckpt"]
    # A write a SIGKILL cut short leaves its temporary file, named after its dead process: the resume removes it.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = checkpoints / f".last.ckpt.partial-{gone.stdout.strip()}"
    orphan.write_bytes(b"half a checkpoint")
    before = samples(tmp_path)
    result = fit(*tiny_args(tmp_path, tiny_encoder), *OPTIONS, "--resume.every_n_train_steps", "null",
                 "--trainer.callbacks", json.dumps([{"class_path": "tests.helpers.RecordSamples",
                                                     "init_args": {"path": str(tmp_path / "samples.txt")}}]),
                 "--ckpt_path", "last")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"--ckpt_path last: resuming from {checkpoints / 'best-epoch0-step3.ckpt'}" in result.stdout
    assert not orphan.exists()
    assert_same_as_uninterrupted(tmp_path, uninterrupted, before)


def test_a_second_ctrl_c_stops_at_once_without_writing(tmp_path, tiny_encoder):
    presser = {"class_path": "tests.helpers.CtrlCTwice", "init_args": {"epoch": 1, "batch": 2}}
    code, stderr = run(tmp_path, tiny_encoder, "--resume.every_n_train_steps", "null", callbacks=[presser])
    assert code != 0 and code != 2, stderr[-3000:]  # not the first Ctrl-C's save-and-exit
    assert "--ckpt_path last" not in stderr  # no resume line: nothing was saved for this stop
    # It stopped in that batch: no later batch ran, and last.ckpt is still epoch 0's, whole.
    assert samples(tmp_path)[-1][:2] == (1, 2)
    last = tmp_path / "runs" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 0
