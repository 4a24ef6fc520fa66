"""Model FLOPs and the machine's own GEMM peak, for model FLOPs utilisation (MFU) in the training benchmarks.

- `StepFlops` counts a training step's FLOPs with `torch.utils.flop_counter.FlopCounterMode` on the real model, at
  the real batch's shape (batch x padded length; the token values do not change the count): forward and backward,
  every matmul-like op torch knows the FLOPs of. The optimizer and elementwise work add time, not counted FLOPs,
  as in every MFU figure.
- `gemm_peak` times `torch.mm` at the shapes that dominate the model (the step's tokens x hidden x hidden and
  x 4 hidden) in the step's dtype, best of several timed runs: the ceiling this machine reaches on that work.
- `matmul_share` splits a profiled step's CPU time into matrix multiplications and the rest.
"""

from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode

MATMUL_NAMES = ("mm", "matmul", "linear", "scaled_dot_product")  # aten::mm, addmm, bmm, mkldnn_matmul, sdpa...


class StepFlops:
    """FLOPs of one training step of `step(batch) -> loss` by batch shape, counted once per shape."""

    def __init__(self, step, make_batch):
        self.step, self.make_batch, self.counted = step, make_batch, {}

    def __call__(self, batch_size: int, length: int) -> int:
        key = (batch_size, length)
        if key not in self.counted:
            counter = FlopCounterMode(display=False)
            with counter:
                self.step(self.make_batch(batch_size, length)).backward()
            self.counted[key] = counter.get_total_flops()
        return self.counted[key]


def gemm_peak(tokens: int, hidden: int, dtype: torch.dtype, device: str = "cpu", seconds: float = 0.5) -> float:
    """FLOP/s of the best of several timed runs of (tokens x hidden) @ (hidden x hidden) and (hidden x 4 hidden)."""
    best = 0.0
    for width in (hidden, 4 * hidden):
        a = torch.randn(tokens, hidden, dtype=dtype, device=device)
        b = torch.randn(hidden, width, dtype=dtype, device=device)
        for _ in range(3):
            torch.mm(a, b)  # warm-up: first calls pick kernels
        for _ in range(5):
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds / 5:
                torch.mm(a, b)
                count += 1
            if device != "cpu":
                torch.cuda.synchronize()
            best = max(best, 2 * tokens * hidden * width * count / (time.perf_counter() - start))
    return best


class WindowProfile:
    """Profiles the steps from `first` to `first + count` (call `at(step)` at each step's start): each op's self CPU
    time, and the wall time of the window, so that what runs outside torch ops (Python, hooks) shows as the rest."""

    def __init__(self, first: int, count: int):
        self.first, self.count, self.profiler, self.started, self.result = first, count, None, 0.0, {}

    def at(self, step: int) -> None:
        from torch.profiler import ProfilerActivity, profile

        if step == self.first:
            self.profiler = profile(activities=[ProfilerActivity.CPU])
            self.profiler.start()
            self.started = time.perf_counter()
        elif self.profiler is not None and step == self.first + self.count:
            wall = time.perf_counter() - self.started
            self.profiler.stop()
            ops = {event.key: event.self_cpu_time_total / 1e6 for event in self.profiler.key_averages()}
            self.result, self.profiler = {"ops": ops, "wall": wall, "steps": self.count}, None


def per_step(profile: dict) -> dict[str, float]:
    """A `WindowProfile` result as seconds per step: every op, `matmuls` (their sum, attention's included) and
    `outside ops` (the window's wall time no op accounts for: Python, hooks, logging)."""
    steps = profile["steps"]
    seconds = {name: total / steps for name, total in profile["ops"].items()}
    seconds["matmuls"] = sum(value for name, value in seconds.items() if any(m in name for m in MATMUL_NAMES))
    in_ops = sum(profile["ops"].values()) / steps
    seconds["outside ops"] = max(0.0, profile["wall"] / steps - in_ops)
    return seconds


# Where a step's time goes, by op name (first match wins; anything else is "other ops").
CATEGORIES = {
    "matmuls": MATMUL_NAMES,
    "casts and copies (autocast, layout)": ("copy_", "_to_copy", "contiguous", "clone"),
    "dropout masks": ("bernoulli", "dropout"),
    "softmax": ("softmax",),
    "layer norm": ("layer_norm",),
    "GELU": ("gelu",),
    "embeddings": ("embedding",),
    "optimizer": ("adam", "Optimizer.", "zero_", "foreach"),
    "elementwise (add, mul, div, sum...)": ("add", "mul", "div", "sum", "sub", "neg", "where", "fill_", "masked"),
}


def by_category(seconds: dict[str, float]) -> dict[str, float]:
    """`per_step` seconds summed into `CATEGORIES`, then "other ops" and "outside ops" (Python, hooks, logging)."""
    totals = dict.fromkeys([*CATEGORIES, "other ops", "outside ops"], 0.0)
    for name, value in seconds.items():
        if name == "matmuls":  # per_step's sum of the matmul ops, which are counted one by one below
            continue
        category = "outside ops" if name == "outside ops" else next(
            (category for category, parts in CATEGORIES.items() if any(part in name for part in parts)), "other ops"
        )  # fmt: skip
        totals[category] += value
    return totals


def matmul_share(profile: dict) -> dict[str, float]:
    """A `WindowProfile` result's self CPU time: the share in matrix multiplications (attention's included), and
    the largest other ops' shares."""
    ops = profile["ops"]
    total = sum(ops.values()) or 1
    shares = {"matmuls": 0.0}
    for name, seconds in sorted(ops.items(), key=lambda item: -item[1]):
        if any(m in name for m in MATMUL_NAMES):
            shares["matmuls"] += seconds / total
        elif len(shares) < 8:
            shares[name] = seconds / total
    return shares
