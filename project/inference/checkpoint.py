"""Load a checkpoint written by `python -m project.fit` for inference (eval mode, weights only), with the input
length it was trained on."""

from __future__ import annotations

from project.core.checkpoints import read_checkpoint
from project.core.errors import ConfigError
from project.data.truncation import Truncation
from project.inference.pairs import UNKNOWN
from project.model.families import usable_positions
from project.training.module import TextClassifier, regrouped_options


def load_trained(
    checkpoint: str, device: str = "cpu", option: str = "--checkpoint"
) -> tuple[TextClassifier, int | None]:
    """(the model, the `data.max_length` its run trained with, or None where the checkpoint does not record it).

    The model's `truncation` is its run's `data.truncation` and `data.head_tokens` (head where not recorded);
    `option` is the command's option that named the file, for messages."""
    stored = read_checkpoint(checkpoint, option)  # a broken file is one line naming it, not a traceback from torch
    # A checkpoint from before the options were grouped holds them flat, and Lightning drops keys that are not
    # arguments: passed as arguments, the groups rebuild the same head (its hidden_dim decides the weights' shapes).
    regrouped = regrouped_options(stored.get("hyper_parameters", {}))
    model = TextClassifier.load_from_checkpoint(checkpoint, map_location=device, weights_only=True, **regrouped)
    data = stored.get("datamodule_hyper_parameters", {})
    model.truncation = Truncation.of(data)
    # The pair column the run trained with: None (single texts), or UNKNOWN for a checkpoint without its data's options.
    model.trained_pair_column = data.get("text_pair_column") if "text_column" in data else UNKNOWN
    return model.eval(), data.get("max_length")


def load_model(checkpoint: str, device: str = "cpu") -> TextClassifier:
    return load_trained(checkpoint, device)[0]


def input_length(model: TextClassifier, trained: int | None, override: int | None, option: str = "--max_length") -> int:
    """The truncation length for inference: the trained one unless `override`, which must fit the positions the
    encoder can use (`usable_positions`: a RoBERTa-style table of 514 rows holds 512 tokens)."""
    positions = usable_positions(model.encoder)
    if override is not None:
        if override < 1:
            raise ConfigError(f"{option} must be at least 1, got {override}")
        if positions and override > positions:
            raise ConfigError(f"{option} {override} exceeds the {positions} positions the encoder can use")
        return override
    return trained if trained is not None else min(128, positions or 128)
