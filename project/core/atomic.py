"""Outputs that appear whole or not at all: a new folder that never replaces an existing one, and files written
to a temporary name then renamed over the old one (readers never see half a file)."""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from project.core.errors import ConfigError


@contextmanager
def new_folder(path: str | Path, option: str = "--output") -> Iterator[Path]:
    """Yield a staging folder beside `path`; rename it to `path` when the block succeeds, delete it otherwise."""
    target = Path(path)
    if target.exists():
        raise ConfigError(f"{option} {target} already exists; choose a new folder (nothing was overwritten)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_text(path: str | Path, text: str) -> None:
    """`text` to `path` (UTF-8, parent folders made), through `<name>.partial` and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_csv(path: str | Path, rows: Iterable[list]) -> None:
    """Rows of cells (the header first) as a CSV file, written whole or not at all."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    write_text(path, buffer.getvalue())


def check_output(output: str, inputs: list[tuple[str, str]], overwrite: bool) -> None:
    """Refuse an output path that is one of the command's inputs, a folder, or (without `overwrite`) a file."""
    target = Path(output)
    for option, path in inputs:
        if target.resolve() == Path(path).resolve():
            raise ConfigError(f"--output {output} is the {option} file; choose another output (nothing was written)")
    if target.is_dir():
        raise ConfigError(f"--output {output} is a folder; name a file")
    if target.exists() and not overwrite:
        raise ConfigError(f"--output {output} already exists; choose a new file or pass --overwrite true")
