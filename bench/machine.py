"""The machine in one line, and the Markdown table every benchmark prints under it."""

import os
import platform

import torch

from project.core.machine import cpu_name


def describe() -> str:
    cpu = cpu_name()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {device}; torch {torch.__version__}, Python {platform.python_version()}"


def print_table(settings: str, columns: list[str], rows: list[list[str]]) -> None:
    """A Markdown table of already formatted cells, headed by the machine and the run's settings."""
    print(f"Machine: {describe()}. {settings}".rstrip())
    print()
    print_rows(columns, rows)


def print_rows(columns: list[str], rows: list[list[str]]) -> None:
    """A Markdown table of already formatted cells, without the machine line (a second table under `print_table`)."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row) + " |")
