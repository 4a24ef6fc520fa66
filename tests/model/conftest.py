"""Records the family matrix's outcomes (tests/model/test_family_matrix.py) when FAMILY_MATRIX_RESULTS names a JSON
file: {family: {column: outcome}}, merged after every cell into what the file already holds, so a fast run and a
slow run add up. scripts/family_table.py renders docs/models.md's family table from it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

RESULTS_ENV = "FAMILY_MATRIX_RESULTS"
_outcomes: dict[str, dict[str, str]] = {}


def _cell(item) -> tuple[str, str] | None:
    """(family, column) of a matrix test, or None for any other test."""
    columns = getattr(item.module, "COLUMNS", None)
    callspec = getattr(item, "callspec", None)
    if not columns or callspec is None or "family" not in callspec.params:
        return None
    column = callspec.params.get("export_format") or columns.get(item.originalname)
    return (callspec.params["family"], column) if column else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    cell = _cell(item) if os.environ.get(RESULTS_ENV) else None
    if cell is None or (report.when != "call" and not (report.when == "setup" and not report.passed)):
        return
    if hasattr(report, "wasxfail"):
        text = f"known gap: {report.wasxfail}" if report.skipped else f"fixed? xfail passed: {report.wasxfail}"
    elif report.passed:
        text = dict(item.user_properties).get("outcome", "passed")
    elif report.skipped:
        text = "skipped"
    elif "XPASS(strict)" in str(report.longrepr):  # a known gap that no longer fails: its entry must go
        text = f"fixed? xfail passed: {report.longrepr}"
    else:
        text = "failed"
    family, column = cell
    _outcomes.setdefault(family, {})[column] = text
    _write(Path(os.environ[RESULTS_ENV]))  # after every cell: an interrupted run keeps what it measured


def _write(target: Path) -> None:
    merged = json.loads(target.read_text(encoding="utf-8")) if target.is_file() else {}
    for family, columns in _outcomes.items():
        merged.setdefault(family, {}).update(columns)
    target.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n", encoding="utf-8")
