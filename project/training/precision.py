"""The default `trainer.precision`: bf16 autocast only where the hardware computes bf16 natively.

CPUs without bf16 instructions (AVX512-BF16 or AMX) emulate it, many times slower than fp32; on CPUs with them,
bf16 autocast is faster than fp32. So the fastest safe default depends on the CPU (the measurements:
docs/benchmarks.md, "Figures behind code constants"). GPUs compute bf16 from Ampere (compute capability 8.0) on;
older ones (T4, V100) get fp16 autocast, which Lightning's `16-mixed` pairs with a gradient scaler.
"""

from __future__ import annotations

import subprocess

import torch
from lightning.fabric.accelerators.cuda import num_cuda_devices


def cpu_has_native_bf16() -> bool:
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def cuda_capability() -> tuple[int, int] | None:
    """The first GPU's compute capability without initialising CUDA in this process: from NVML where nvidia-ml-py
    is installed, else from `nvidia-smi`; None where neither answers."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return tuple(pynvml.nvmlDeviceGetCudaComputeCapability(pynvml.nvmlDeviceGetHandleByIndex(0)))
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # not installed, or no driver: ask nvidia-smi
        pass
    try:
        answer = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20, check=True).stdout  # fmt: skip
        major, minor = answer.splitlines()[0].strip().split(".")
        return int(major), int(minor)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def fastest_precision(accelerator: str | None) -> tuple[str, str]:
    """(precision, why) for `trainer.precision: null`."""
    # num_cuda_devices asks NVML and does not initialise CUDA, so a later ddp_spawn still works; asking torch for
    # the GPU's bf16 support would. The compute capability comes from NVML or nvidia-smi for the same reason.
    if accelerator in ("gpu", "cuda") or (accelerator in (None, "auto") and num_cuda_devices() > 0):
        capability = cuda_capability()
        if capability is not None and capability < (8, 0):
            return (
                "16-mixed",
                f"a CUDA GPU of compute capability {capability[0]}.{capability[1]}, before Ampere: "
                "no native bf16, so fp16 autocast with a gradient scaler",
            )
        shown = "unknown" if capability is None else f"{capability[0]}.{capability[1]}"
        return "bf16-mixed", f"a CUDA GPU of compute capability {shown} (Ampere, 8.0, and newer compute bf16)"
    if cpu_has_native_bf16():
        return "bf16-mixed", "this CPU computes bf16 natively (AVX512-BF16 or AMX)"
    return "32-true", "this CPU has no bf16 instructions; emulated bf16 autocast is many times slower than fp32"
