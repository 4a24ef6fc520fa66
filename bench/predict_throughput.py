"""Prediction texts/s on the embedded default model: this project's batched prediction (length-sorted batches,
fp32 and bf16) vs `transformers.pipeline("text-classification")` (batch 1, its default, and batched).

    python bench/predict_throughput.py [--texts 2000] [--batch-size 64] [--rounds 2]

Same encoder (all-MiniLM-L6-v2) and texts (the first Rotten Tomatoes snippets), max_length 128 for both; the
classification head is freshly initialised on both sides (throughput does not depend on it). Each variant runs
`--rounds` times in alternating order in one process; the table shows the median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import print_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from project.data.builtin import load_dataset
    from project.inference.predictions import predict_scores
    from project.model.encoder import DEFAULT_ENCODER, resolve_pretrained
    from project.training.module import TextClassifier

    texts = [row["text"] for row in load_dataset("rotten_tomatoes")[: options.texts]]
    folder = resolve_pretrained(DEFAULT_ENCODER)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ours = TextClassifier(encoder=DEFAULT_ENCODER, num_labels=2).eval()
    classifier = pipeline(
        "text-classification", model=AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2),
        tokenizer=tokenizer, device="cpu", truncation=True, max_length=128,
    )  # fmt: skip
    size = options.batch_size
    variants = {
        "ours, fp32": lambda: predict_scores(ours, tokenizer, texts, batch_size=size),
        "ours, bf16 autocast": lambda: predict_scores(ours, tokenizer, texts, batch_size=size, precision="bf16"),
        "pipeline, batch 1 (default)": lambda: classifier(texts),
        f"pipeline, batch {size}": lambda: classifier(texts, batch_size=size),
    }
    speeds: dict[str, list[float]] = {name: [] for name in variants}
    with torch.inference_mode():
        classifier(texts[:8])  # warm-up
        predict_scores(ours, tokenizer, texts[:8])
        for round_index in range(options.rounds):
            for name in list(variants) if round_index % 2 == 0 else list(variants)[::-1]:
                start = time.perf_counter()
                variants[name]()
                speeds[name].append(len(texts) / (time.perf_counter() - start))
                print(f"round {round_index}: {name} {speeds[name][-1]:.1f} texts/s", file=sys.stderr)
    medians = {name: statistics.median(values) for name, values in speeds.items()}
    baseline = medians["pipeline, batch 1 (default)"]
    print_table(
        f"{len(texts)} texts, max_length 128, median of {options.rounds} rounds.",
        ["variant", "texts/s", "vs pipeline default"],
        [[name, f"{speed:.1f}", f"{speed / baseline:.2f}×"] for name, speed in medians.items()],
    )


if __name__ == "__main__":
    main()
