"""Two CPU processes (gloo) train with Lightning's DDP, launched the two ways users launch it: by Lightning itself
(`--trainer.strategy ddp --trainer.devices 2`) and by `torchrun`, the multi-node recipe's launcher."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from project.data.datamodule import TextDataModule
from project.training.module import TextClassifier
from tests.conftest import make_rows, trainer, write_csv

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[2]
# 101 rows: 16 test, 21 validation (11 + 10 rows: uneven shards), 64 training = 8 batches of 8, 4 per process.
DATA = {"val_ratio": 0.21, "test_ratio": 0.16, "batch_size": 8}
LAUNCHERS = {
    "lightning": [sys.executable, "-m", "project.fit"],
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    + ["-m", "project.fit"],
}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_processes_hold_identical_weights_and_validate_like_one(tmp_path, tiny_encoder, launcher):
    rows = [{"sentence": row["review"], "label": row["sentiment"]} for row in make_rows(101)]
    train_file = write_csv(tmp_path / "train.csv", rows)
    records = tmp_path / "records"
    records.mkdir()
    root = tmp_path / "runs"
    command = [
        *LAUNCHERS[launcher], "--config", str(REPO / "configs" / "own_csv.yaml"), "--model.encoder", tiny_encoder,
        "--data.train_file", str(train_file), "--data.val_ratio", str(DATA["val_ratio"]),
        "--data.test_ratio", str(DATA["test_ratio"]), "--data.batch_size", str(DATA["batch_size"]),
        "--model.learning_rate", "1e-3", "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(root),
        "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu",
        "--trainer.enable_progress_bar", "false",
        "--trainer.callbacks+", "tests.helpers.RecordWeights", "--trainer.callbacks.folder", str(records),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    # Gradients are averaged before every step, so both processes step to bitwise the same weights.
    steps = [(records / f"weights-rank{rank}.txt").read_text().splitlines() for rank in (0, 1)]
    assert [line.split()[:2] for line in steps[0]] == [line.split()[:2] for line in steps[1]]
    assert [int(line.split()[0]) for line in steps[0]] == [1, 2, 3, 4]
    # Each process trained on its own half of the batches (the length-grouped sampler, not Lightning's).
    batches = [{tuple(line.split()[2:]) for line in rank} for rank in steps]
    assert not batches[0] & batches[1]
    assert sum(len(batch) for rank in batches for batch in rank) == 64

    # Only rank 0 made a run folder and wrote checkpoints, labels and test metrics.
    run_dir = root / "lightning_logs" / "version_0"
    assert [path.name for path in (root / "lightning_logs").iterdir()] == ["version_0"]
    checkpoints = sorted(path.name for path in (run_dir / "checkpoints").iterdir())
    assert checkpoints == ["best-epoch0-step4.ckpt", "last.ckpt"]
    assert (run_dir / "labels.json").exists() and (run_dir / "test_metrics.json").exists()
    assert result.stdout.count("run directory:") == 1

    # Validation metrics gathered from both shards equal one process validating the same weights on all rows.
    distributed = [json.loads((records / f"val-rank{rank}.json").read_text()) for rank in (0, 1)]
    assert distributed[0] == distributed[1]
    model = TextClassifier.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    data = TextDataModule(
        train_file=str(train_file), text_column="sentence", label_column="label", tokenizer=tiny_encoder,
        val_ratio=DATA["val_ratio"], test_ratio=DATA["test_ratio"], batch_size=DATA["batch_size"], seed=42,
    )  # fmt: skip
    single = trainer(devices=1).validate(model, datamodule=data, verbose=False)[0]
    assert set(single) == set(distributed[0]) == {"val/loss", "val/acc", "val/f1"}
    for key, value in single.items():
        assert distributed[0][key] == pytest.approx(value, abs=1e-6), key
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
