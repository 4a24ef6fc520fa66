import pytest

from project.core.machine import cpu_name

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx {extra}
"""


@pytest.mark.parametrize(
    ("flags", "label"),
    [("avx2", "AMD EPYC (AVX2)"), ("avx2 avx512f avx512_bf16", "AMD EPYC (AVX512-BF16)"),
     ("avx2 avx512f avx512_bf16 amx_bf16", "AMD EPYC (AMX-BF16)"), ("", "AMD EPYC")],
)  # fmt: skip
def test_two_machines_with_one_model_name_are_told_apart_by_their_matmul_instructions(tmp_path, flags, label):
    # Virtual machines name only the family; the GEMM peak cache and the runtime card are keyed by this label, so two
    # kinds of core under one name must not share a cached peak.
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(extra=flags))
    assert cpu_name(str(cpuinfo)) == label


def test_without_cpuinfo_the_platform_names_the_processor(tmp_path):
    assert cpu_name(str(tmp_path / "missing"))
