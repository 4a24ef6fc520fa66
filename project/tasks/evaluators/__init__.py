"""What a task's evaluation of one split holds: numbers, a table, pictures, and the rows it got most wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class Evaluation:
    summary: dict[str, float]  # split-level numbers (accuracy, ECE, MSE...)
    table: list[dict]  # one row per class or label (precision, recall, F1, support...), or none
    table_name: str = "table"  # the table's key in <stage>_report.json: per_class, per_label
    figures: dict[str, Figure] = field(default_factory=dict)  # file stem -> picture
    error_rows: list[int] = field(default_factory=list)  # positions in the split, worst (or most confident) first
    error_columns: dict[str, list] = field(default_factory=dict)  # column -> one value per entry of error_rows
    extra: dict = field(default_factory=dict)  # more JSON (confusion matrix, error co-occurrence...)
