"""The embedded default with each training trick, and with pairs of them (same split, same budget): test metrics
over seeds, and wall time.

    python bench/tricks.py [--variants none fgm ...] [--pairs] [--combination '{fgm: {}, ema: {decay: 0.99}}']
                           [--seeds 1 2 3] [--jobs 2] [-- extra fit options]
    python bench/tricks.py --from-log bench.err    # the tables again from a run's progress lines, even a partial run

Each run is `python -m project.fit --model.tricks <tricks> --seed_everything <seed>` in a fresh process (the NaN
guard stays on unless a variant switches it off: `no_guard` measures its cost). `--variants` defaults to `none` and
every registered trick at its default options; `--pairs` adds every pair of registered tricks that may run together
(the registry decides: two of one exclusive group, such as fgm and pgd, are not a pair); `--exclude` leaves tricks
out of both, for example `early_stopping` at a one-epoch budget, where it never fires and each of its runs repeats
its partner's bit for bit. The table shows the mean ± std over seeds of test accuracy and macro-F1, and the mean
wall time of the whole command. `--jobs N` runs N fits at a time, each with cores / N threads: on 2 cores two
1-thread fits finish about as many runs per hour as one 2-thread fit, and wall times are then those of a 1-thread
fit sharing the machine. With pairs, a second table sets each pair beside its weaker member (the lower mean accuracy
of its two tricks alone): the goal is no pair more than 2 of that member's std below its mean.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fit_runs import extra_options, timed_fit  # noqa: E402
from bench.machine import print_rows, print_table  # noqa: E402


def registered_variants() -> dict[str, str]:
    from project.tricks import TRICKS

    variants = {"none": "{}", "no_guard": "{nan_guard: false}"}
    # A trick that learns from a teacher's scores runs under project.distill, not in a plain fit.
    variants.update({name: f"{{{name}: {{}}}}" for name in sorted(TRICKS) if name != "nan_guard"
                     and not TRICKS[name].needs_teacher_scores})  # fmt: skip
    return variants


def registered_pairs(excluded: tuple[str, ...] = ()) -> dict[str, str]:
    from project.tricks import TRICKS
    from project.tricks.base import compatible_pairs

    names = [name for name in TRICKS if name != "nan_guard" and name not in excluded  # the guard is on in every run
             and not TRICKS[name].needs_teacher_scores]  # fmt: skip
    return {f"{first} + {second}": f"{{{first}: {{}}, {second}: {{}}}}" for first, second in compatible_pairs(names)}


PROGRESS = re.compile(r"seed (?P<seed>-?\d+), (?P<name>.+): acc (?P<acc>[\d.]+) f1 (?P<f1>[\d.]+) (?P<wall>[\d.]+) s$")


def progress_line(seed: int, name: str, accuracy: float, f1: float, wall: float) -> str:
    return f"seed {seed}, {name}: acc {accuracy:.4f} f1 {f1:.4f} {wall:.0f} s"


def read_log(path: Path) -> dict[str, list[tuple[float, float, float]]]:
    """(accuracy, macro-F1, wall) per run name, from the progress lines of a bench's stderr (other lines skipped)."""
    results: dict[str, list[tuple[float, float, float]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := PROGRESS.match(line.strip()):
            row = (float(match["acc"]), float(match["f1"]), float(match["wall"]))
            results.setdefault(match["name"], []).append(row)
    return results


def spread(values: list[float]) -> str:
    deviation = f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else ""
    return f"{100 * statistics.mean(values):.1f}%{deviation}"


def pair_verdicts(accuracy: dict[str, list[float]]) -> list[list[str]]:
    """Each pair (a run named `a + b` whose members ran alone) beside its weaker member: the difference of the means
    in points, and whether it is within 2 of that member's std (needs two seeds or more)."""
    rows = []
    for name, values in accuracy.items():
        members = name.split(" + ")
        if len(members) != 2 or not all(member in accuracy for member in members):
            continue
        weaker = min(members, key=lambda member: statistics.mean(accuracy[member]))
        difference = statistics.mean(values) - statistics.mean(accuracy[weaker])
        if len(accuracy[weaker]) > 1:
            verdict = "yes" if difference >= -2 * statistics.stdev(accuracy[weaker]) else "**no**"
        else:
            verdict = "(one seed)"
        rows.append([f"`{name}`", spread(values), f"`{weaker}` {spread(accuracy[weaker])}", f"{100 * difference:+.1f}",
                     verdict])  # fmt: skip
    return rows


def print_tables(settings: str, results: dict[str, list[tuple[float, float, float]]]) -> None:
    print_table(
        settings,
        ["tricks", "test acc", "test macro-F1", "wall time (s)"],
        [[f"`{name}`", spread([r[0] for r in rows]), spread([r[1] for r in rows]),
          f"{statistics.mean(r[2] for r in rows):.0f}"] for name, rows in results.items() if rows],
    )  # fmt: skip
    verdicts = pair_verdicts({name: [r[0] for r in rows] for name, rows in results.items() if rows})
    if verdicts:
        print()
        print_rows(["pair", "test acc", "weaker member alone", "difference (points)", "within 2 std of it"], verdicts)


def main() -> None:
    variants = registered_variants()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="*", default=[n for n in variants if n != "no_guard"], choices=variants)
    parser.add_argument("--pairs", action="store_true", help="add every compatible pair of registered tricks")
    parser.add_argument(
        "--exclude", nargs="*", default=[], choices=variants, help="tricks left out of the variants and the pairs"
    )
    parser.add_argument("--combination", action="append", default=[], help="extra model.tricks value to measure")
    parser.add_argument("--seeds", nargs="*", type=int, default=[42])
    parser.add_argument("--jobs", type=int, default=1, help="fits at a time, each with cores / jobs threads")
    parser.add_argument("--from-log", type=Path, help="print the tables from this run's progress lines; run nothing")
    options, extra = parser.parse_known_args()
    extra = extra_options(extra)
    if options.from_log:
        if not options.from_log.is_file():
            parser.error(f"--from-log {options.from_log}: no such file")
        results = read_log(options.from_log)
        if not results:
            parser.error(f"--from-log {options.from_log}: no progress lines ('seed S, NAME: acc A f1 F W s') in it")
        print_tables(f"Read from {options.from_log}, mean ± std over the seeds it holds.", results)
        return
    runs = {name: variants[name] for name in options.variants if name not in options.exclude}
    if options.pairs:
        runs.update(registered_pairs(tuple(options.exclude)))
    runs.update({spec: spec for spec in options.combination})
    if options.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {options.jobs}")
    threads = max(1, (os.cpu_count() or 1) // options.jobs) if options.jobs > 1 else None
    # Seeds outermost: the fits start in this order, so a partial log already compares every variant.
    queue = [(seed, name, tricks) for seed in options.seeds for name, tricks in runs.items()]
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(options.jobs) as pool:

        def fit(index: int, seed: int, name: str, tricks: str) -> None:
            fit_options = ["--model.tricks", tricks, "--seed_everything", str(seed), *extra]
            metrics, wall = timed_fit(Path(scratch) / str(index), fit_options, threads)
            results[name].append((metrics["test/acc"], metrics["test/f1"], wall))
            print(progress_line(seed, name, metrics["test/acc"], metrics["test/f1"], wall), file=sys.stderr, flush=True)

        try:
            for future in [pool.submit(fit, index, *job) for index, job in enumerate(queue)]:
                future.result()
        except BaseException:  # a failed fit (or Ctrl-C) stops the bench with its error, not after the queue
            pool.shutdown(cancel_futures=True)
            raise

    print_tables(f"Options: defaults {' '.join(extra)}; seeds {options.seeds}, mean ± std.", results)


if __name__ == "__main__":
    main()
