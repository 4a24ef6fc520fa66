"""Training samples/s on the embedded default model and data: this project vs Hugging Face's Trainer vs a plain
PyTorch loop fed the identical batches. Same batch size, max_length, precision and number of optimizer steps.

    python bench/train_throughput.py [--steps 30] [--warmup 10] [--window 5] [--rounds 6] [--max-length 64]
                                     [--precision bf16-mixed|32-true] [--profile]
                                     (precision default: what `fit` picks on this machine)

Each variant trains in a fresh process and times every optimizer step, from one step's start to the next;
samples/s is the median over windows of `--window` steps after `--warmup` steps. Many short rounds run the variants
in alternating order (this machine is noisy); the ratios to `raw` and `hf` are computed round by round (each pair
ran back to back) and shown as the median with the range. Model FLOP/s counts each measured step's FLOPs with
torch's FlopCounterMode at that step's batch shape (`bench/flops.py`), and MFU divides it by the GEMM peak this
script measures on the same machine, in the same dtype, at the model's dominant matmul shapes. `--profile` adds the
share of `ours`' CPU time spent in matrix multiplications and the largest other ops, and a per-step table of
what `ours` spends that `raw` does not, op by op, plus the wall time outside any torch op (Python, hooks). Variants:
  ours          `python -m project.fit`'s own Trainer and callbacks (logging every step, NaN guard, LR monitor),
                length-grouped batches (the default)
  ours-shuffled the same with `--data.group_by_length false`
  ours-fused-attention  the same with `--model.encoder_options.attention_dropout 0`: without attention dropout, torch's
                scaled_dot_product_attention takes its fused CPU kernel instead of the math path (a model change:
                MiniLM was pretrained with attention dropout 0.1)
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

from bench.flops import StepFlops, WindowProfile, by_category, gemm_peak, matmul_share, per_step  # noqa: E402
from bench.machine import print_table  # noqa: E402
from project.training.precision import fastest_precision  # noqa: E402

VARIANTS = ["ours", "ours-shuffled", "ours-fused-attention", "raw", "hf", "hf-grouped"]
PROFILED = ("ours", "raw")  # --profile: their first rounds


def fit_args(options, root: Path, grouped: bool) -> list[str]:
    return [
        "--data.max_length", str(options.max_length), "--data.batch_size", str(options.batch_size),
        "--data.group_by_length", str(grouped).lower(), "--trainer.max_steps", str(options.steps),
        "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(root), "--checkpoint.save_top_k", "0",
        "--trainer.precision", options.precision,
    ]  # fmt: skip


def time_ours(options, root: Path, grouped: bool, extra: tuple[str, ...] = ()) -> list[float]:
    from lightning.pytorch import Callback

    from project.training.cli import FitCLI

    class StepStarts(Callback):
        def __init__(self):
            self.starts, self.shapes = [], []
            self.profile = WindowProfile(options.warmup, options.window) if options.profile else None

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.starts.append(time.perf_counter())
            self.shapes.append(list(batch["input_ids"].shape))
            if self.profile is not None:
                self.profile.at(batch_idx)

    cli = FitCLI(args=[*fit_args(options, root, grouped), *extra])
    timer = StepStarts()
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    profile = timer.profile.result if timer.profile else {}
    return measured(step_times(timer.starts), timer.shapes, classifier_step(cli.model, options), profile)


def classifier_step(model, options):
    """`StepFlops` of our model: a training step's loss on a batch of that shape, under the run's precision."""
    import torch

    def step(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=options.precision == "bf16-mixed"):
            return model.shared_step(batch)[0]

    model.train()
    return StepFlops(step, synthetic_batch)


def synthetic_batch(batch_size: int, length: int) -> dict:
    """A batch of that shape for counting FLOPs (the count depends on the shape only)."""
    import torch

    ids = torch.randint(1000, 2000, (batch_size, length))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids),
            "labels": torch.zeros(batch_size, dtype=torch.long)}  # fmt: skip


def measured(times: list[float], shapes: list[list[int]], flops: StepFlops, profile: dict | None = None) -> dict:
    """The worker's answer: each step's wall time and FLOPs (step i runs from start i to start i+1), and the
    `WindowProfile` result with --profile."""
    counted = [flops(*shape) for shape in shapes[: len(times)]]
    return {"times": times, "flops": counted, "shapes": shapes[: len(times)], "profile": profile or {}}


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
    starts, shapes = [], []
    profile = WindowProfile(options.warmup, options.window) if options.profile else None
    for step, batch in enumerate(data.train_dataloader()):
        starts.append(time.perf_counter())
        shapes.append(list(batch["input_ids"].shape))
        if profile is not None:
            profile.at(step)
        if step == options.steps:
            break
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=options.precision == "bf16-mixed"):
            loss, _, _ = model.shared_step(batch)
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    return measured(step_times(starts), shapes, classifier_step(model, options), profile.result if profile else {})


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
    collate, shapes = DataCollatorWithPadding(data.tokenizer), []

    def recording(features):  # the shape of every batch the Trainer trains on
        batch = collate(features)
        shapes.append(list(batch["input_ids"].shape))
        return batch

    trainer = Trainer(
        model=model, args=arguments, train_dataset=data.datasets["train"], data_collator=recording, callbacks=[timer],
    )  # fmt: skip
    trainer.train()
    import torch

    def step(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=options.precision == "bf16-mixed"):
            return model(**batch).loss

    return measured(step_times(timer.starts), shapes, StepFlops(step, synthetic_batch))


def worker(options) -> None:
    root = Path(options.out).parent
    runners = {
        "ours": lambda: time_ours(options, root, grouped=True),
        "ours-shuffled": lambda: time_ours(options, root, grouped=False),
        "ours-fused-attention": lambda: time_ours(
            options, root, True, ("--model.encoder_options.attention_dropout", "0")
        ),
        "raw": lambda: time_raw(options, root),
        "hf": lambda: time_hf(options, root, grouped=False),
        "hf-grouped": lambda: time_hf(options, root, grouped=True),
    }
    Path(options.out).write_text(json.dumps(runners[options.worker]()))


def window_rates(result: dict, options) -> tuple[float, float]:
    """(samples/s, model FLOP/s): medians over windows of `--window` steps after `--warmup`."""
    times, flops = result["times"][options.warmup :], result["flops"][options.warmup :]
    spans = range(0, len(times) - options.window + 1, options.window)
    seconds = [sum(times[start : start + options.window]) for start in spans]
    work = [sum(flops[start : start + options.window]) for start in spans]
    samples = statistics.median(options.batch_size * options.window / total for total in seconds)
    return samples, statistics.median(w / total for w, total in zip(work, seconds, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--precision", choices=["bf16-mixed", "32-true"], default=fastest_precision("cpu")[0])
    parser.add_argument("--variants", nargs="*", default=VARIANTS, choices=VARIANTS)
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help="profile ours' steps: matmul share of CPU time")
    options = parser.parse_args()
    if options.worker:
        return worker(options)
    results: dict[str, list[tuple[float, float]]] = {variant: [] for variant in options.variants}
    shapes, profiles = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(options.rounds):
            order = options.variants if round_index % 2 == 0 else options.variants[::-1]
            for variant in order:
                out = Path(scratch) / f"{variant}-{round_index}" / "times.json"
                out.parent.mkdir()
                command = [sys.executable, __file__, "--worker", variant, "--out", str(out)]
                command += [f"--{key.replace('_', '-')}={value}" for key, value in
                            (("steps", options.steps), ("batch_size", options.batch_size),
                             ("max_length", options.max_length), ("precision", options.precision),
                             ("warmup", options.warmup), ("window", options.window))]  # fmt: skip
                command += ["--profile"] if options.profile and variant in PROFILED and variant not in profiles else []
                subprocess.run(command, check=True, capture_output=True)
                result = json.loads(out.read_text())
                results[variant].append(window_rates(result, options))
                shapes += result["shapes"] if variant == "ours" else []
                if result["profile"]:
                    profiles[variant] = result["profile"]
                print(f"round {round_index}: {variant} {results[variant][-1][0]:.1f} samples/s", file=sys.stderr)
    print_results(options, results, shapes, profiles)


def print_results(options, results: dict, shapes: list, profiles: dict) -> None:
    import torch

    dtype = torch.bfloat16 if options.precision == "bf16-mixed" else torch.float32
    tokens = options.batch_size * int(statistics.median(shape[1] for shape in shapes)) if shapes else 2048
    peak = gemm_peak(tokens, 384, dtype)  # MiniLM's hidden size; 4x it for the feed-forward matmuls
    medians = {variant: statistics.median(speed for speed, _ in rounds) for variant, rounds in results.items()}
    rows = []
    for variant, rounds in results.items():
        flops = statistics.median(rate for _, rate in rounds)
        ratios = []
        for name in ("raw", "hf"):  # round by round: each round's pair ran back to back
            if name in results and name != variant:
                per_round = [ours[0] / other[0] for ours, other in zip(rounds, results[name], strict=True)]
                ratios.append(f"{statistics.median(per_round):.3f}× ({min(per_round):.2f}–{max(per_round):.2f})")
            else:
                ratios.append("")
        rows.append([
            f"`{variant}`", f"{medians[variant]:.1f}", " / ".join(f"{speed:.1f}" for speed, _ in rounds),
            f"{flops / 1e9:.0f}", f"{flops / peak:.0%}", *ratios,
        ])  # fmt: skip
    settings = (
        f"Batch {options.batch_size}, max_length {options.max_length}, {options.precision}, {options.steps} optimizer "
        f"steps, median of {options.window}-step windows after {options.warmup}, {options.rounds} alternating rounds. "
        f"GEMM peak measured here in {str(dtype).removeprefix('torch.')} at {tokens} tokens x 384 x (384 | 1536): "
        f"{peak / 1e9:.0f} GFLOP/s."
    )
    columns = ["variant", "samples/s (median)", "per round", "model GFLOP/s", "MFU vs GEMM peak"]
    print_table(settings, [*columns, "this / `raw`, by round (range)", "this / `hf`, by round (range)"], rows)
    if "ours" in profiles:
        shown = ", ".join(f"{name} {share:.0%}" for name, share in matmul_share(profiles["ours"]).items())
        print(f"\nProfile of `ours`, {options.window} steps after {options.warmup} (self CPU time): {shown}")
    if {"ours", "raw"} <= profiles.keys():
        ours, raw = per_step(profiles["ours"]), per_step(profiles["raw"])
        print_categories(options, by_category(ours), by_category(raw))
        print_difference(options, ours, raw)


def print_categories(options, ours: dict[str, float], raw: dict[str, float]) -> None:
    """Where a step's time goes, for `ours` and `raw`: matmuls against the rest."""
    total_ours, total_raw = sum(ours.values()), sum(raw.values())
    rows = [[name, f"{1e3 * ours[name]:.1f}", f"{ours[name] / total_ours:.0%}", f"{1e3 * raw[name]:.1f}",
             f"{raw[name] / total_raw:.0%}"] for name in ours]  # fmt: skip
    rows.append(["all (wall per step)", f"{1e3 * total_ours:.1f}", "100%", f"{1e3 * total_raw:.1f}", "100%"])
    print()
    print_table(
        f"Where a step's time goes: {options.window} profiled steps after {options.warmup}, self CPU time by op "
        "category, ms per step (`bench/flops.py` CATEGORIES).",
        ["category", "`ours` ms", "`ours` share", "`raw` ms", "`raw` share"],
        rows,
    )


def print_difference(options, ours: dict[str, float], raw: dict[str, float], shown: int = 12) -> None:
    """What `ours` spends per step that `raw` does not, op by op (the first round's profiles of each)."""
    names = sorted(ours.keys() | raw.keys(), key=lambda name: -abs(ours.get(name, 0.0) - raw.get(name, 0.0)))
    rows = [[f"`{name}`", f"{1e3 * ours.get(name, 0.0):.2f}", f"{1e3 * raw.get(name, 0.0):.2f}",
             f"{1e3 * (ours.get(name, 0.0) - raw.get(name, 0.0)):+.2f}"] for name in names[:shown]]  # fmt: skip
    total_ours, total_raw = (sum(v for k, v in side.items() if k != "matmuls") for side in (ours, raw))
    rows.append(["all (wall per step)", f"{1e3 * total_ours:.1f}", f"{1e3 * total_raw:.1f}",
                 f"{1e3 * (total_ours - total_raw):+.1f}"])  # fmt: skip
    print()
    print_table(
        f"Per step, {options.window} profiled steps after {options.warmup}, ms; largest differences first "
        "(`matmuls` sums the matrix multiplications above; `outside ops` is wall time in no torch op).",
        ["op", "`ours`", "`raw`", "ours − raw"],
        rows,
    )


if __name__ == "__main__":
    main()
