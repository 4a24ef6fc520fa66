"""The efficiency card of every fit: `efficiency.json` in the run folder, and the same numbers in TensorBoard under
`efficiency/`.

- `tokens_per_second`: real (non-padding) tokens per second of training step time (batch start to batch end:
  forward, backward, the optimizer step; validation and checkpointing are outside it);
- `padding_share`: the share of the token positions run that were padding;
- `seconds_to_best`: wall seconds from the fit's start to the end of the validation with the best monitored metric
  (`checkpoint.monitor`; `val/loss` without a checkpoint callback), and that metric's name, value and step;
- `peak_rss_bytes`: the process's peak resident memory (and, on a GPU, the peak memory torch allocated);
- `optimizer_share`: the share of step time from `on_before_optimizer_step` to the batch's end (clipping, the
  update, the schedule), on the stepping batches;
- `mfu`: model FLOPs per second of step time over the machine's measured GEMM peak (`training/gemm_peak.py`). The
  FLOPs are 6·N per token (N: the parameters outside embedding tables; forward and backward; 2 only for those
  `frozen_layers` keeps, which run forward alone: `flops_per_token`) plus 12·L·H·S per
  token for attention's two matmuls over a padded length S (L layers of width H): the batches as run, padding
  included, the usual convention.

On a GPU the step times are the host's (nothing here synchronizes the device, which would slow every step), which
over a whole run still sum to the device's time within one step.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import torch
from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_only

from project.core.atomic import write_text
from project.training.gemm_peak import gemm_peak

EFFICIENCY_FILE = "efficiency.json"
PRECISION_DTYPES = {"bf16": torch.bfloat16, "16": torch.float16}  # by the prefix of trainer.precision


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports kilobytes, macOS bytes


def matmul_parameters(module: torch.nn.Module, trained_only: bool = False) -> int:
    """Parameters outside embedding tables: the ones a token multiplies through (only those that train, with
    `trained_only`)."""
    embedded = {id(p) for m in module.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    counted = [p for p in module.parameters() if id(p) not in embedded and (p.requires_grad or not trained_only)]
    return sum(p.numel() for p in counted)


def flops_per_token(module: torch.nn.Module) -> int:
    """2 a parameter forward, 4 more backward for those that train (the gradients of their input and of themselves):
    6N when everything trains. Frozen layers sit at the bottom (`encoder_options.frozen_layers`), so nothing below
    them needs an input gradient and their backward pass never runs."""
    return 2 * matmul_parameters(module) + 4 * matmul_parameters(module, trained_only=True)


def shape_of(config) -> tuple[int, int]:
    """(layers, width) of an encoder config; (0, 0) where the family names them otherwise (attention uncounted)."""
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", None) or 0
    width = getattr(config, "hidden_size", None) or getattr(config, "dim", None) or 0
    return int(layers), int(width)


class EfficiencyCard(Callback):
    def __init__(self):
        self.real_tokens = 0
        self.positions = 0
        self.flops = 0.0
        self.step_seconds = 0.0
        self.optimizer_seconds = 0.0
        self.stepping_seconds = 0.0  # step time of the batches that stepped the optimizer
        self.validations: list[tuple[float, int, dict[str, float]]] = []
        self._masks: list[torch.Tensor] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        self.started = time.perf_counter()
        self.per_token = flops_per_token(pl_module)
        encoder = getattr(pl_module, "encoder", None)
        self.layers, self.width = shape_of(getattr(encoder, "config", None))
        if torch.cuda.is_available() and pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batch_started, self.optimizer_started = time.perf_counter(), None
        mask = batch.get("attention_mask") if isinstance(batch, Mapping) else None  # a BatchEncoding is no dict
        if mask is None:
            return
        size, length = mask.shape[0], mask.shape[-1]
        self.positions += mask.numel()
        self._masks.append(mask.sum())  # summed on the device; read once at the end, so no step waits for it
        self.flops += size * length * (self.per_token + 12 * self.layers * self.width * length)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.optimizer_started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        ended = time.perf_counter()
        seconds = ended - self.batch_started
        self.step_seconds += seconds
        if self.optimizer_started is not None:
            self.optimizer_seconds += ended - self.optimizer_started
            self.stepping_seconds += seconds

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items() if value.numel() == 1}
        self.validations.append((time.perf_counter() - self.started, trainer.global_step, metrics))

    def on_fit_end(self, trainer, pl_module) -> None:
        if self._masks:
            self.real_tokens = int(torch.stack([mask.to("cpu") for mask in self._masks]).sum())
            self._masks = []
        card = self.card(trainer, pl_module)
        # Every process asks: in a distributed run log_dir is a broadcast from rank 0, which the others must join.
        self.write(trainer, card, Path(trainer.log_dir or trainer.default_root_dir))

    def best_validation(self, trainer) -> dict | None:
        checkpoint = trainer.checkpoint_callback
        monitor = getattr(checkpoint, "monitor", None) or "val/loss"
        mode = getattr(checkpoint, "mode", "min") if checkpoint is not None and checkpoint.monitor else "min"
        seen = [(seconds, step, metrics[monitor]) for seconds, step, metrics in self.validations if monitor in metrics]
        if not seen:
            return None
        best = (min if mode == "min" else max)(value for _, _, value in seen)
        seconds, step, value = next(entry for entry in seen if entry[2] == best)  # the first time it was reached
        return {"metric": monitor, "value": value, "step": step, "seconds_to_best": round(seconds, 3)}

    def card(self, trainer, pl_module) -> dict:
        device = pl_module.device
        dtype = next((d for prefix, d in PRECISION_DTYPES.items() if str(trainer.precision).startswith(prefix)),
                     torch.float32)  # fmt: skip
        peak, cached = gemm_peak(device, dtype)
        achieved = self.flops / self.step_seconds if self.step_seconds else 0.0
        card = {
            "tokens_per_second": self.real_tokens / self.step_seconds if self.step_seconds else 0.0,
            "padding_share": 1 - self.real_tokens / self.positions if self.positions else 0.0,
            "real_tokens": self.real_tokens,
            "token_positions": self.positions,
            "step_seconds": round(self.step_seconds, 4),
            "optimizer_share": self.optimizer_seconds / self.stepping_seconds if self.stepping_seconds else 0.0,
            "model_flops_per_second": achieved,
            "gemm_peak_flops_per_second": peak,
            "gemm_peak_cached": cached,
            "mfu": achieved / peak if peak else None,
            "peak_rss_bytes": peak_rss_bytes(),
            "best_validation": self.best_validation(trainer),
            "precision": str(trainer.precision),
            "device": str(device),
        }
        if device.type == "cuda":
            card["peak_gpu_memory_bytes"] = torch.cuda.max_memory_allocated(device)
        return card

    @rank_zero_only
    def write(self, trainer, card: dict, run_dir: Path) -> None:
        write_text(run_dir / EFFICIENCY_FILE, json.dumps(card, indent=2) + "\n")
        logged = {f"efficiency/{name}": value for name, value in card.items()
                  if isinstance(value, int | float) and not isinstance(value, bool)}  # fmt: skip
        best = card["best_validation"]
        if best:
            logged["efficiency/seconds_to_best"] = best["seconds_to_best"]
        for logger in trainer.loggers:
            logger.log_metrics(logged, step=trainer.global_step)
