"""Constrained option types: jsonargparse checks them while parsing (a bad value fails naming its key) and `--help`
shows the range. Modules store their arguments through `plain` so checkpoints hold only primitives (jsonargparse's
values are int/float subclasses, which `torch.load(weights_only=True)` refuses)."""

from __future__ import annotations

import dataclasses
from typing import Any

from jsonargparse.typing import (
    NonNegativeFloat,
    NonNegativeInt,
    OpenUnitInterval,
    PositiveFloat,
    PositiveInt,
    restricted_number_type,
)

# [0, 1): dropout rates and held-out shares, where 1 would drop or hold out everything.
UnitIntervalOpenRight = restricted_number_type("UnitIntervalOpenRight", float, [(">=", 0), ("<", 1)])
# (0, 1]: a decay factor, where 1 means no decay.
UnitIntervalOpenLeft = restricted_number_type("UnitIntervalOpenLeft", float, [(">", 0), ("<=", 1)])

__all__ = [
    "NonNegativeFloat", "NonNegativeInt", "OpenUnitInterval", "PositiveFloat", "PositiveInt",
    "UnitIntervalOpenLeft", "UnitIntervalOpenRight", "plain",
]  # fmt: skip


def plain(value: Any) -> Any:
    """`value` with every constrained number turned back into a plain int or float (bools stay bools) and every
    option group (a dataclass) into a dict."""
    if isinstance(value, bool) or value is None:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a group of options: a dict of them
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):  # YAML has no tuples: both become lists
        return [plain(item) for item in value]
    return value


def plain_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """An `__init__`'s `locals()` as primitives, for `save_hyperparameters(...)`."""
    return {name: plain(value) for name, value in arguments.items() if name not in ("self", "__class__")}
