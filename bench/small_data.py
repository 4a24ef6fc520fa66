"""Small data: the automatic training budget against the old one-epoch default and the TF-IDF baseline.

    python bench/small_data.py [--sizes 500 1000] [--seeds 42] [--imbalance 9] [--runs auto reinit2 ...]
                               [-- extra fit options]

Rotten Tomatoes' seed-42 split (the built-in data) gives the val and test files; the train file is a seeded random
subsample of its train split. Each size, seed and run (`RUNS`) is a fit in a fresh process. By default the runs are
`auto` (no budget set: the automatic rule, the fewest epochs, 1 to 30, that give 300 optimizer steps) and
`one-epoch` (`--trainer.max_epochs 1`, the default before the rule). The TF-IDF baseline is the one each run reports
beside its own metrics (same splits). With `--imbalance R` the subsample has R times as many `fresh` as `rotten`
rows, and the default runs are the automatic budget with and without balanced class weights, compared by macro-F1.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fit_runs import extra_options, timed_fit  # noqa: E402
from bench.machine import print_table  # noqa: E402

# The runs --runs picks from, by key: (its name in the table, the fit options it adds).
RUNS = {
    "auto": ("automatic", []),
    "one-epoch": ("one epoch (old default)", ["--trainer.max_epochs", "1"]),
    "reinit2": ("automatic, top 2 layers re-initialised", ["--model.encoder_options.reinit_top_layers", "2"]),
    "early-stop": ("automatic, early stopping on val/acc", ["--model.tricks", "{early_stopping: {monitor: val/acc}}"]),
    "val-acc": (
        "automatic, best checkpoint by val/acc",
        ["--checkpoint.monitor", "val/acc", "--checkpoint.mode", "max"],
    ),
    "llrd": ("automatic, layer decay 0.9", ["--model.optimization.layer_decay", "0.9"]),
    "head-lr": ("automatic, head lr 1e-3", ["--model.optimization.head_learning_rate", "1e-3"]),
    "balanced": ("automatic, balanced class weights", ["--model.task_options", "{class_weights: balanced}"]),
    "focal": ("automatic, focal loss (gamma 2)", ["--model.task_options", "{focal_gamma: 2}"]),
    "balanced-f1": (
        "automatic, balanced class weights, best checkpoint by val/f1",
        [
            "--model.task_options",
            "{class_weights: balanced}",
            "--checkpoint.monitor",
            "val/f1",
            "--checkpoint.mode",
            "max",
        ],
    ),
}


def write(path: Path, texts: list[str], labels: list[str]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", type=int, default=[500, 1000])
    parser.add_argument("--seeds", nargs="*", type=int, default=[42])
    parser.add_argument("--imbalance", type=float, default=None, help="fresh:rotten ratio of the subsample")
    parser.add_argument("--runs", nargs="*", choices=sorted(RUNS), default=None,
                        help="default: auto one-epoch; with --imbalance: auto balanced")  # fmt: skip
    options, extra = parser.parse_known_args()
    extra = extra_options(extra)
    runs = options.runs or (["auto", "balanced"] if options.imbalance else ["auto", "one-epoch"])
    from project.data.datamodule import TextDataModule

    splits = TextDataModule(seed=42).splits
    results: dict[tuple[int, str], list] = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        val = write(scratch / "val.csv", splits["val"].read_texts(), splits["val"].labels)
        test = write(scratch / "test.csv", splits["test"].read_texts(), splits["test"].labels)
        train_texts = splits["train"].read_texts()
        for size in options.sizes:
            for seed in options.seeds:
                rows = subsample(splits["train"].labels, size, seed, options.imbalance)
                train = write(scratch / f"train-{size}-{seed}.csv", [train_texts[i] for i in rows],
                              [splits["train"].labels[i] for i in rows])  # fmt: skip
                data = ["--data.train_file", str(train), "--data.val_file", str(val), "--data.test_file", str(test),
                        "--seed_everything", str(seed)]  # fmt: skip
                for key in runs:
                    budget, budget_options = RUNS[key]
                    root = scratch / f"runs-{size}-{seed}-{key}"
                    metrics, wall = timed_fit(root, [*data, *budget_options, *extra])
                    results.setdefault((size, budget), []).append((metrics, wall))
                    print(f"{size} rows, seed {seed}, {budget}: {metrics} in {wall:.0f} s", file=sys.stderr)

    def mean_std(values: list[float]) -> str:
        spread = f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else ""
        return f"{100 * statistics.mean(values):.1f}%{spread}"

    table = []
    for (size, budget), fits in results.items():
        table.append([
            f"{size:,}", budget, mean_std([m["test/acc"] for m, _ in fits]), mean_std([m["test/f1"] for m, _ in fits]),
            mean_std([m["baseline/test/acc"] for m, _ in fits]), f"{statistics.mean(w for _, w in fits):.0f} s",
        ])  # fmt: skip
    imbalance = f", train subsample {options.imbalance:g}:1 fresh:rotten" if options.imbalance else ""
    print_table(
        f"Rotten Tomatoes subsamples{imbalance}, the built-in val/test splits, seeds {options.seeds}; mean ± std.",
        ["train rows", "run", "test accuracy", "test macro-F1", "TF-IDF accuracy", "wall"],
        table,
    )


def subsample(labels: list[str], size: int, seed: int, imbalance: float | None) -> list[int]:
    """`size` seeded random rows of the train split; with `imbalance`, that many `fresh` rows per `rotten` one."""
    generator = random.Random(seed)
    if not imbalance:
        return generator.sample(range(len(labels)), size)
    by_label = {name: [i for i, label in enumerate(labels) if label == name] for name in ("fresh", "rotten")}
    rare = round(size / (imbalance + 1))
    return sorted(generator.sample(by_label["fresh"], size - rare) + generator.sample(by_label["rotten"], rare))


if __name__ == "__main__":
    main()
