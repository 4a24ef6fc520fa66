"""`trainer.precision: null` on a GPU: bf16 from compute capability 8.0 (Ampere) on, fp16 autocast with a scaler
before it, read without initialising CUDA (mocked here: the suite runs on CPUs)."""

import subprocess
import sys
import types

import pytest

from project.training import precision


@pytest.mark.parametrize(("capability", "expected"), [((7, 5), "16-mixed"), ((7, 0), "16-mixed"),
                                                      ((8, 0), "bf16-mixed"), ((9, 0), "bf16-mixed"),
                                                      (None, "bf16-mixed")])  # fmt: skip
def test_a_gpu_gets_bf16_from_ampere_on_and_fp16_before(monkeypatch, capability, expected):
    monkeypatch.setattr(precision, "cuda_capability", lambda: capability)
    chosen, why = precision.fastest_precision("gpu")
    assert chosen == expected
    if capability:
        assert f"{capability[0]}.{capability[1]}" in why
    monkeypatch.setattr(precision, "num_cuda_devices", lambda: 1)
    assert precision.fastest_precision("auto")[0] == expected
    monkeypatch.setattr(precision, "num_cuda_devices", lambda: 0)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.fastest_precision("auto")[0] == "32-true"  # no GPU: the CPU's rule


def test_the_capability_comes_from_nvml_then_nvidia_smi_without_torch_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "init", lambda: pytest.fail("CUDA must not be initialised"))
    nvml = types.SimpleNamespace(nvmlInit=lambda: None, nvmlShutdown=lambda: None,
                                 nvmlDeviceGetHandleByIndex=lambda index: index,
                                 nvmlDeviceGetCudaComputeCapability=lambda handle: (7, 5))  # fmt: skip
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert precision.cuda_capability() == (7, 5)

    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed: nvidia-smi answers
    calls = []

    def smi(command, **options):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, stdout="8.6\n8.6\n", stderr="")

    monkeypatch.setattr(precision.subprocess, "run", smi)
    assert precision.cuda_capability() == (8, 6) and calls[0][0] == "nvidia-smi"

    def missing(command, **options):
        raise FileNotFoundError(command[0])

    monkeypatch.setattr(precision.subprocess, "run", missing)
    assert precision.cuda_capability() is None
