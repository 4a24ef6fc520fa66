"""Every registered pooler on the embedded default (same seed and settings, 1 epoch): test metrics and wall time.

    python bench/poolers.py [--poolers mean cls ...] [-- extra fit options]

Each pooler runs `python -m project.fit --model.pooling NAME` in a fresh process, one after another, and the
table is printed in Markdown at the end. Wall time covers the whole command (model load, fit, validation, test).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fit_runs import extra_options, timed_fit  # noqa: E402
from bench.machine import print_table  # noqa: E402
from project.model.pooling import POOLERS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--poolers", nargs="*", default=sorted(POOLERS))
    options, extra = parser.parse_known_args()
    extra = extra_options(extra)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for pooler in options.poolers:
            metrics, wall = timed_fit(Path(scratch) / pooler, ["--model.pooling", pooler, *extra])
            rows.append((pooler, metrics["test/acc"], metrics["test/f1"], wall))
            print(f"{pooler}: acc {metrics['test/acc']:.4f} f1 {metrics['test/f1']:.4f} {wall:.0f} s", file=sys.stderr)
    print_table(
        f"Options: defaults {' '.join(extra)}",
        ["pooler", "test acc", "test macro-F1", "wall time (s)"],
        [[f"`{pooler}`", f"{accuracy:.4f}", f"{f1:.4f}", f"{wall:.0f}"] for pooler, accuracy, f1, wall in rows],
    )


if __name__ == "__main__":
    main()
