"""Reading + tokenizing large files: wall time and peak RSS, with a cold and a warm token cache.

    python bench/tokenize_memory.py [--sizes 100000 1000000] [--snippets-per-text 1] [--truncation head]

The files are synthesised from the built-in Rotten Tomatoes snippets: row i is snippet (i mod 12,752) with " #i"
appended (so every row is distinct and the file is not a repeat the cache could shortcut), written as CSV; with
`--snippets-per-text K`, row i is the K snippets from i*K on, joined (K = 80 gives documents of about 2,000 tokens,
long documents for `--truncation` head, tail, head_tail or chunks).
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


def synthesise(path: Path, size: int, per_text: int = 1) -> None:
    from project.data.builtin import load_dataset

    snippets = load_dataset("rotten_tomatoes")
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        for index in range(size):
            rows = [snippets[(index * per_text + k) % len(snippets)] for k in range(per_text)]
            writer.writerow([" ".join(row["text"] for row in rows) + f" #{index}", rows[0]["label"]])


def folder_mib(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2**20


def measure(path: str, cache: str, truncation: str) -> None:
    import os

    os.environ["BERT_TEMPLATE_TOKEN_CACHE"] = cache
    from project.data.datamodule import TextDataModule

    start = time.perf_counter()
    data = TextDataModule(train_file=path, truncation=truncation)
    data.setup("fit")
    seconds = time.perf_counter() - start
    rows = sum(len(dataset) for dataset in data.datasets.values())
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib, "rows": rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--snippets-per-text", type=int, default=1)
    parser.add_argument("--truncation", default="head", choices=["head", "tail", "head_tail", "chunks"])
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.measure:
        return measure(*options.measure)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in options.sizes:
            path, cache = Path(scratch) / f"texts-{size}.csv", Path(scratch) / f"cache-{size}"
            synthesise(path, size, options.snippets_per_text)
            for state in ("cold", "warm"):
                command = [sys.executable, __file__, "--measure", str(path), str(cache), options.truncation]
                result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
                result |= {"file_mib": path.stat().st_size / 2**20, "cache_mib": folder_mib(cache)}
                rows.append((size, state, result))
                print(f"{size} {state}: {result}", file=sys.stderr)
    print_table(
        f"Default tokenizer (all-MiniLM-L6-v2), max_length 128, truncation {options.truncation}, "
        f"{options.snippets_per_text} snippet(s) a text.",
        ["texts", "token cache", "setup wall time (s)", "peak RSS (MiB)", "file (MiB)", "token cache on disk (MiB)"],
        [
            [
                f"{size:,}",
                state,
                f"{result['seconds']:.1f}",
                f"{result['peak_mib']:.0f}",
                f"{result['file_mib']:.0f}",
                f"{result['cache_mib']:.0f}",
            ]  # fmt: skip
            for size, state, result in rows
        ],
    )


if __name__ == "__main__":
    main()
