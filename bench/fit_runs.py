"""Run `python -m project.fit` in a fresh process and read back its test metrics and wall time."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def timed_fit(root: Path, options: list[str]) -> tuple[dict[str, float], float]:
    """(test metrics, wall seconds of the whole command: model load, fit, validation, test)."""
    command = [sys.executable, "-m", "project.fit", "--trainer.default_root_dir", str(root)]
    start = time.perf_counter()
    subprocess.run([*command, "--trainer.enable_progress_bar", "false", *options], check=True, capture_output=True)
    wall = time.perf_counter() - start
    return json.loads((root / "lightning_logs" / "version_0" / "test_metrics.json").read_text()), wall


def extra_options(arguments: list[str]) -> list[str]:
    """Options after `--` go to every fit unchanged."""
    return [argument for argument in arguments if argument != "--"]
