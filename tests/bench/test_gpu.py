"""bench/gpu.py stays runnable for the day a GPU is lent: the same script on the CPU with a tiny config."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu.py"


@pytest.mark.slow
def test_the_gpu_benchmark_runs_on_the_cpu_with_a_tiny_config():
    command = [sys.executable, str(SCRIPT), "--config", "tiny", "--device", "cpu", "--precision", "32-true",
               "--compile", "off", "--batch-sizes", "4", "--length", "16", "--steps", "6", "--warmup", "2",
               "--variable-lengths"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("| ")}
    for variant in ("ours", "raw"):
        cells = [cell.strip() for cell in rows[variant].split("|")[1:-1]]
        assert float(cells[3]) > 0 and cells[6].endswith("%")  # samples/s and MFU against the measured GEMM peak
        assert 0 < float(cells[7].rstrip("%")) < 100  # the padding share of rows of random lengths
    assert "FSDP check: skipped" in result.stdout
