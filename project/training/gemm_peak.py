"""The machine's own matrix-multiplication ceiling, the denominator of a run's MFU (`training/efficiency.py`).

A data sheet's peak is unknown for most CPUs and optimistic for the rest; what counts is what `torch.mm` reaches
here. A short probe (square matmuls of the dtype, best of a few timed bursts, well under a second) runs once per
machine and is cached in the product's cache folder (`$BERT_TEMPLATE_CACHE`, or `~/.cache/bert-lightning-template`),
keyed by the processor (CPU model, or GPU name), torch's version and thread count, and the dtype.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from project.core.assets import cache_root
from project.core.atomic import write_text
from project.core.machine import cpu_name

CACHE_ENV = "BERT_TEMPLATE_GEMM_PEAK"  # a file to use instead of <cache>/gemm_peak.json (the tests set it)
SIZE = 1024  # big enough to reach the kernels' plateau on a CPU core, small enough for a sub-second probe


def cache_file() -> Path:
    return Path(os.environ.get(CACHE_ENV) or cache_root() / "gemm_peak.json")


def processor(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, {torch.get_num_threads()} threads"


def key(device: torch.device, dtype: torch.dtype) -> str:
    return f"{processor(device)} | torch {torch.__version__} | {str(dtype).removeprefix('torch.')}"


def probe(device: torch.device, dtype: torch.dtype, seconds: float = 0.3, size: int = SIZE) -> float:
    """FLOP/s of the best of five timed bursts of (size x size) @ (size x size)."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    for _ in range(2):
        torch.mm(a, b)  # the first calls pick kernels
    best = 0.0
    for _ in range(5):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 5:
            torch.mm(a, b)
            count += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = max(best, 2 * size**3 * count / (time.perf_counter() - start))
    return best


def gemm_peak(device: torch.device, dtype: torch.dtype) -> tuple[float, bool]:
    """(FLOP/s, whether it came from the cache). A broken cache file is measured again and rewritten."""
    path, name = cache_file(), key(device, dtype)
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = {}
    if not isinstance(cached, dict):
        cached = {}
    if isinstance(cached.get(name), int | float) and cached[name] > 0:
        return float(cached[name]), True
    cached[name] = probe(device, dtype)
    try:
        write_text(path, json.dumps(cached, indent=2) + "\n")
    except OSError:  # a read-only home: measured again next time, the run goes on
        pass
    return cached[name], False
