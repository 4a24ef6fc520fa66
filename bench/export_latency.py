"""Latency of the TorchScript export vs the eager model, batch 1 and 32, on the embedded default encoder.

    python bench/export_latency.py [--repeats 30]

Both run the same PooledClassifier (all-MiniLM-L6-v2, mean pooling, fresh head: latency does not depend on the
weights) in fp32 under `torch.inference_mode`, on batches of Rotten Tomatoes snippets padded to their longest text
(max_length 128). The TorchScript module is `project.export.trace`'s, loaded back from disk with `torch.jit.load`.
Each variant runs a warm-up then `--repeats` timed calls, alternating; the table shows medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import print_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    options = parser.parse_args()

    import torch
    from transformers import AutoTokenizer

    from project.data.builtin import load_dataset
    from project.inference.exporters import trace
    from project.model.encoder import DEFAULT_ENCODER, resolve_pretrained
    from project.training.module import TextClassifier

    texts = [row["text"] for row in load_dataset("rotten_tomatoes")[:32]]
    tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained(DEFAULT_ENCODER))
    eager = TextClassifier(encoder=DEFAULT_ENCODER, num_labels=2).eval().plain_model()
    with tempfile.TemporaryDirectory() as folder:
        torch.jit.save(trace(eager, tokenizer, 128), f"{folder}/model.pt")
        scripted = torch.jit.load(f"{folder}/model.pt")
    rows = []
    with torch.inference_mode():
        for size in (1, 32):
            batch = tokenizer(texts[:size], padding=True, truncation=True, max_length=128, return_tensors="pt")
            inputs = (batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            variants = {"eager": eager, "TorchScript": scripted}
            assert torch.allclose(eager(*inputs), scripted(*inputs), atol=1e-5)
            times: dict[str, list[float]] = {name: [] for name in variants}
            for model in variants.values():
                for _ in range(3):
                    model(*inputs)  # warm-up (TorchScript optimises on its first calls)
            for repeat in range(options.repeats):
                for name in list(variants) if repeat % 2 == 0 else list(variants)[::-1]:
                    start = time.perf_counter()
                    variants[name](*inputs)
                    times[name].append(1000 * (time.perf_counter() - start))
            medians = {name: statistics.median(values) for name, values in times.items()}
            for name, milliseconds in medians.items():
                rows.append([
                    str(size), f"{inputs[0].shape[1]}", name, f"{milliseconds:.1f}",
                    f"{medians['eager'] / milliseconds:.2f}×", f"{1000 * size / milliseconds:.0f}",
                ])  # fmt: skip
    print_table(
        f"fp32, median of {options.repeats} calls.",
        ["batch", "tokens", "model", "ms per batch", "speed-up", "texts/s"],
        rows,
    )


if __name__ == "__main__":
    main()
