"""The processor's name as the kernel reports it, with the instruction set that sets its matrix-multiplication
speed: what machine-specific figures (a GEMM peak, a runtime card, a benchmark's header) are keyed or labelled by."""

from __future__ import annotations

import platform

# Best first. A virtual machine's model name is often only the vendor's family ("AMD EPYC"), the same for a core with
# AVX512-BF16 and one with AVX2 alone, whose bf16 matmul speeds differ about 2.4x (423 vs 180 GFLOP/s on two cores):
# a figure cached or reported under the bare name would be read on the other kind.
MATMUL_INSTRUCTION_SETS = (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX512"),
                           ("avx2", "AVX2"))  # fmt: skip


def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """/proc/cpuinfo's model name and best matmul instruction set (Linux), e.g. "AMD EPYC (AVX512-BF16)", else what
    `platform` knows."""
    try:
        with open(cpuinfo) as info:
            lines = info.read().splitlines()
        name = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()
    flags = set(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))
    best = next((label for flag, label in MATMUL_INSTRUCTION_SETS if flag in flags), None)
    return f"{name} ({best})" if best else name
