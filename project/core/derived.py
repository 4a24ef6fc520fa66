"""Assets made from other assets: pinned archives fetched with `project.core.assets.fetch`, then a conversion step
whose output folder is cached once (atomically) and checked against its own checksums on every load.

Generic on purpose, like `assets`: a `DerivedAsset` names its sources and a build function; nothing here knows a
model format. The build runs once per cache; its files' sha256 go to a manifest written with them, and every
`materialize` after that re-hashes the files (once per process while they stay unchanged) so a corrupted or edited
cache is one line saying how to rebuild it, not a model that silently loads different weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from project.core.assets import Asset, AssetError, cache_root, fetch, file_sha256

MANIFEST = "manifest.sha256.json"

# (folder, its files' (name, size, mtime)) already verified in this process: a run resolves an encoder several
# times (config, weights, tokenizer), and re-hashing half a gigabyte each time would cost seconds for nothing.
_VERIFIED: set[tuple[str, tuple]] = set()


@dataclass(frozen=True)
class DerivedAsset:
    name: str  # the cache folder's prefix, e.g. "multilingual-e5-small"
    sources: tuple[Asset, ...]  # fetched in order; their local paths are the build's first argument
    build: Callable[[list[Path], Path], None]  # (source paths, an empty output folder) -> fills the folder
    version: int = 1  # bump when `build` writes different files from the same sources

    @property
    def key(self) -> str:
        pins = hashlib.sha256("".join(source.sha256 for source in self.sources).encode()).hexdigest()
        return f"{self.name}-v{self.version}-{pins[:12]}"


def materialize(asset: DerivedAsset, cache_dir: Path | None = None) -> Path:
    """The folder `asset.build` made from the pinned sources, building it the first time only; its files are checked
    against the manifest recorded when it was built."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    target = root / asset.key
    if (target / MANIFEST).exists():
        verify(target)
        return target
    sources = [fetch(source, cache_dir) for source in asset.sources]
    print(f"converting {asset.name} into {target} (once)", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=root, prefix=".build-") as tmp:
        staging = Path(tmp) / "out"
        staging.mkdir()
        asset.build(sources, staging)
        digests = {path.name: file_sha256(path) for path in sorted(staging.iterdir()) if path.is_file()}
        (staging / MANIFEST).write_text(json.dumps(digests, indent=1) + "\n")
        try:
            os.replace(staging, target)  # atomic: a half-converted folder is never visible
        except OSError:
            if not (target / MANIFEST).exists():  # another process (a DDP rank) finished first
                raise
    verify(target)
    return target


def verify(folder: Path) -> None:
    """Every file the manifest lists has its recorded sha256; a mismatch or a missing file is one line."""
    recorded = json.loads((folder / MANIFEST).read_text())
    stats = tuple((name, *_stat(folder / name)) for name in sorted(recorded))
    if (str(folder), stats) in _VERIFIED:
        return
    for name, digest in recorded.items():
        path = folder / name
        if not path.is_file() or file_sha256(path) != digest:
            raise AssetError(
                f"{path} is missing or differs from the checksum recorded when it was converted; "
                f"delete the folder {folder} to rebuild it from the pinned archives"
            )
    _VERIFIED.add((str(folder), stats))


def _stat(path: Path) -> tuple[int, int]:
    try:
        status = path.stat()
    except FileNotFoundError:
        return (-1, -1)
    return (status.st_size, status.st_mtime_ns)
