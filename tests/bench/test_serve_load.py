"""bench/serve_load.py runs end to end against the real server on a tiny checkpoint (a few requests: the script's
path, not its timings; the server on every model kind is tests/inference/test_serve.py's)."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_rows, trained_checkpoint, write_csv

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "serve_load.py"


@pytest.mark.slow
def test_the_load_script_reports_each_model_and_concurrency(tmp_path, tiny_encoder):
    pytest.importorskip("litserve")
    checkpoint, _ = trained_checkpoint(tmp_path, tiny_encoder, pairs=False)  # the script sends single texts
    texts = write_csv(tmp_path / "texts.csv", make_rows(10, seed=2))
    command = [sys.executable, str(SCRIPT), "--model", str(checkpoint), "--concurrency", "1", "4", "--requests", "12",
               "--texts", str(texts), "--text-column", "review", "--serve-option=--batch_timeout=0.005"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in result.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| model")]  # fmt: skip
    assert [(row[0], row[1]) for row in rows] == [(str(checkpoint), "1"), (str(checkpoint), "4")]
    for row in rows:
        rate, p50, p99, offline = (float(cell) for cell in row[2:6])
        assert rate > 0 and 0 < p50 <= p99 and offline > 0 and row[6].endswith("%")
