"""`python -m project.pretrain` in a subprocess on the tiny character BERT, then `project.fit` on what it saved."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from project.evaluation.curves import read_scalars
from tests.conftest import write_csv
from tests.pretraining.conftest import chinese_reviews, write_corpus

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[2]


def run(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip


def test_pretrain_logs_perplexity_and_saves_a_folder_that_fit_fine_tunes(tmp_path, chinese_encoder):
    corpus = write_corpus(tmp_path / "corpus.txt", 160)
    pretrained = run(
        "project.pretrain", "--model.encoder", chinese_encoder, "--data.train_file", str(corpus),
        "--data.batch_size", "16", "--data.val_ratio", "0.2", "--data.whole_word_mask", "true",
        "--model.learning_rate", "1e-3", "--trainer.max_epochs", "2", "--trainer.accumulate_grad_batches", "2",
        "--trainer.gradient_clip_val", "1.0", "--trainer.default_root_dir", str(tmp_path / "runs"),
    )  # fmt: skip
    assert pretrained.returncode == 0, pretrained.stderr[-3000:]
    run_dir = tmp_path / "runs" / "lightning_logs" / "version_0"
    saved = run_dir / "encoder"
    assert f"--model.encoder {saved}" in pretrained.stdout
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {path.name for path in saved.iterdir()}

    scalars = read_scalars(run_dir)
    # 128 training documents / batch 16 = 8 batches an epoch, 4 optimizer steps with accumulation 2: 8 in all.
    assert [step for step, _ in scalars["train/loss"]] == list(range(8))
    assert {step for step, _ in scalars["lr-AdamW/encoder"]} == set(range(8))
    losses, perplexities = scalars["val/loss"], scalars["val/perplexity"]
    assert len(losses) == len(perplexities) == 2  # once per epoch
    for (_, loss), (_, perplexity) in zip(losses, perplexities, strict=True):
        assert perplexity == pytest.approx(math.exp(loss), rel=1e-5)

    train = write_csv(tmp_path / "reviews.csv", chinese_reviews(64, seed=1))
    fitted = run(
        "project.fit", "--model.encoder", str(saved), "--data.train_file", str(train), "--data.batch_size", "8",
        "--data.max_length", "64", "--data.val_ratio", "0.25", "--data.test_ratio", "0.25", "--trainer.max_epochs", "1",
        "--trainer.default_root_dir", str(tmp_path / "fit"),
    )  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr[-3000:]
    metrics = json.loads((tmp_path / "fit" / "lightning_logs" / "version_0" / "test_metrics.json").read_text())
    assert 0 <= metrics["test/acc"] <= 1


def test_save_dir_that_holds_files_is_refused_before_training(tmp_path, chinese_encoder):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "config.json").write_text("{}")
    result = run("project.pretrain", "--model.encoder", chinese_encoder, "--data.train_file",
                 str(write_corpus(tmp_path / "corpus.txt")), "--save_dir", str(tmp_path / "taken"),
                 "--trainer.default_root_dir", str(tmp_path / "runs"))  # fmt: skip
    assert result.returncode == 2 and "is not empty; name a new folder" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_killed_pretraining_resumes_in_place_with_ckpt_path_last(tmp_path, chinese_encoder):
    args = ["--model.encoder", chinese_encoder, "--data.train_file", str(write_corpus(tmp_path / "corpus.txt", 80)),
            "--data.batch_size", "16", "--data.val_ratio", "0.2", "--trainer.max_epochs", "2",
            "--trainer.default_root_dir", str(tmp_path / "runs")]  # fmt: skip
    killer = '[{"class_path": "tests.helpers.ExitAtEpochStart", "init_args": {"epoch": 1}}]'
    assert run("project.pretrain", *args, "--trainer.callbacks", killer).returncode == 137
    resumed = run("project.pretrain", *args, "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    runs = sorted((tmp_path / "runs" / "lightning_logs").iterdir())
    assert [path.name for path in runs] == ["version_0"] and (runs[0] / "encoder" / "config.json").exists()
    # 64 training documents / batch 16 = 4 steps an epoch: each step logged once across the two processes.
    assert [step for step, _ in read_scalars(runs[0])["train/loss"]] == list(range(8))
