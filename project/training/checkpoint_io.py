"""Checkpoints written whole or not at all, Lightning's own saves included (best, last, on SIGTERM).

Lightning's `TorchCheckpointIO` writes through an fsspec transaction whose temporary file lies in the system's
temporary folder: committing it to another filesystem is a copy, so a full disk leaves a truncated checkpoint under
the final name, and nothing is fsynced. Here the checkpoint is serialised in memory (its size is then known, so a
disk without room is refused before a byte is written) and written with `project.core.atomic.write_bytes`: a
temporary file in the checkpoint's own folder, fsynced, renamed.
"""

from __future__ import annotations

import io
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.fabric.utilities.types import _PATH

from project.core.atomic import write_bytes


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose local saves are atomic and fsynced; remote paths (s3://...) keep Lightning's way."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes(path, buffer.getbuffer())
