"""Time one optimizer step on the embedded encoder's parameters: torch's for-loop, foreach and fused versions.

    python bench/optimizer_step.py [--repeats 20]

Gradients are random and fixed; the median of the repeats is reported, per optimizer and implementation.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import print_table  # noqa: E402
from project.model.encoder import (
    DEFAULT_ENCODER,  # noqa: E402
    load_encoder,  # noqa: E402
)

IMPLEMENTATIONS = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def median_step_ms(optimizer_class, parameters, options: dict, repeats: int) -> float:
    optimizer = optimizer_class(parameters, lr=1e-5, **options)
    optimizer.step()  # warm-up: allocates state
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    repeats = parser.parse_args().repeats
    parameters = [p for p in load_encoder(DEFAULT_ENCODER).parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(0)
    for parameter in parameters:
        parameter.grad = torch.randn(parameter.shape, generator=generator) * 1e-3
    count = sum(p.numel() for p in parameters)
    rows = []
    for name, optimizer_class in OPTIMIZERS.items():
        cells = []
        for options in IMPLEMENTATIONS.values():
            try:
                cells.append(f"{median_step_ms(optimizer_class, parameters, options, repeats):.1f}")
            except (RuntimeError, TypeError) as error:  # an implementation torch lacks for this optimizer/device
                cells.append(f"n/a ({type(error).__name__})")
        rows.append([name, *cells])
    columns = ["optimizer", *(f"{name} (ms)" for name in IMPLEMENTATIONS)]
    print_table(f"{count / 1e6:.1f}M parameters, median of {repeats} steps.", columns, rows)


if __name__ == "__main__":
    main()
