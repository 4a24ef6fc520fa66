"""A new output folder that appears whole or not at all, and never replaces an existing one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from project.errors import ConfigError


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
