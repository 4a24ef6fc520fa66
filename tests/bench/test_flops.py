"""bench/flops.py: the profile the training benchmarks compare `ours` and `raw` by."""

import time

import torch

from bench.flops import WindowProfile, by_category, matmul_share, per_step


def test_a_window_profile_covers_exactly_its_steps_and_splits_matmuls_from_the_rest():
    a, b = torch.randn(64, 64), torch.randn(64, 64)
    profile = WindowProfile(first=2, count=3)
    for step in range(7):
        profile.at(step)
        torch.mm(a, b)
        (a * 2).sum()
        time.sleep(0.01 if 2 <= step < 5 else 0.0)  # outside any torch op, inside the window
    assert profile.profiler is None and profile.result["steps"] == 3
    seconds = per_step(profile.result)
    assert seconds["matmuls"] == seconds["aten::mm"] > 0
    # The sleep shows as time no op accounts for: at least its 10 ms (a sleep never ends early; no upper bound,
    # which would test the machine's load rather than the accounting).
    assert seconds["outside ops"] >= 0.0099
    total = sum(value for name, value in seconds.items() if name != "matmuls")
    assert abs(total - profile.result["wall"] / 3) < 1e-9  # ops plus outside ops is the wall time of a step
    categories = by_category(seconds)
    assert categories["matmuls"] == seconds["aten::mm"] and categories["outside ops"] == seconds["outside ops"]
    assert categories["elementwise (add, mul, div, sum...)"] >= seconds["aten::mul"] + seconds["aten::sum"]
    assert abs(sum(categories.values()) - total) < 1e-9  # every op counted once
    shares = matmul_share(profile.result)
    assert 0 < shares["matmuls"] < 1 and "aten::mm" not in shares and "aten::mul" in shares


def test_a_window_that_never_closed_has_no_result():
    profile = WindowProfile(first=1, count=5)
    for step in range(3):
        profile.at(step)
    assert profile.result == {}
    profile.profiler.stop()
