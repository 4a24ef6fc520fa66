"""A run knows the data it was trained on: a resume or a `--ckpt_path` on other data is refused in one line naming
what differs, with nothing of the run changed; another run's checkpoint never becomes this run's best."""

import json
import random
import shutil
from pathlib import Path

import pytest
import torch

from tests.test_fit_end_to_end import fit, tiny_args

pytestmark = pytest.mark.slow
STOP_IN_EPOCH_1 = json.dumps([{"class_path": "tests.helpers.SignalAtBatch",
                               "init_args": {"epoch": 1, "batch": 1, "signal_name": "INT"}}])  # fmt: skip


def files_of(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_resuming_on_another_train_file_of_the_same_size_and_labels_is_refused_and_changes_nothing(
    tmp_path, tiny_encoder
):
    args = tiny_args(tmp_path, tiny_encoder)
    stopped = fit(*args, "--trainer.callbacks", STOP_IN_EPOCH_1)  # Ctrl-C in epoch 1: a resumable last.ckpt
    assert stopped.returncode == 2, stopped.stderr[-3000:]
    run_dir = tmp_path / "runs" / "lightning_logs" / "version_0"
    assert json.loads((run_dir / "data_identity.json").read_text())["files"]["train"]["size"] > 0
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["data_identity"]["files"]["train"]
    before = files_of(tmp_path / "runs")
    # Other rows: the same lines in another order (the same size, the same labels), under another name.
    lines = (tmp_path / "train.csv").read_bytes().splitlines(keepends=True)
    body = lines[1:]
    random.Random(1).shuffle(body)
    other = tmp_path / "other.csv"
    other.write_bytes(b"".join([lines[0], *body]))
    assert other.stat().st_size == (tmp_path / "train.csv").stat().st_size
    train_at = args.index("--data.train_file") + 1
    resumed = fit(*args[:train_at], str(other), *args[train_at + 1 :], "--ckpt_path", "last")
    errors = [line for line in resumed.stderr.splitlines() if line.startswith("error:")]
    assert resumed.returncode == 2 and len(errors) == 1, resumed.stderr[-3000:]
    assert f"data.train_file: {tmp_path / 'train.csv'} then, {other} now" in errors[0]
    assert "Traceback" not in resumed.stderr
    assert files_of(tmp_path / "runs") == before  # data_report.json, labels, checkpoints, config: untouched


def test_a_checkpoint_of_another_run_never_becomes_this_runs_best(tmp_path, tiny_encoder):
    args = tiny_args(tmp_path, tiny_encoder)
    finished = fit(*args)  # trained to its last epoch: resuming its last.ckpt trains nothing more
    assert finished.returncode == 0, finished.stderr[-3000:]
    source = tmp_path / "runs" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    checkpoint = tmp_path / "elsewhere.ckpt"
    shutil.copy(source, checkpoint)
    root_at = args.index("--trainer.default_root_dir") + 1
    for other_run in ("kept", "deleted"):  # the other run's folder still there, then gone
        if other_run == "deleted":
            shutil.rmtree(tmp_path / "runs")
        new_root = tmp_path / f"new_runs_{other_run}"
        result = fit(*args[:root_at], str(new_root), *args[root_at + 1 :], "--ckpt_path", str(checkpoint))
        assert result.returncode == 0, (other_run, result.stderr[-3000:])
        assert "Traceback" not in result.stderr
        tested = json.loads((new_root / "lightning_logs" / "version_0" / "test_metrics.json").read_text())
        assert tested["checkpoint"] is None or Path(tested["checkpoint"]).is_relative_to(new_root), other_run
        assert "test (final weights)" in result.stdout  # the resumed weights, as nothing was trained after them
