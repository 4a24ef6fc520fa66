"""bench/tricks.py: which runs the tricks benchmark makes, and that --jobs runs each of them once."""

import sys
import threading

import pytest

import bench.tricks
from bench.tricks import pair_verdicts, progress_line, read_log, registered_pairs, registered_variants
from project.tricks import TRICKS
from project.tricks.base import compatible_pairs


def test_the_pairs_are_the_registrys_compatible_pairs_without_the_guard_and_the_excluded():
    plain = [name for name in TRICKS if not TRICKS[name].needs_teacher_scores]  # distillation runs under distill
    everything = {f"{a} + {b}" for a, b in compatible_pairs(plain) if "nan_guard" not in (a, b)}
    assert set(registered_pairs()) == everything
    excluded = next(name for name in sorted(plain) if name != "nan_guard")
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


def test_a_pair_is_judged_against_its_weaker_member_within_two_of_its_std():
    accuracy = {
        "a": [0.80, 0.81, 0.82],  # mean 0.81, the stronger
        "b": [0.70, 0.72, 0.74],  # mean 0.72 ± 0.02: the weaker, 2 std = 4 points
        "a + b": [0.69, 0.69, 0.69],  # 3 points under b: within
        "b + c": [0.10, 0.10, 0.10],  # c never ran alone: no verdict
    }
    assert pair_verdicts(accuracy) == [["`a + b`", "69.0% ± 0.0", "`b` 72.0% ± 2.0", "-3.0", "yes"]]
    accuracy["a + b"] = [0.67, 0.67, 0.67]  # 5 points under: outside
    assert pair_verdicts(accuracy)[0][3:] == ["-5.0", "**no**"]
    assert pair_verdicts({"a": [0.8], "b": [0.7], "a + b": [0.1]})[0][4] == "(one seed)"


def test_the_tables_come_back_from_a_runs_progress_lines(tmp_path, monkeypatch, capsys):
    log = tmp_path / "bench.err"
    lines = [
        progress_line(1, "none", 0.80, 0.79, 100.4),
        "UserWarning: something the fit printed",
        progress_line(1, "ema", 0.78, 0.77, 110),
        progress_line(1, "ema + none", 0.70, 0.69, 120),
        progress_line(2, "none", 0.82, 0.81, 102),
        progress_line(2, "ema", 0.80, 0.79, 108),
        progress_line(2, "ema + none", 0.60, 0.59, 118),
    ]
    log.write_text("\n".join(lines) + "\n")
    assert read_log(log)["none"] == [(0.80, 0.79, 100.0), (0.82, 0.81, 102.0)]
    monkeypatch.setattr(sys, "argv", ["tricks.py", "--from-log", str(log)])
    bench.tricks.main()
    out = capsys.readouterr().out
    assert "| `none` | 81.0% ± 1.4 | 80.0% ± 1.4 | 101 |" in out
    assert "| `ema + none` | 65.0% ± 7.1 | `ema` 79.0% ± 1.4 | -14.0 | **no** |" in out


def test_a_log_without_progress_lines_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    log = tmp_path / "empty.err"
    log.write_text("Traceback: nothing ran\n")
    for path in (log, tmp_path / "missing.err"):
        monkeypatch.setattr(sys, "argv", ["tricks.py", "--from-log", str(path)])
        with pytest.raises(SystemExit) as stopped:
            bench.tricks.main()
        assert stopped.value.code == 2 and str(path) in capsys.readouterr().err
