"""The evaluation report: after testing, each evaluated split's numbers, per-class (or per-label) table, pictures
and worst rows, written into the run folder and shown in TensorBoard.

`CollectOutputs` keeps what the model's validation and test steps return (scores and targets, the inputs of the
task's metrics): the test split's, and the validation split's from the epoch with the best monitored value (the
epoch the best checkpoint comes from), so the report costs no extra pass over the data.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from lightning.pytorch import Callback

from project.core.atomic import write_csv, write_text
from project.core.errors import DataError
from project.tasks.evaluators import Evaluation


class CollectOutputs(Callback):
    def __init__(self, checkpoint=None):
        """checkpoint: the ModelCheckpoint whose `monitor` and `mode` choose the best epoch, read as each validation
        ends (the fit resolves `checkpoint.monitor: auto` only once training starts); None: the last epoch."""
        self.checkpoint = checkpoint
        self.best_value: float | None = None
        self.outputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.best_metrics: dict[str, float] = {}  # what validation logged at that epoch
        self._batches: list = []

    def _start(self, trainer, pl_module) -> None:
        self._batches = []

    on_validation_epoch_start = on_test_epoch_start = _start

    def _keep(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not trainer.sanity_checking and outputs is not None:
            self._batches.append(outputs)

    on_validation_batch_end = on_test_batch_end = _keep

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not self._batches:
            return
        monitor = self.checkpoint.monitor if self.checkpoint is not None else None
        value = trainer.callback_metrics.get(monitor) if monitor else None
        value = float(value) if value is not None else None
        if monitor is None or self._better(value):
            self.best_value = value
            self.outputs["val"] = _joined(self._batches)
            self.best_metrics = {
                name: float(metric) for name, metric in trainer.callback_metrics.items() if name.startswith("val/")
            }
        self._batches = []

    def on_test_end(self, trainer, pl_module) -> None:
        if self._batches:
            self.outputs["test"] = _joined(self._batches)
        self._batches = []

    def _better(self, value: float | None) -> bool:
        if value is None or math.isnan(value):
            return False
        if self.best_value is None:
            return True
        return value < self.best_value if self.checkpoint.mode == "min" else value > self.best_value


def _joined(batches: list) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([scores for scores, _ in batches]), torch.cat([targets for _, targets in batches])


def write_report(folder: Path, stage: str, evaluation: Evaluation, split, logger=None, step: int = 0) -> list[Path]:
    """`<stage>_report.json` / `.md`, one PNG per picture (and a TensorBoard image), and `<stage>_errors.csv`
    (the row number in the split's file, its text, then the evaluation's columns). Returns the files written."""
    written = []
    document = {
        "summary": evaluation.summary,
        **({evaluation.table_name: evaluation.table} if evaluation.table else {}),
        **evaluation.extra,
    }
    written.append(folder / f"{stage}_report.json")
    write_text(written[-1], _json(document))
    written.append(folder / f"{stage}_report.md")
    write_text(written[-1], _markdown(stage, split.source, evaluation))
    experiment = getattr(logger, "experiment", None)
    for name, figure in evaluation.figures.items():
        path = folder / f"{stage}_{name}.png"
        partial = path.with_name(path.name + ".partial.png")
        figure.savefig(partial, dpi=100)
        partial.replace(path)
        written.append(path)
        if hasattr(experiment, "add_figure"):
            experiment.add_figure(f"{stage}/{name}", figure, global_step=step, close=True)
    positions = split.positions[evaluation.error_rows] if evaluation.error_rows else split.positions[:0]
    try:
        texts = split.table.read_texts(positions) if len(positions) else []
    except DataError as error:  # edited during the run: the rows still name them
        print(f"{stage}_errors.csv without its text column: {error}")
        texts = None
    columns = list(evaluation.error_columns)
    lines = [["row", *(["text"] if texts is not None else []), *columns]]
    for index, row in enumerate(split.table.row_numbers(positions).tolist()):
        text = [texts[index]] if texts is not None else []
        lines.append([row, *text, *(evaluation.error_columns[column][index] for column in columns)])
    written.append(folder / f"{stage}_errors.csv")
    write_csv(written[-1], lines)
    return written


def _json(document: dict) -> str:
    def plain(value):  # NaN (an undefined correlation) is not JSON
        return None if isinstance(value, float) and math.isnan(value) else value

    def clean(node):
        if isinstance(node, dict):
            return {key: clean(value) for key, value in node.items()}
        if isinstance(node, list):
            return [clean(value) for value in node]
        return plain(node)

    return json.dumps(clean(document), indent=2) + "\n"


def _markdown(stage: str, source: str, evaluation: Evaluation) -> str:
    lines = [f"# {stage} split ({source})", ""]
    lines += [f"- {name}: {_cell(value)}" for name, value in evaluation.summary.items()]
    if evaluation.table:
        header = list(evaluation.table[0])
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_cell(row[column]) for column in header) + " |" for row in evaluation.table]
    for name, rows in evaluation.extra.items():  # further tables (coverage against accuracy)
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            header = list(rows[0])
            lines += [
                "",
                f"## {name.replace('_', ' ')}",
                "",
                "| " + " | ".join(header) + " |",
                "|" + "---|" * len(header),
            ]
            lines += ["| " + " | ".join(_cell(row[column]) for column in header) + " |" for row in rows]
        elif isinstance(rows, dict) and name == "decisions":
            lines += ["", "## decisions fitted on held-out data", ""]
            lines += [f"- {key}: {_cell(value)}" for key, value in rows.items()]
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
