"""Label codecs, one per task: the label column's text -> a training target, with errors that name the row.

The names match `project.model.tasks.TASKS`; the CLI links `model.task` to `data.task`, so the two always agree.
"""

from __future__ import annotations

import json
import math

from project.data.sources import DataError
from project.registry import Registry

LABEL_CODECS: Registry[type[LabelCodec]] = Registry("data.task")
register_codec = LABEL_CODECS.register


def _number_or_text(label: str) -> tuple[int, float | str]:
    """Sort key: labels that read as numbers sort numerically ("2" before "10"), before any other label."""
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


class LabelCodec:
    allows_empty = False  # may a row's label cell be empty?

    def __init__(self, train_labels: list[str], source: str, delimiter: str = ","):
        self.delimiter = delimiter
        self.label_names: list[str] | None = None

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def encode(self, label: str, where: str):
        raise NotImplementedError

    def unknown(self, name: str, where: str) -> DataError:
        return DataError(f"{where}: label '{name}' never occurs in the training data (labels: {self.label_names})")


@register_codec("single_label")
class SingleLabelCodec(LabelCodec):
    """One class per row -> its id; ids follow the sorted names."""

    def __init__(self, train_labels: list[str], source: str, delimiter: str = ","):
        super().__init__(train_labels, source, delimiter)
        names = sorted(set(train_labels), key=_number_or_text)
        if len(names) < 2:
            raise DataError(f"{source}: only one label ({names}); classification needs two or more")
        self.label_names = names
        self.ids = {name: index for index, name in enumerate(names)}

    def encode(self, label: str, where: str) -> int:
        if label not in self.ids:
            raise self.unknown(label, where)
        return self.ids[label]


@register_codec("multi_label")
class MultiLabelCodec(LabelCodec):
    """Any number of classes per row, as a JSON list (`["a", "b"]`) or a delimited string (`a,b`); an empty cell
    means none. -> a multi-hot float vector over the sorted names."""

    allows_empty = True

    def __init__(self, train_labels: list[str], source: str, delimiter: str = ","):
        super().__init__(train_labels, source, delimiter)
        names = {name for label in train_labels for name in self.split(label, source)}
        if len(names) < 2:
            raise DataError(f"{source}: labels {sorted(names)} found; multi_label needs two or more label names")
        self.label_names = sorted(names, key=_number_or_text)
        self.ids = {name: index for index, name in enumerate(self.label_names)}

    def split(self, label: str, where: str) -> list[str]:
        text = label.strip()
        if text.startswith("["):
            try:
                names = json.loads(text)
            except json.JSONDecodeError:
                raise DataError(f"{where}: label cell starts with '[' but is not a JSON list: {text[:60]}") from None
            return [str(name).strip() for name in names if str(name).strip()]
        return [name.strip() for name in text.split(self.delimiter) if name.strip()]

    def encode(self, label: str, where: str) -> list[float]:
        target = [0.0] * len(self.label_names)
        for name in self.split(label, where):
            if name not in self.ids:
                raise self.unknown(name, where)
            target[self.ids[name]] = 1.0
        return target


@register_codec("regression")
class RegressionCodec(LabelCodec):
    """A number per row (e.g. a 0-5 similarity score) -> float."""

    @property
    def num_labels(self) -> int:
        return 1

    def encode(self, label: str, where: str) -> float:
        try:
            value = float(label)
        except ValueError:
            raise DataError(f"{where}: label '{label}' is not a number (data.task is regression)") from None
        if not math.isfinite(value):
            raise DataError(f"{where}: label '{label}' is not a finite number")
        return value
