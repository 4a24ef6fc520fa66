"""bench/tricks.py: which runs the tricks benchmark makes, and that --jobs runs each of them once."""

import sys
import threading

import pytest

import bench.tricks
from bench.tricks import registered_pairs, registered_variants
from project.tricks import TRICKS
from project.tricks.base import compatible_pairs


def test_the_pairs_are_the_registrys_compatible_pairs_without_the_guard_and_the_excluded():
    everything = {f"{a} + {b}" for a, b in compatible_pairs() if "nan_guard" not in (a, b)}
    assert set(registered_pairs()) == everything
    excluded = sorted(TRICKS)[0] if sorted(TRICKS)[0] != "nan_guard" else sorted(TRICKS)[1]
    kept = set(registered_pairs((excluded,)))
    assert kept == {pair for pair in everything if excluded not in pair.split(" + ")}
    assert kept < everything  # the excluded trick had pairs, and only those went


def test_jobs_run_every_seed_and_variant_once_with_the_cores_shared(monkeypatch, capsys):
    calls, lock = [], threading.Lock()

    def fake_fit(root, options, threads):
        with lock:
            calls.append((options[1], options[3], threads))
        return {"test/acc": 0.5 + 0.1 * int(options[3]), "test/f1": 0.5}, 1.0

    monkeypatch.setattr(bench.tricks, "timed_fit", fake_fit)
    monkeypatch.setattr(bench.tricks.os, "cpu_count", lambda: 4)
    variants = registered_variants()
    chosen = [name for name in variants if name != "no_guard"][:2]
    monkeypatch.setattr(sys, "argv", ["tricks.py", "--variants", *chosen, "--seeds", "1", "2", "--jobs", "2"])
    bench.tricks.main()
    assert sorted(calls) == sorted((variants[name], seed, 2) for name in chosen for seed in ("1", "2"))
    table = capsys.readouterr().out
    assert all(f"`{name}` | 65.0% ± 7.1" in table for name in chosen)  # seeds 1 and 2: 0.6 and 0.7


def test_jobs_below_one_are_refused(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tricks.py", "--jobs", "0"])
    with pytest.raises(SystemExit) as stopped:
        bench.tricks.main()
    assert stopped.value.code == 2
