"""The processor's name as the kernel reports it: what machine-specific figures (a GEMM peak, a runtime card, a
benchmark's header) are keyed or labelled by."""

from __future__ import annotations

import platform


def cpu_name() -> str:
    """/proc/cpuinfo's model name (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()
