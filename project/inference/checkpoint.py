"""Load a checkpoint written by `python -m project.fit` for inference (eval mode, weights only), with the input
length it was trained on."""

from __future__ import annotations

from project.core.checkpoints import read_checkpoint
from project.core.errors import ConfigError
from project.training.module import TextClassifier


def load_model(checkpoint: str, device: str = "cpu") -> TextClassifier:
    read_checkpoint(checkpoint)  # a broken file is one line naming it, not a traceback from torch
    model = TextClassifier.load_from_checkpoint(checkpoint, map_location=device, weights_only=True)
    return model.eval()


def trained_max_length(checkpoint: str) -> int | None:
    """The `data.max_length` the checkpoint's run trained with (None for checkpoints that do not record it)."""
    return read_checkpoint(checkpoint).get("datamodule_hyper_parameters", {}).get("max_length")


def input_length(checkpoint: str, model: TextClassifier, override: int | None, option: str = "--max_length") -> int:
    """The truncation length for inference: the trained one unless `override`, which must fit the encoder."""
    positions = getattr(model.encoder.config, "max_position_embeddings", None)
    if override is not None:
        if override < 1:
            raise ConfigError(f"{option} must be at least 1, got {override}")
        if positions and override > positions:
            raise ConfigError(f"{option} {override} exceeds the encoder's max_position_embeddings={positions}")
        return override
    trained = trained_max_length(checkpoint)
    return trained if trained is not None else min(128, positions or 128)
