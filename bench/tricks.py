"""The embedded default with each training trick, and with pairs of them (same split, same budget): test metrics
over seeds, and wall time.

    python bench/tricks.py [--variants none fgm ...] [--pairs] [--combination '{fgm: {}, ema: {decay: 0.99}}']
                           [--seeds 1 2 3] [--jobs 2] [-- extra fit options]

Each run is `python -m project.fit --model.tricks <tricks> --seed_everything <seed>` in a fresh process (the NaN
guard stays on unless a variant switches it off: `no_guard` measures its cost). `--variants` defaults to `none` and
every registered trick at its default options; `--pairs` adds every pair of registered tricks that may run together
(the registry decides: two of one exclusive group, such as fgm and pgd, are not a pair); `--exclude` leaves tricks
out of both, for example `early_stopping` at a one-epoch budget, where it never fires and each of its runs repeats
its partner's bit for bit. The table shows the mean ±
std over seeds of test accuracy and macro-F1, and the mean wall time of the whole command. `--jobs N` runs N fits at
a time, each with cores / N threads: on 2 cores two 1-thread fits finish about as many runs per hour as one 2-thread
fit, and wall times are then those of a 1-thread fit sharing the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fit_runs import extra_options, timed_fit  # noqa: E402
from bench.machine import print_table  # noqa: E402


def registered_variants() -> dict[str, str]:
    from project.tricks import TRICKS

    variants = {"none": "{}", "no_guard": "{nan_guard: false}"}
    variants.update({name: f"{{{name}: {{}}}}" for name in sorted(TRICKS) if name != "nan_guard"})
    return variants


def registered_pairs(excluded: tuple[str, ...] = ()) -> dict[str, str]:
    from project.tricks import TRICKS
    from project.tricks.base import compatible_pairs

    names = [name for name in TRICKS if name != "nan_guard" and name not in excluded]  # the guard is on in every run
    return {f"{first} + {second}": f"{{{first}: {{}}, {second}: {{}}}}" for first, second in compatible_pairs(names)}


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
    options, extra = parser.parse_known_args()
    extra = extra_options(extra)
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
            print(f"seed {seed}, {name}: acc {metrics['test/acc']:.4f} f1 {metrics['test/f1']:.4f} {wall:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip

        try:
            for future in [pool.submit(fit, index, *job) for index, job in enumerate(queue)]:
                future.result()
        except BaseException:  # a failed fit (or Ctrl-C) stops the bench with its error, not after the queue
            pool.shutdown(cancel_futures=True)
            raise

    def spread(values: list[float]) -> str:
        deviation = f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else ""
        return f"{100 * statistics.mean(values):.1f}%{deviation}"

    print_table(
        f"Options: defaults {' '.join(extra)}; seeds {options.seeds}, mean ± std.",
        ["tricks", "test acc", "test macro-F1", "wall time (s)"],
        [[f"`{name}`", spread([r[0] for r in rows]), spread([r[1] for r in rows]),
          f"{statistics.mean(r[2] for r in rows):.0f}"] for name, rows in results.items()],
    )  # fmt: skip


if __name__ == "__main__":
    main()
