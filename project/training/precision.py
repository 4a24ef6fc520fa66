"""The default `trainer.precision`: bf16 autocast only where the hardware computes bf16 natively.

CPUs without bf16 instructions (AVX512-BF16 or AMX) emulate it, many times slower than fp32; on CPUs with them,
bf16 autocast is faster than fp32. So the fastest safe default depends on the CPU (the measurements:
docs/benchmarks.md, "Figures behind code constants").
"""

from __future__ import annotations

import torch
from lightning.fabric.accelerators.cuda import num_cuda_devices


def cpu_has_native_bf16() -> bool:
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def fastest_precision(accelerator: str | None) -> tuple[str, str]:
    """(precision, why) for `trainer.precision: null`."""
    # num_cuda_devices asks NVML and does not initialise CUDA, so a later ddp_spawn still works; asking the GPU's
    # bf16 support would. Ampere and newer compute bf16 natively; T4/V100 users set 16-mixed (docs/configuration.md).
    if accelerator in ("gpu", "cuda") or (accelerator in (None, "auto") and num_cuda_devices() > 0):
        return "bf16-mixed", "a CUDA GPU (on a T4 or V100, set --trainer.precision 16-mixed)"
    if cpu_has_native_bf16():
        return "bf16-mixed", "this CPU computes bf16 natively (AVX512-BF16 or AMX)"
    return "32-true", "this CPU has no bf16 instructions; emulated bf16 autocast is many times slower than fp32"
