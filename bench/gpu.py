"""Training throughput and MFU on a GPU: bert-base (random init: throughput does not depend on the weights), sequence
length 128, batch 32 and 64, bf16-mixed; ours (TextClassifier under Lightning's Trainer) vs a raw loop over the
same module vs Hugging Face's Trainer, each with and without `torch.compile`; then the FSDP weight-decay check.

    python bench/gpu.py [--config bert-base|tiny] [--batch-sizes 32 64] [--length 128] [--steps 40] [--warmup 10]
                        [--precision bf16-mixed] [--compile both|off|on] [--device cuda]
                        [--variable-lengths]

Every variant trains on the same synthetic batches (random token ids, full attention mask, fixed shape), so the
FLOPs per step are the same: counted once with FlopCounterMode (`bench/flops.py`). MFU divides model FLOP/s by the
GPU's dense bf16 peak from its data sheet when the name is known (below), and by a GEMM peak measured here in any
case. The FSDP check builds the optimizer under FSDP (one process) and under the default strategy and compares the
numbers of parameters in weight-decay and no-decay groups: FSDP hands `configure_optimizers` flattened shards,
which a rule that skips 1-D tensors would leave all without decay (docs/distributed.md).

`--variable-lengths` gives each row a random real length (length/4 to length) padded to `--length`, so the table's
padding share column is not 0; the FLOPs (and MFU) count the padded shape, as the efficiency card of a fit does
(`project/training/efficiency.py`). The encoder runs torch's SDPA attention (transformers' default for BERT).

On a CPU (`--config tiny --device cpu --precision 32-true --compile off`) it runs in seconds; the tests do that.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.flops import StepFlops, gemm_peak  # noqa: E402
from bench.machine import print_table  # noqa: E402

# Dense bf16 tensor-core peaks (FLOP/s, no sparsity) from the vendors' data sheets, by a substring of the device name.
DENSE_BF16_PEAK = {
    "H200": 989e12, "H100 SXM": 989e12, "H100 PCIe": 756e12, "H100": 756e12, "A100": 312e12, "L40S": 362e12,
    "L4": 121e12, "A10G": 70e12, "A10": 125e12, "RTX 4090": 165e12, "RTX 3090": 71e12, "V100": 125e12,
}  # fmt: skip
CONFIGS = {
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
}


def write_encoder(folder: Path, config: str) -> Path:
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=30522, max_position_embeddings=512, **CONFIGS[config])).save_pretrained(folder)
    return folder


def batches(batch_size: int, length: int, count: int, variable: bool = False) -> list[dict]:
    """Random token ids of one shape; `variable`: each row's real length drawn from length/4 to length, the rest
    padding (the mask's zeros), as a length-grouped loader of real texts still leaves some."""
    import torch

    generator = torch.Generator().manual_seed(0)
    made = []
    for _ in range(count):
        ids = torch.randint(1000, 30000, (batch_size, length), generator=generator)
        mask = torch.ones_like(ids)
        if variable:
            real = torch.randint(max(2, length // 4), length + 1, (batch_size, 1), generator=generator)
            mask = (torch.arange(length) < real).long()
            ids = ids * mask
        made.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids),
                     "labels": torch.randint(0, 2, (batch_size,), generator=generator)})  # fmt: skip
    return made


def padding_share(data: list[dict]) -> float:
    real = sum(int(batch["attention_mask"].sum()) for batch in data)
    return 1 - real / sum(batch["attention_mask"].numel() for batch in data)


def new_module(folder: Path):
    from project.training.module import TextClassifier

    return TextClassifier(encoder=str(folder), num_labels=2, label_names=["a", "b"], optimization={"warmup": 0.1})


def time_ours(folder, data, options, compiled: bool) -> list[float]:
    import torch
    from lightning.pytorch import Callback, Trainer

    class StepStarts(Callback):
        def __init__(self):
            self.starts = []

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if options.device != "cpu":
                torch.cuda.synchronize()
            self.starts.append(time.perf_counter())

    module = new_module(folder)
    timer = StepStarts()
    trainer = Trainer(
        accelerator="gpu" if options.device != "cpu" else "cpu", devices=1, precision=options.precision,
        max_steps=len(data) - 1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[timer], limit_val_batches=0,
    )  # fmt: skip
    loader = torch.utils.data.DataLoader(data, batch_size=None)
    trainer.fit(torch.compile(module) if compiled else module, train_dataloaders=loader)
    return differences(timer.starts)


def time_raw(folder, data, options, compiled: bool) -> list[float]:
    import torch

    module = new_module(folder).to(options.device).train()
    forward = torch.compile(module) if compiled else module
    optimizer = torch.optim.AdamW(module.parameters(), lr=5e-5, weight_decay=0.01, fused=options.device != "cpu")
    kind = "cuda" if options.device != "cpu" else "cpu"
    starts = []
    for batch in data:
        if options.device != "cpu":
            torch.cuda.synchronize()
        starts.append(time.perf_counter())
        batch = {key: value.to(options.device, non_blocking=True) for key, value in batch.items()}
        with torch.autocast(kind, dtype=torch.bfloat16, enabled=options.precision == "bf16-mixed"):
            logits = forward(**{key: value for key, value in batch.items() if key != "labels"})
            loss = module.task.loss(logits, batch["labels"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return differences(starts)


def time_hf(folder, data, options, compiled: bool) -> list[float] | None:
    try:
        import accelerate  # noqa: F401  (the HF Trainer needs it: pip install -e ".[bench]")
    except ModuleNotFoundError:
        return None
    import torch
    from transformers import AutoModelForSequenceClassification, Trainer, TrainerCallback, TrainingArguments

    class StepStarts(TrainerCallback):
        def __init__(self):
            self.starts = []

        def on_step_begin(self, args, state, control, **kwargs):
            if options.device != "cpu":
                torch.cuda.synchronize()
            self.starts.append(time.perf_counter())

    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    rows = [{key: value[i] for key, value in batch.items()} for batch in data for i in range(len(batch["labels"]))]
    timer = StepStarts()
    arguments = TrainingArguments(
        output_dir=str(folder / "hf"), per_device_train_batch_size=len(data[0]["labels"]), max_steps=len(data) - 1,
        bf16=options.precision == "bf16-mixed", use_cpu=options.device == "cpu", save_strategy="no", report_to=[],
        disable_tqdm=True, torch_compile=compiled, dataloader_drop_last=True,
    )  # fmt: skip
    Trainer(model=model, args=arguments, train_dataset=rows, callbacks=[timer]).train()
    return differences(timer.starts)


def differences(starts: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]


def step_flops(folder, batch_size: int, length: int, options) -> int:

    module = new_module(folder).to(options.device).train()

    def step(batch):  # FLOPs do not depend on the dtype: counted in fp32
        return module.shared_step({key: value.to(options.device) for key, value in batch.items()})[0]

    def make_batch(size, tokens):
        return batches(size, tokens, 1)[0]

    return StepFlops(step, make_batch)(batch_size, length)


def device_peak(options) -> tuple[float | None, str]:
    import torch

    if options.device == "cpu":
        return None, "cpu"
    name = torch.cuda.get_device_name()
    for key, peak in DENSE_BF16_PEAK.items():
        if key in name:
            return peak, name
    return None, name


def fsdp_weight_decay(folder, options) -> str:
    """Parameters (numel) in decay and no-decay groups under the default strategy and under FSDP."""
    import torch

    if options.device == "cpu" or not torch.cuda.is_available():
        return "FSDP check: skipped (Lightning runs FSDP on GPUs only)"
    from lightning.pytorch import Trainer
    from lightning.pytorch.strategies import FSDPStrategy

    counts = {}
    for name, strategy in (("default", "auto"), ("fsdp", FSDPStrategy())):
        module = new_module(folder)
        trainer = Trainer(accelerator="gpu", devices=1, strategy=strategy, max_steps=1, logger=False,
                          enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=0)  # fmt: skip
        loader = torch.utils.data.DataLoader(batches(2, 16, 2), batch_size=None)
        trainer.fit(module, train_dataloaders=loader)
        groups = trainer.optimizers[0].param_groups
        decay = sum(p.numel() for g in groups if g["weight_decay"] > 0 for p in g["params"])
        none = sum(p.numel() for g in groups if g["weight_decay"] == 0 for p in g["params"])
        counts[name] = (decay, none)
    verdict = "same split" if counts["default"] == counts["fsdp"] else "DIFFERENT split: see docs/distributed.md"
    return f"FSDP check (decay / no-decay numel): default {counts['default']}, fsdp {counts['fsdp']}: {verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="bert-base")
    parser.add_argument("--batch-sizes", nargs="*", type=int, default=[32, 64])
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the timing (compilation included)")
    parser.add_argument("--precision", default="bf16-mixed", choices=["bf16-mixed", "32-true"])
    parser.add_argument("--compile", choices=["both", "off", "on"], default="both")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--variable-lengths", action="store_true", help="rows of random real lengths, padded")
    options = parser.parse_args()
    import torch

    compiles = {"both": [False, True], "off": [False], "on": [True]}[options.compile]
    peak, device_name = device_peak(options)
    dtype = torch.bfloat16 if options.precision == "bf16-mixed" else torch.float32
    hidden = CONFIGS[options.config]["hidden_size"]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = write_encoder(Path(scratch) / "encoder", options.config)
        for batch_size in options.batch_sizes:
            flops = step_flops(folder, batch_size, options.length, options)
            measured_peak = gemm_peak(batch_size * options.length, hidden, dtype, options.device)
            data = batches(batch_size, options.length, options.steps + 1, options.variable_lengths)
            padding = f"{padding_share(data):.0%}"
            for compiled in compiles:
                for variant, runner in (("ours", time_ours), ("raw", time_raw), ("hf", time_hf)):
                    times = runner(folder, data, options, compiled)
                    if times is None:
                        rows.append([variant, str(batch_size), "yes" if compiled else "no", "skipped", "", "", "",
                                     padding])  # fmt: skip
                        continue
                    seconds = statistics.median(times[options.warmup :] or times)
                    achieved = flops / seconds
                    rows.append([
                        variant, str(batch_size), "yes" if compiled else "no", f"{batch_size / seconds:.1f}",
                        f"{achieved / 1e12:.2f}", f"{achieved / peak:.0%}" if peak else "n/a",
                        f"{achieved / measured_peak:.0%}", padding,
                    ])  # fmt: skip
                    print(f"{variant} batch {batch_size} compile {compiled}: {batch_size / seconds:.1f} samples/s",
                          file=sys.stderr)  # fmt: skip
        check = fsdp_weight_decay(folder, options)
    sheet = f"{peak / 1e12:.0f} TFLOP/s" if peak else "unknown"
    print_table(
        f"{options.config}, length {options.length}, {options.precision}, {device_name}, median step after "
        f"{options.warmup} of {options.steps}; data-sheet dense bf16 peak {sheet}.",
        [
            "variant",
            "batch",
            "torch.compile",
            "samples/s",
            "model TFLOP/s",
            "MFU (data sheet)",
            "MFU (measured GEMM)",
            "padding share",
        ],  # fmt: skip
        rows,
    )
    print(check)


if __name__ == "__main__":
    main()
