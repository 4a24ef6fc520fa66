"""The embedded default with each training trick (same seed, same epochs): test metrics and wall time.

    python bench/tricks.py [--variants none fgm ...] [--combination '{fgm: {}, ema: {}}'] [-- extra fit options]

Each variant runs `python -m project.fit` with `--model.tricks` set to its tricks (the NaN guard stays on in all
but `no_guard`, which measures the guard's own cost), one after another in fresh processes; the Markdown table is
printed at the end. Wall time covers the whole command (model load, fit, validation, test).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fit_runs import extra_options, timed_fit  # noqa: E402
from bench.machine import print_table  # noqa: E402

# The NaN guard is on in every variant (it is on unless switched off); `no_guard` measures what it costs.
VARIANTS = {
    "none": "{}",
    "no_guard": "{nan_guard: false}",
    "fgm": "{fgm: {}}",
    "pgd": "{pgd: {}}",
    "ema": "{ema: {}}",
    "rdrop": "{rdrop: {}}",
    "label_smoothing": "{label_smoothing: {}}",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--combination", action="append", default=[], help="extra model.tricks value to measure")
    options, extra = parser.parse_known_args()
    extra = extra_options(extra)
    runs = [(name, VARIANTS[name]) for name in options.variants] + [(spec, spec) for spec in options.combination]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, (name, tricks) in enumerate(runs):
            metrics, wall = timed_fit(Path(scratch) / str(index), ["--model.tricks", tricks, *extra])
            rows.append((name, metrics["test/acc"], metrics["test/f1"], wall))
            print(f"{name}: acc {metrics['test/acc']:.4f} f1 {metrics['test/f1']:.4f} {wall:.0f} s", file=sys.stderr)
    print_table(
        f"Options: defaults {' '.join(extra)}",
        ["tricks", "test acc", "test macro-F1", "wall time (s)"],
        [[f"`{name}`", f"{accuracy:.4f}", f"{f1:.4f}", f"{wall:.0f}"] for name, accuracy, f1, wall in rows],
    )


if __name__ == "__main__":
    main()
