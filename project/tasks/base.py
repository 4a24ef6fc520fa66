"""What a task is: everything that depends on the kind of target, in one object.

A task type reads the label column (`label_codec`), says how many outputs the head has, computes the loss, turns
logits into scores and scores into label text (`decode`, by its numpy `decoder`), builds its torchmetrics with each
metric's direction (`metric_directions`), and says how far apart two predictions are (`divergence`, for R-Drop).
It also makes every other decision that depends on the kind of target: what cross-validation stratifies folds by
(`fold_strata`), the TF-IDF baseline's model and scores (`baseline_model`, `baseline_scores`), and the data report's
label section (`label_summary`). Nothing else in the project branches on a task's name or its targets' type: add a
task by registering one subclass (docs/extending.md shows it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor
from torchmetrics import MetricCollection

from project.core.errors import ConfigError, DataError
from project.core.registry import Registry, checked_options
from project.tasks.aggregation import aggregate
from project.tasks.decoding import DECODERS, Decided, Decoder

if TYPE_CHECKING:
    from project.tasks.evaluators import Evaluation

TASKS: Registry[type[Task]] = Registry("model.task")


def register_task(name: str):
    """Register a Task subclass under `name`, which it also carries as `Task.name` (for messages). Its `decoder`, if
    it has one, is registered under the same name, where the torch-free ONNX predictor finds it."""

    def decorate(task_class: type[Task]) -> type[Task]:
        task_class.name = name
        TASKS.register(name)(task_class)
        decoder = task_class.decoder
        if decoder is not None and DECODERS.get(name) is not decoder:
            DECODERS.register(name)(decoder)  # a different decoder already under this name fails here
        return task_class

    return decorate


Direction = Literal["min", "max"]
# The batch key of a teacher's scores for each training row (`data.teacher_scores`, from `python -m project.distill`):
# a target of the distillation trick beside `labels`, never an input of the model.
TEACHER_SCORES = "teacher_scores"
# What the model passes every task itself; the rest of a task's signature is `model.task_options`.
TASK_ARGUMENTS = ("num_labels", "label_names")


_INTEGRAL_DECIMAL = re.compile(r"(-?\d+)\.0+")


def canonical_label(label: str) -> str:
    """A class name as training sees it: surrounding whitespace dropped, and an integer written as a decimal
    (`1.0`, what pandas writes for an integer column with a gap) read as that integer (`1`). Nothing else is
    merged: `01`, `1e0` and `one` stay names of their own."""
    label = label.strip()
    match = _INTEGRAL_DECIMAL.fullmatch(label)
    return match.group(1) if match else label


def label_order(label: str) -> tuple[int, float, str]:
    """Sort key giving every process the same ids whatever its hash seed: names that read as numbers first,
    numerically ("2" before "10"), then the rest; equal numbers (`1`, `01`) by their text."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


class LabelCodec:
    """The label column's text -> a training target, with errors that name the row. Built from the training
    labels (they fix the label names and their ids)."""

    def __init__(self, train_labels: list[str], source: str, delimiter: str = ","):
        self.delimiter = delimiter
        self.label_names: list[str] | None = None

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def encode(self, label: str, where: str):
        raise NotImplementedError

    def encode_all(self, labels: Sequence[str], where: Callable[[int], str]) -> list:
        """Each label's target; a bad one raises naming `where(index)`. Labels repeat (a few classes over many
        rows), so each distinct text is encoded once and its target shared (targets are only read)."""
        encoded: dict[str, object] = {}
        targets = []
        for index, label in enumerate(labels):
            if label not in encoded:
                encoded[label] = self.encode(label, where(index))
            targets.append(encoded[label])
        return targets

    def unknown(self, name: str, where: str) -> DataError:
        return DataError(
            f"{where}: label '{name}' never occurs in the training data (labels: {self.label_names}); a label needs "
            "training rows, and a rare one may have gone wholly to the validation or test rows held out of the file"
        )


class Task:
    name: ClassVar[str]  # set by register_task
    codec: ClassVar[type[LabelCodec]]
    label_cells_may_be_empty: ClassVar[bool] = False  # multi-label rows may have no label at all
    supports_label_smoothing: ClassVar[bool] = False
    # Scores -> label text in numpy (project.tasks.decoding); a task without one overrides decode and score_columns.
    decoder: ClassVar[type[Decoder] | None] = None

    def __init__(self, num_labels: int, label_names: list[str] | None):
        self.num_labels = num_labels
        self.label_names = label_names or [str(index) for index in range(num_labels)]
        # What `fit_decisions` learned on held-out data (temperature, thresholds...), as plain JSON values: stored in
        # the checkpoint and classifier.json, applied by `decide`. Empty: the raw scores and decisions.
        self.decisions: dict = {}

    @classmethod
    def label_codec(cls, train_labels: list[str], source: str, delimiter: str = ",") -> LabelCodec:
        return cls.codec(train_labels, source, delimiter)

    @property
    def num_outputs(self) -> int:
        return self.num_labels

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        raise NotImplementedError

    def smoothed_loss(self, logits: Tensor, targets: Tensor, epsilon: float) -> Tensor:
        """The loss against targets with `epsilon` of the mass spread over all classes (label smoothing)."""
        raise ConfigError(f"model.tricks.label_smoothing needs a task with classes to smooth, not {self.name}")

    def distillation_loss(self, logits: Tensor, teacher_scores: Tensor, temperature: float) -> Tensor:
        """How far the student's `logits` are from a teacher's `teacher_scores` (as `scores()` gives them: an
        ensemble's mean probabilities, or values), both softened by `temperature` where the task has a distribution
        to soften, scaled so its gradients keep their size whatever the temperature (Hinton et al. 2015)."""
        raise ConfigError(f"model.tricks.distillation: task {self.name} has no distillation loss")

    def pseudo_labels(self, scores: Tensor) -> tuple[Tensor, list[str]]:
        """For a teacher's `scores` of unlabelled rows: (each row's confidence in [0, 1], each row's label cell as
        the label column would hold it). A task without confidences cannot be pseudo-labelled."""
        raise ConfigError(f"--unlabelled_file: task {self.name} has no confidence to filter pseudo-labels by")

    def scores(self, logits: Tensor) -> Tensor:
        """What metrics and predictions see: probabilities, or the value itself for regression."""
        raise NotImplementedError

    def metrics(self) -> MetricCollection:
        raise NotImplementedError

    # Each metric's name (as `metrics()` keys it) -> whether lower or higher is better.
    metric_directions: ClassVar[dict[str, Direction]] = {}
    # What `checkpoint.monitor: auto` keeps the best checkpoint by (`val/<this>`): a quality metric where the task
    # has one, since val/loss keeps rising with overconfidence while the predictions still improve
    # (docs/your_data.md measures it).
    selection_metric: ClassVar[str] = "loss"

    def direction(self, logged_name: str) -> Direction:
        """min or max for a logged name such as `val/loss`, `val/acc` or `val/auroc/<label>`."""
        base = logged_name.split("/")[1] if "/" in logged_name else logged_name
        if base == "loss":
            return "min"
        if base not in self.metric_directions:
            raise ConfigError(f"'{logged_name}' is not a metric of task {self.name}; it has {self.metric_names()}")
        return self.metric_directions[base]

    def metric_names(self) -> list[str]:
        return ["loss", *self.metric_directions]

    def metric_inputs(self, logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """(scores, targets) in the form this task's torchmetrics objects take."""
        return self.scores(logits), self.metric_targets(targets)

    def document_logits(self, window_logits: Tensor, counts: Sequence[int], how: str = "mean") -> Tensor:
        """A chunked document's logits from its windows' (`counts` windows per document, in order), by
        `model.chunk_aggregation` (`project.tasks.aggregation`, shared with the torch-free ONNX predictor): mean or
        max of the logits serves every built-in task (classes, labels, values); a task of your own may override."""
        combined = aggregate(window_logits.detach().float().cpu().numpy(), counts, how)
        return torch.from_numpy(combined).to(window_logits.device)

    def metric_targets(self, targets: Tensor) -> Tensor:
        """Targets as the loss takes them -> as this task's torchmetrics objects take them."""
        return targets

    def metric_values(self, scores: Tensor, targets: Tensor) -> dict[str, float]:
        """This task's metrics (unprefixed: acc, f1...) of `scores` (as `scores()` gives them) against `targets`."""
        metrics = self.metrics()
        if scores.numel() == targets.numel():  # one value a row, as (N, 1) from batched prediction or (N,)
            scores = scores.reshape(targets.shape)
        metrics.update(scores, self.metric_targets(targets))
        return {name: float(value) for name, value in metrics.compute().items()}

    def decoding(self, fitted: dict | None = None) -> Decoder:
        """This task's decoder, built as the ONNX predictor builds it: from the label names, `options()` and the
        fitted decisions (`fitted`, or this task's own `decisions`)."""
        if self.decoder is None:
            raise NotImplementedError(f"task {self.name} has no decoder; it overrides decode and score_columns")
        return self.decoder(self.label_names, self.options(), self.decisions if fitted is None else fitted)

    def score_columns(self) -> list[str]:
        """Column names of the scores a prediction file shows beside the label."""
        return self.decoding().score_columns()

    def decode(self, scores: Tensor | np.ndarray) -> list[str]:
        """(N, num_outputs) scores -> N labels as text (what a prediction file's `label` column holds)."""
        if isinstance(scores, Tensor):
            scores = scores.detach().float().cpu().numpy()
        return self.decoding().labels(scores)

    def decide(self, scores: Tensor | np.ndarray, fitted: dict | None = None) -> Decided:
        """(N, num_outputs) raw scores -> calibrated scores and decisions (`Decoder.decide`, the one function every
        path applies) under `fitted` (this task's own `decisions` when None)."""
        if isinstance(scores, Tensor):
            scores = scores.detach().float().cpu().numpy()
        if self.decoder is None:  # a task of one's own that decodes itself: nothing fitted to apply
            return Decided(scores, self.decode(scores))
        return self.decoding(fitted).decide(scores)

    def fit_decisions(self, scores: Tensor, targets: Tensor) -> dict:
        """What `decide` applies, fitted on held-out `scores` and `targets` (as `metric_inputs` gives them: the best
        epoch's validation split, or cross-validation's out-of-fold rows; never the test split). This default (a
        task without probabilities): nothing."""
        return {}

    def divergence(self, outputs_a: Tensor, outputs_b: Tensor) -> Tensor:
        """How far apart two predictions of the same batch are (R-Drop's term), averaged over examples."""
        raise NotImplementedError

    def evaluate(self, scores: Tensor, targets: Tensor) -> Evaluation:
        """The evaluation report of one split from its `metric_inputs` (scores and targets), row for row. This
        default (a task of your own) reports the task's metrics only; the built-in tasks add tables and pictures."""
        from project.tasks.evaluators import Evaluation

        return Evaluation(summary={"rows": len(targets), **self.metric_values(scores, targets)}, table=[])

    def fit_to_data(self, train_targets: list) -> None:
        """Adapt to the training targets before the first step (class weights from the class counts); most tasks
        need nothing."""

    def options(self) -> dict:
        """The task's own options (`model.task_options`), as they would rebuild it."""
        return {}

    @classmethod
    def fold_strata(cls, labels: list[str]) -> list[str] | None:
        """Cross-validation's stratification key, one per row from its label cell: every fold keeps each key's
        share of the rows. None (this default): folds are drawn without regard to the labels."""
        return None

    def label_summary(self, targets: list) -> dict:
        """The data report's label section for one split's targets (as the codec encoded them); this default (a
        task of your own) reports nothing."""
        return {}

    # The TF-IDF baseline (project.evaluation.baseline) fits `baseline_model(strength)` on the training targets for
    # each strength tried, scores each on val by `baseline_scores` and keeps the best by `baseline_selection`.
    baseline_selection: ClassVar[str] = ""

    def baseline_model(self, strength: float):
        """A scikit-learn estimator for TF-IDF features, regularised by `strength` (higher: less regularisation);
        None (this default): the task has no baseline and the fit reports none."""
        return None

    def baseline_scores(self, truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
        """The baseline's metrics (named as this task's own) of `predicted` against `truth` (the targets as an
        array)."""
        raise NotImplementedError


def build_task(name: str, num_labels: int, label_names: list[str] | None = None, **options) -> Task:
    """`options` are the task's own keyword arguments (`model.task_options` in the config)."""
    task_class = TASKS.lookup(name)
    checked_options(task_class, options, "model.task_options", skip=TASK_ARGUMENTS)
    return task_class(num_labels, label_names, **options)
