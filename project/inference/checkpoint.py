"""Load a checkpoint written by `python -m project.fit` for inference (eval mode, weights only)."""

from __future__ import annotations

from pathlib import Path

from project.core.errors import ConfigError
from project.training.module import TextClassifier


def load_model(checkpoint: str, device: str = "cpu") -> TextClassifier:
    if not Path(checkpoint).is_file():
        raise ConfigError(f"--checkpoint {checkpoint}: no such file")
    model = TextClassifier.load_from_checkpoint(checkpoint, map_location=device, weights_only=True)
    return model.eval()
