"""The console of `python -m project.fit` (and of predict and export on its checkpoint) carries the product's lines
and none of the libraries' noise, each fact once."""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import make_rows, write_csv

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[2]

# Lines the libraries print that tell a user of this product nothing (each once seen in a default fit).
NOISE = {
    "Lightning's litlogger / litmodels tip": "💡 Tip",
    "torch's _pytree deprecation, raised by Lightning": "LeafSpec",
    "configure_callbacks replacing the fit's own": "will override existing callbacks",
    "Lightning's FLOPs column of zeros": "FLOPs",
    "transformers' weights-loading bar": "Loading weights",
    "transformers' bar over writing a one-file model": "Writing model shards",
    "Lightning's model size warning under mixed precision": "not supported by the model summary",
}


def start(module: str, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", f"project.{module}", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)


def finished(process: subprocess.Popen) -> str:
    stdout, stderr = process.communicate()
    assert process.returncode == 0, stderr[-3000:]
    return stdout + stderr


def run(module: str, *args: str) -> str:
    return finished(start(module, *args))


def assert_quiet(console: str) -> None:
    found = {what: text for what, text in NOISE.items() if text in console}
    assert not found, f"library noise on the console: {found}\n{console}"


def test_a_fit_then_predict_and_export_print_no_library_noise_and_each_fact_once(tmp_path, tiny_encoder):
    train = write_csv(tmp_path / "train.csv", make_rows(64))
    root = tmp_path / "runs"
    console = run(
        "fit", "--model.encoder", tiny_encoder, "--data.train_file", str(train), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--data.batch_size", "8", "--trainer.max_epochs", "1",
        "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
    )  # fmt: skip
    assert_quiet(console)
    lines = console.splitlines()
    # The product's own lines and Lightning's summary (without its FLOPs) are all still there.
    assert any(line.startswith("data: train ") for line in lines)
    assert any(line.startswith("test (best checkpoint): test/loss ") for line in lines)
    assert any(line.startswith("run directory: ") for line in lines)
    assert "Total params" in console and "Trainable params" in console
    # Each fact once: a line printed twice (apart from table rules and blank lines) says something twice.
    counts = Counter(line.strip() for line in lines if any(char.isalnum() for char in line))
    assert not [line for line, count in counts.items() if count > 1], console

    checkpoint = next((root / "lightning_logs" / "version_0" / "checkpoints").glob("best*.ckpt"))
    # Side by side: neither reads what the other writes.
    predicting = start("predict", "--checkpoint", str(checkpoint), "--input", str(train), "--text_column", "review",
                       "--output", str(tmp_path / "predictions.csv"))  # fmt: skip
    exporting = start("export", "--checkpoint", str(checkpoint), "--output", str(tmp_path / "exported"))
    for console in (finished(predicting), finished(exporting)):
        assert_quiet(console)
    assert (tmp_path / "predictions.csv").exists() and (tmp_path / "exported").is_dir()
