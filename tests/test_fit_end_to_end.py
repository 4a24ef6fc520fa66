"""`python -m project.fit` in a subprocess, exactly as a user runs it, on the tiny encoder and a tiny CSV."""

import json
import os
import shlex
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from project.evaluation.curves import read_scalars
from tests.conftest import make_rows, write_csv

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[1]


def fit(*args: str, config: str = "own_csv.yaml") -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "project.fit", "--config", str(REPO / "configs" / config), *args]
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
        "--model.learning_rate", "1e-3", "--model.optimization.warmup", "0.3", "--trainer.max_epochs", "2",
        "--trainer.default_root_dir", str(tmp_path / "runs"),
    ]  # fmt: skip


def test_fit_writes_metrics_labels_checkpoints_and_curves(tmp_path, tiny_encoder):
    result = fit(*tiny_args(tmp_path, tiny_encoder))
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "lightning_logs" / "version_0"
    assert f"run directory: {run_dir}" in result.stdout
    # The closing lines end with the command that opens this run's curves (the folder holds its event files).
    lines = result.stdout.splitlines()
    after = lines[next(i for i, line in enumerate(lines) if line.startswith("run directory:")) + 1]
    assert shlex.split(after) == ["curves:", "tensorboard", "--logdir", str(run_dir)]
    assert list(run_dir.glob("events.out.tfevents.*"))

    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert {"test/acc", "test/f1", "test/loss"} <= set(metrics) and 0 <= metrics["test/acc"] <= 1
    assert Path(metrics["checkpoint"]).parent == run_dir / "checkpoints"
    assert json.loads((run_dir / "labels.json").read_text()) == {"label_names": ["neg", "pos"]}
    # Hyper-parameters are primitives only, so checkpoints load without unpickling arbitrary objects.
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["label_names"] == ["neg", "pos"]

    scalars = read_scalars(run_dir)
    # 48 training rows / batch 8 = 6 optimizer steps an epoch, 12 in all; warmup is 30% of them = 3 steps.
    for group in ("encoder", "encoder_no_decay", "head", "head_no_decay"):
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


def task_rows(task: str) -> list[dict[str, str]]:
    rows = []
    for row in make_rows(96, pairs=True):
        words = row["review"].split()
        if task == "multi_label":  # sentiment, plus tags that depend on the words
            tags = [row["sentiment"]] + (["long"] if len(words) > 7 else []) + (["actor"] if "actor" in words else [])
            label = "|".join(tags)
        else:  # a 0-5 score
            label = str((4.0 if row["sentiment"] == "pos" else 1.0) + 0.1 * min(len(words), 10))
        rows.append({"first": row["review"], "second": row["context"], "target": label})
    return rows


@pytest.mark.parametrize(
    "task, config, metrics",
    [
        ("multi_label", "multi_label.yaml", {"test/f1_micro", "test/f1_macro", "test/auroc", "test/loss"}),
        ("regression", "regression.yaml", {"test/mse", "test/pearson", "test/spearman", "test/loss"}),
    ],
)
def test_every_task_fits_on_sentence_pairs_from_its_config(tmp_path, tiny_encoder, task, config, metrics):
    train = write_csv(tmp_path / "train.csv", task_rows(task))
    result = fit(
        "--model.encoder", tiny_encoder, "--data.train_file", str(train), "--data.text_column", "first",
        "--data.text_pair_column", "second", "--data.label_column", "target", "--data.batch_size", "8",
        "--model.learning_rate", "1e-3", "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(tmp_path),
        config=config,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "lightning_logs" / "version_0"
    written = json.loads((run_dir / "test_metrics.json").read_text())
    assert metrics <= set(written)
    assert "checkpoints" in written["checkpoint"]
    if task == "regression":  # nothing to calibrate or decide
        assert "decisions" not in written and "decisions" not in torch.load(written["checkpoint"], weights_only=True)
    else:  # one temperature for every sigmoid and a threshold per label, fitted on validation and stored
        decisions = torch.load(written["checkpoint"], weights_only=True)["decisions"]
        assert written["decisions"] == decisions and decisions["temperature"] > 0
        names = ["actor", "long", "neg", "pos"]
        assert len(decisions["thresholds"]) == 4 and set(decisions["kept_global"]) <= set(names)
        table = json.loads((run_dir / "test_report.json").read_text())["per_label"]
        assert [row["threshold"] for row in table] == decisions["thresholds"]
        assert all(0 <= row["decided_f1"] <= 1 for row in table)
        assert {"test/calibrated_ece", "test/decided_f1_micro"} <= set(written)


def test_non_numeric_regression_label_names_file_and_row(tmp_path, tiny_encoder):
    rows = task_rows("regression")
    rows[4]["target"] = "high"
    train = write_csv(tmp_path / "train.csv", rows)
    result = fit(
        "--model.encoder", tiny_encoder, "--data.train_file", str(train), "--data.text_column", "first",
        "--data.text_pair_column", "second", "--data.label_column", "target",
        "--trainer.default_root_dir", str(tmp_path / "runs"), config="regression.yaml",
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {train}: row 5: label 'high' is not a number (data.task is regression)"]
    assert not (tmp_path / "runs").exists()
