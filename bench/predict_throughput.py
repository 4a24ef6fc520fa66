"""Prediction texts/s and test accuracy of every way to run a fine-tuned model: this project's eager prediction
(fp32, and bf16 autocast where the CPU computes bf16), the TorchScript export, the ONNX export in fp32 and with
dynamic int8 quantization (onnxruntime), the ONNX export `--optimize` chose on this machine (its backend and
settings), and `transformers.pipeline("text-classification")` (batch 1, its default, and batched).

    python bench/predict_throughput.py --checkpoint RUN/checkpoints/best-...ckpt [--texts 1275] [--batch-size 64]
                                       [--rounds 3]

The texts are the built-in data's seed-42 test split (the default fit's), so each variant's accuracy is the
checkpoint's test accuracy as that variant computes it. The pipeline runs the same encoder with a freshly
initialised sequence-classification head (its head differs from ours, so only its speed is comparable; its accuracy
is not shown). Each variant runs `--rounds` times, the order alternating between rounds, in one process; the table
shows the median, every round's figure, and the ratio to ours in fp32 and to the batched pipeline.
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
    parser.add_argument("--checkpoint", required=True, help="a project.fit checkpoint of the default model")
    parser.add_argument("--texts", type=int, default=None, help="the first N test texts (default: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from project.data.datamodule import TextDataModule
    from project.inference.batching import batched_outputs
    from project.inference.checkpoint import load_trained
    from project.inference.exporters import TORCHSCRIPT_FILE, export
    from project.inference.onnx_predict import OnnxClassifier
    from project.inference.predictions import predict_scores
    from project.model.encoder import from_pretrained, resolve_pretrained
    from project.model.families import MODEL_INPUTS, takes_segments
    from project.training.precision import fastest_precision

    model, max_length = load_trained(options.checkpoint)
    max_length = max_length or 128
    test = TextDataModule(seed=42).splits["test"]
    texts, labels = test.read_texts()[: options.texts], test.labels[: options.texts]
    truth = torch.tensor([model.hparams.label_names.index(label) for label in labels])
    tokenizer = from_pretrained(AutoTokenizer, model.hparams.encoder)
    size = options.batch_size
    scratch = Path(tempfile.mkdtemp())
    for name, extra in (("ts", {"format": "torchscript"}), ("onnx", {"format": "onnx"}),
                        ("int8", {"format": "onnx", "quantize": "int8"}),
                        ("optimized", {"format": "onnx", "optimize": True})):  # fmt: skip
        export(checkpoint=options.checkpoint, output=str(scratch / name), **extra)
    traced = torch.jit.load(str(scratch / "ts" / TORCHSCRIPT_FILE))
    onnx_fp32, onnx_int8 = OnnxClassifier(scratch / "onnx"), OnnxClassifier(scratch / "int8")
    optimized = OnnxClassifier(scratch / "optimized")  # what its runtime card chose
    folder = resolve_pretrained(model.hparams.encoder)
    classifier = pipeline(
        "text-classification", model=AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2),
        tokenizer=tokenizer, device="cpu", truncation=True, max_length=max_length,
    )  # fmt: skip

    def torchscript():
        def compute(batch):  # batched_outputs sends what the encoder takes: the traced graph's inputs
            return traced(*(batch[name] for name in MODEL_INPUTS if name in batch)).softmax(-1)

        segments = takes_segments(model.encoder.config)
        return batched_outputs(compute, tokenizer, texts, segments=segments, batch_size=size, max_length=max_length)

    variants = {
        "ours, eager fp32": lambda: predict_scores(model, tokenizer, texts, batch_size=size, max_length=max_length),
        "TorchScript fp32": torchscript,
        "ONNX fp32 (onnxruntime)": lambda: torch.from_numpy(onnx_fp32.scores(texts, batch_size=size)),
        "ONNX int8 dynamic (onnxruntime)": lambda: torch.from_numpy(onnx_int8.scores(texts, batch_size=size)),
        f"ONNX --optimize choice ({optimized.settings.describe()})": lambda: torch.from_numpy(
            optimized.scores(texts, batch_size=size)
        ),
        "pipeline, batch 1 (default)": lambda: classifier(texts),
        f"pipeline, batch {size}": lambda: classifier(texts, batch_size=size),
    }
    if fastest_precision("cpu")[0] == "bf16-mixed":
        variants["ours, eager bf16 autocast"] = lambda: predict_scores(
            model, tokenizer, texts, batch_size=size, max_length=max_length, precision="bf16"
        )
    speeds: dict[str, list[float]] = {name: [] for name in variants}
    accuracy: dict[str, float] = {}
    with torch.inference_mode():
        for run in variants.values():  # warm-up: first calls allocate and pick kernels
            run() if run is not variants["pipeline, batch 1 (default)"] else classifier(texts[:8])
        for round_index in range(options.rounds):
            for name in list(variants) if round_index % 2 == 0 else list(variants)[::-1]:
                start = time.perf_counter()
                result = variants[name]()
                speeds[name].append(len(texts) / (time.perf_counter() - start))
                if not name.startswith("pipeline"):
                    accuracy[name] = float((result.argmax(-1) == truth).float().mean())
                print(f"round {round_index}: {name} {speeds[name][-1]:.1f} texts/s", file=sys.stderr)
    medians = {name: statistics.median(values) for name, values in speeds.items()}
    eager, batched = medians["ours, eager fp32"], medians[f"pipeline, batch {size}"]
    print_table(
        f"{len(texts)} test texts, max_length {max_length}, batch {size}, median of {options.rounds} alternating "
        f"rounds; checkpoint {options.checkpoint}.",
        ["variant", "texts/s (median)", "per round", "vs ours fp32", f"vs pipeline batch {size}", "test accuracy"],
        [[name, f"{speed:.1f}", " / ".join(f"{value:.0f}" for value in speeds[name]), f"{speed / eager:.2f}×",
          f"{speed / batched:.2f}×", f"{100 * accuracy[name]:.2f}%" if name in accuracy else "n/a (untrained head)"]
         for name, speed in medians.items()],
    )  # fmt: skip


if __name__ == "__main__":
    main()
