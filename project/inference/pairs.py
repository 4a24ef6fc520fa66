"""Whether an input gives second texts exactly where its model was trained on them. A model trained on pairs (a
question and a passage, two sentences) fed single texts, or the reverse, scores inputs it never saw, silently; every
inference path (checkpoint predict, ONNX predict, serve) refuses the mismatch instead. Torch-free, for the ONNX path.

What a model was trained with travels as the run's `data.text_pair_column`: in the checkpoint's data options, and in
every export's classifier.json as `text_pair_column`. `UNKNOWN` marks a model that does not record it (a checkpoint
saved outside the fit command, an export from before the key): nothing is checked there."""

from __future__ import annotations

from project.core.errors import ConfigError


class _Unknown:
    """The marker of a model that does not record its pair column: not a string, so no column name can equal it."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
PAIR_KEY = "text_pair_column"  # classifier.json's key, as the data option is named


def trained_pairs(config: dict) -> str | None:
    """The pair column an export's classifier.json records: its name, None (single texts), or UNKNOWN."""
    return config[PAIR_KEY] if PAIR_KEY in config else UNKNOWN


def pair_mismatch(trained: str | None, given: bool) -> str | None:
    """What is wrong with giving (or not giving) second texts to a model trained with `trained`, or None."""
    if trained is UNKNOWN or bool(trained) == given:
        return None
    return f"trained on pairs (data.text_pair_column '{trained}')" if trained else "trained on single texts"


def check_pairs(
    trained: str | None, text_pair_column: str | None, model: str, option: str = "--text_pair_column"
) -> None:
    """A ConfigError naming `model` (the option and its path) and the remedy (`option`, the command's pair option)
    where the input's pairs do not match."""
    problem = pair_mismatch(trained, bool(text_pair_column))
    if problem is None:
        return
    remedy = (
        f"leave out {option} {text_pair_column}" if text_pair_column else f"give {option}, the column of second texts"
    )
    raise ConfigError(f"{model} was {problem}: {remedy}")
