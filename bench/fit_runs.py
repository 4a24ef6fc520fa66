"""Run `python -m project.fit` in a fresh process and read back its test metrics and wall time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def timed_fit(root: Path, options: list[str], threads: int | None = None) -> tuple[dict[str, float], float]:
    """(test metrics, wall seconds of the whole command: model load, fit, validation, test).

    `threads` caps torch's intra-op threads in the child (OMP_NUM_THREADS), for fits that run side by side.
    """
    command = [sys.executable, "-m", "project.fit", "--trainer.default_root_dir", str(root)]
    environment = os.environ | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    start = time.perf_counter()
    subprocess.run(
        [*command, "--trainer.enable_progress_bar", "false", *options], check=True, capture_output=True, env=environment
    )
    wall = time.perf_counter() - start
    return json.loads((root / "lightning_logs" / "version_0" / "test_metrics.json").read_text()), wall


def extra_options(arguments: list[str]) -> list[str]:
    """Options after `--` go to every fit unchanged."""
    return [argument for argument in arguments if argument != "--"]
