"""`python -m project.fit` in a subprocess, exactly as a user runs it, on the tiny encoder and a tiny CSV."""

import json
import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from tests.conftest import make_rows, write_csv
from tests.tensorboard_events import read_scalars

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[1]


def fit(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "project.fit", "--config", str(REPO / "configs" / "own_csv.yaml"), *args]
    return subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
    )


def tiny_args(tmp_path: Path, encoder: str) -> list[str]:
    rows = [
        {"sentence": row["review"], "label": row["sentiment"], "other": row["context"]}
        for row in make_rows(96, pairs=True)
    ]
    train = write_csv(tmp_path / "train.csv", rows)
    return [
        "--model.encoder", encoder, "--data.train_file", str(train), "--data.text_pair_column", "other",
        "--data.batch_size", "8", "--data.val_ratio", "0.25", "--data.test_ratio", "0.25",
        "--model.learning_rate", "1e-3", "--model.warmup", "0.3", "--trainer.max_epochs", "2",
        "--trainer.default_root_dir", str(tmp_path / "runs"),
    ]  # fmt: skip


def test_fit_writes_metrics_labels_checkpoints_and_curves(tmp_path, tiny_encoder):
    result = fit(*tiny_args(tmp_path, tiny_encoder))
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "lightning_logs" / "version_0"
    assert f"run directory: {run_dir}" in result.stdout

    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert {"test/acc", "test/f1", "test/loss"} <= set(metrics) and 0 <= metrics["test/acc"] <= 1
    assert Path(metrics["checkpoint"]).parent == run_dir / "checkpoints"
    assert json.loads((run_dir / "labels.json").read_text()) == {"label_names": ["neg", "pos"]}
    # Hyper-parameters are primitives only, so checkpoints load without unpickling arbitrary objects.
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["label_names"] == ["neg", "pos"]

    scalars = read_scalars(run_dir)
    # 48 training rows / batch 8 = 6 optimizer steps an epoch, 12 in all; warmup is 30% of them = 3 steps.
    for group in ("decay", "no_decay"):
        learning_rates = [value for _, value in scalars[f"lr-AdamW/{group}"]]
        assert [step for step, _ in scalars[f"lr-AdamW/{group}"]] == list(range(12))
        peak = learning_rates.index(max(learning_rates))
        assert peak == 3 and learning_rates[0] == 0.0
        rising, falling = list(pairwise(learning_rates[: peak + 1])), list(pairwise(learning_rates[peak:]))
        assert all(a < b for a, b in rising) and all(a > b for a, b in falling)
    assert len(scalars["train/loss"]) == 12
    for tag in ("val/loss", "val/acc", "val/f1"):
        assert len(scalars[tag]) == 2  # once per epoch
    assert {"test/acc", "test/f1", "test/loss"} <= set(scalars)


def test_ckpt_path_last_resumes_a_killed_run_in_place_on_the_same_schedule(tmp_path, tiny_encoder):
    args = tiny_args(tmp_path, tiny_encoder)
    killer = '[{"class_path": "tests.helpers.ExitAtEpochStart", "init_args": {"epoch": 1}}]'
    killed = fit(*args, "--trainer.callbacks", killer)
    assert killed.returncode == 137
    resumed = fit(*args, "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    runs = sorted((tmp_path / "runs" / "lightning_logs").iterdir())
    assert [run.name for run in runs] == ["version_0"]  # appended to the killed run, no new run
    assert (runs[0] / "config.yaml").exists() and list(runs[0].glob("config-resumed-*.yaml"))
    scalars = read_scalars(runs[0])
    assert [step for step, _ in scalars["train/loss"]] == list(range(12))  # no gap, no duplicate
    assert len(scalars["val/acc"]) == 2

    (tmp_path / "again").mkdir()
    uninterrupted = fit(*tiny_args(tmp_path / "again", tiny_encoder))
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    reference = read_scalars(tmp_path / "again" / "runs" / "lightning_logs" / "version_0")
    steps, values = zip(*scalars["lr-AdamW/decay"], strict=True)
    reference_steps, reference_values = zip(*reference["lr-AdamW/decay"], strict=True)
    assert steps == reference_steps and values == pytest.approx(reference_values, rel=1e-9)


def test_resuming_with_a_different_length_is_refused(tmp_path, tiny_encoder):
    args = tiny_args(tmp_path, tiny_encoder)
    assert fit(*args, "--trainer.max_epochs", "1").returncode == 0
    result = fit(*args, "--ckpt_path", "last", "--trainer.max_epochs", "3")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "schedule spans 6 optimizer steps but this config gives 18" in errors[0]


def test_missing_column_fails_in_one_line_naming_column_and_file(tmp_path, tiny_encoder):
    args = tiny_args(tmp_path, tiny_encoder)
    result = fit(*args, "--data.label_column", "stars")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {tmp_path / 'train.csv'}: no column 'stars' (columns: ['sentence', 'label', 'other'])"]
    assert not (tmp_path / "runs").exists()
