"""Training samples/s on the embedded default model and data: this project vs Hugging Face's Trainer vs a plain
PyTorch loop fed the identical batches. Same batch size, max_length, precision and number of optimizer steps.

    python bench/train_throughput.py [--steps 50] [--warmup 10] [--window 5] [--rounds 2] [--max-length 64]
                                     [--precision bf16-mixed|32-true]   (default: what `fit` picks on this machine)

Each variant trains in a fresh process and times every optimizer step, from one step's start to the next;
samples/s is the median over windows of `--window` steps after `--warmup` steps. Rounds run the variants in
alternating order (this machine is noisy), and the ratios compare medians from the same invocation. Variants:
  ours          `python -m project.fit`'s own Trainer and callbacks (logging every step, NaN guard, LR monitor),
                length-grouped batches (the default)
  ours-shuffled the same with `--data.group_by_length false`
  raw           a hand-written loop over ours' exact batches: autocast, backward, fused AdamW, schedule step
  hf            transformers' Trainer with its defaults and DataCollatorWithPadding (random batches)
  hf-grouped    the same with train_sampling_strategy="group_by_length"
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import print_table  # noqa: E402
from project.training.precision import fastest_precision  # noqa: E402

VARIANTS = ["ours", "ours-shuffled", "raw", "hf", "hf-grouped"]


def fit_args(options, root: Path, grouped: bool) -> list[str]:
    return [
        "--data.max_length", str(options.max_length), "--data.batch_size", str(options.batch_size),
        "--data.group_by_length", str(grouped).lower(), "--trainer.max_steps", str(options.steps),
        "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(root), "--checkpoint.save_top_k", "0",
        "--trainer.precision", options.precision,
    ]  # fmt: skip


def time_ours(options, root: Path, grouped: bool) -> list[float]:
    from lightning.pytorch import Callback

    from project.training.cli import FitCLI

    class StepStarts(Callback):
        def __init__(self):
            self.starts = []

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.starts.append(time.perf_counter())

    cli = FitCLI(args=fit_args(options, root, grouped))
    timer = StepStarts()
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return step_times(timer.starts)


def step_times(starts: list[float]) -> list[float]:
    """From one step's start to the next one's: everything the loop does per step (data, logging, hooks) counts."""
    return [later - earlier for earlier, later in pairwise(starts)]


def time_raw(options, root: Path) -> list[float]:
    import torch

    from project.training.cli import FitCLI

    cli = FitCLI(args=fit_args(options, root, grouped=True))  # the same model and batches as `ours`
    model, data = cli.model, cli.datamodule
    data.setup("fit")
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01, fused=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 10))
    starts = []
    for step, batch in enumerate(data.train_dataloader()):
        starts.append(time.perf_counter())
        if step == options.steps:
            break
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=options.precision == "bf16-mixed"):
            loss, _, _ = model.shared_step(batch)
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    return step_times(starts)


def time_hf(options, root: Path, grouped: bool) -> list[float]:
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )  # fmt: skip

    from project.model.encoder import DEFAULT_ENCODER, resolve_pretrained
    from project.training.cli import FitCLI

    data = FitCLI(args=fit_args(options, root, grouped=False)).datamodule  # the same split and token ids
    data.setup("fit")

    class StepStarts(TrainerCallback):
        def __init__(self):
            self.starts = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.starts.append(time.perf_counter())

    folder = resolve_pretrained(DEFAULT_ENCODER)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=data.num_labels)
    arguments = TrainingArguments(
        output_dir=str(root / "hf"), per_device_train_batch_size=options.batch_size, max_steps=options.steps,
        bf16=options.precision == "bf16-mixed", use_cpu=True, save_strategy="no", report_to=[], disable_tqdm=True,
        logging_steps=1,
        train_sampling_strategy="group_by_length" if grouped else "random", learning_rate=5e-5, warmup_steps=5,
    )  # fmt: skip
    timer = StepStarts()
    trainer = Trainer(
        model=model, args=arguments, train_dataset=data.datasets["train"],
        data_collator=DataCollatorWithPadding(data.tokenizer), callbacks=[timer],
    )  # fmt: skip
    trainer.train()
    return step_times(timer.starts)


def worker(options) -> None:
    root = Path(options.out).parent
    runners = {
        "ours": lambda: time_ours(options, root, grouped=True),
        "ours-shuffled": lambda: time_ours(options, root, grouped=False),
        "raw": lambda: time_raw(options, root),
        "hf": lambda: time_hf(options, root, grouped=False),
        "hf-grouped": lambda: time_hf(options, root, grouped=True),
    }
    Path(options.out).write_text(json.dumps(runners[options.worker]()))


def samples_per_second(times: list[float], options) -> float:
    measured = times[options.warmup :]
    windows = [sum(measured[start : start + options.window]) for start in range(0, len(measured), options.window)]
    windows = [total for total in windows if total > 0][: len(measured) // options.window]
    return options.batch_size * options.window / statistics.median(windows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--precision", choices=["bf16-mixed", "32-true"], default=fastest_precision("cpu")[0])
    parser.add_argument("--variants", nargs="*", default=VARIANTS, choices=VARIANTS)
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        return worker(options)
    results: dict[str, list[float]] = {variant: [] for variant in options.variants}
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(options.rounds):
            order = options.variants if round_index % 2 == 0 else options.variants[::-1]
            for variant in order:
                out = Path(scratch) / f"{variant}-{round_index}" / "times.json"
                out.parent.mkdir()
                command = [sys.executable, __file__, "--worker", variant, "--out", str(out)]
                command += [f"--{key.replace('_', '-')}={value}" for key, value in
                            (("steps", options.steps), ("batch_size", options.batch_size),
                             ("max_length", options.max_length), ("precision", options.precision))]  # fmt: skip
                subprocess.run(command, check=True, capture_output=True)
                speed = samples_per_second(json.loads(out.read_text()), options)
                results[variant].append(speed)
                print(f"round {round_index}: {variant} {speed:.1f} samples/s", file=sys.stderr)
    medians = {variant: statistics.median(speeds) for variant, speeds in results.items()}
    rows = []
    for variant, speed in medians.items():
        rounds = " / ".join(f"{value:.1f}" for value in results[variant])
        versus = [f"{speed / medians[name]:.2f}×" if name in medians else "" for name in ("hf", "hf-grouped")]
        overhead = f"{speed / medians['ours']:.3f}×" if "ours" in medians else ""
        rows.append([f"`{variant}`", f"{speed:.1f}", rounds, *versus, overhead])
    settings = (
        f"Batch {options.batch_size}, max_length {options.max_length}, {options.precision}, {options.steps} optimizer "
        f"steps, median of {options.window}-step windows after {options.warmup}, {options.rounds} alternating rounds."
    )
    columns = ["variant", "samples/s (median)", "per round", "vs `hf`", "vs `hf-grouped`"]
    print_table(settings, [*columns, "`ours` wall per step vs this"], rows)


if __name__ == "__main__":
    main()
