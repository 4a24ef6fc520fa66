"""Reading + tokenizing large files: wall time and peak RSS, with a cold and a warm token cache.

    python bench/tokenize_memory.py [--sizes 100000 1000000]

The files are synthesised from the built-in Rotten Tomatoes snippets: row i is snippet (i mod 12,752) with " #i"
appended (so every row is distinct and the file is not a repeat the cache could shortcut), written as CSV.
Each measurement runs `TextDataModule.setup()` (read, validate, split, tokenize or load the cache) in a fresh
process and reports its peak resident memory (`ru_maxrss`), which includes the ~0.6 GB of torch and transformers.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import print_table  # noqa: E402


def synthesise(path: Path, size: int) -> None:
    from project.data.builtin import load_dataset

    snippets = load_dataset("rotten_tomatoes")
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        for index in range(size):
            row = snippets[index % len(snippets)]
            writer.writerow([f"{row['text']} #{index}", row["label"]])


def measure(path: str, cache: str) -> None:
    import os

    os.environ["BERT_TEMPLATE_TOKEN_CACHE"] = cache
    from project.data.datamodule import TextDataModule

    start = time.perf_counter()
    data = TextDataModule(train_file=path)
    data.setup("fit")
    seconds = time.perf_counter() - start
    rows = sum(len(dataset) for dataset in data.datasets.values())
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib, "rows": rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.measure:
        return measure(*options.measure)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in options.sizes:
            path, cache = Path(scratch) / f"texts-{size}.csv", Path(scratch) / f"cache-{size}"
            synthesise(path, size)
            for state in ("cold", "warm"):
                command = [sys.executable, __file__, "--measure", str(path), str(cache)]
                result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
                rows.append((size, state, result))
                print(f"{size} {state}: {result}", file=sys.stderr)
    print_table(
        "Default tokenizer (all-MiniLM-L6-v2), max_length 128.",
        ["texts", "token cache", "setup wall time (s)", "peak RSS (MiB)"],
        [[f"{size:,}", state, f"{result['seconds']:.1f}", f"{result['peak_mib']:.0f}"] for size, state, result in rows],
    )


if __name__ == "__main__":
    main()
