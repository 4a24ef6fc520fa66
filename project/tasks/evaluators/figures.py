"""The report's pictures (matplotlib, no display needed): reliability diagram, scatter, residual histogram, and a
labelled matrix. torchmetrics draws the confusion matrix itself (`MulticlassConfusionMatrix.plot`)."""

from __future__ import annotations

# Figure objects, never pyplot's global state: no backend is chosen here, so a notebook that trains keeps showing its
# own plots, and a server without a display needs none.
import numpy as np
from matplotlib.figure import Figure

# Classes (labels) a matrix figure shows at most: above, the most confused ones (the report's JSON keeps the whole
# matrix). 25 stay readable at a cell each; 160 drew 25,600 numbers into a 5-8 MB picture and took minutes.
MATRIX_CLASSES = 25


def reliability_diagram(
    confidence: np.ndarray, correct: np.ndarray, bins: int, ece: float, what: str = "",
    x: str = "confidence (top-class probability)",
) -> Figure:  # fmt: skip
    """Accuracy per confidence bin against the diagonal a calibrated model follows, with the bin counts; `what`
    names the probabilities in the title (raw, calibrated)."""
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    edges = np.linspace(0, 1, bins + 1)
    slot = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    counts = np.bincount(slot, minlength=bins)
    accuracy = np.bincount(slot, weights=correct.astype(float), minlength=bins) / np.maximum(counts, 1)
    centres = (edges[:-1] + edges[1:]) / 2
    axes.bar(centres[counts > 0], accuracy[counts > 0], width=1 / bins, edgecolor="black", alpha=0.7, label="accuracy")
    axes.plot([0, 1], [0, 1], "--", color="grey", label="calibrated")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel=x, ylabel="accuracy" if x.startswith("confidence") else "share positive",
             title=f"reliability{', ' + what if what else ''}, ECE {ece:.3f}")  # fmt: skip
    axes.legend(loc="upper left")
    return figure


def scatter(truth: np.ndarray, predicted: np.ndarray) -> Figure:
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    axes.scatter(truth, predicted, s=6, alpha=0.5)
    low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
    axes.plot([low, high], [low, high], "--", color="grey")
    axes.set(xlabel="true value", ylabel="predicted value", title="predicted vs true")
    return figure


def histogram(values: np.ndarray, title: str, xlabel: str) -> Figure:
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    axes.hist(values, bins=40)
    axes.set(xlabel=xlabel, ylabel="rows", title=title)
    return figure


def matrix(values: np.ndarray, names: list[str], title: str) -> Figure:
    figure = Figure(figsize=(1.2 + 0.6 * len(names), 1 + 0.6 * len(names)))
    axes = figure.subplots()
    image = axes.imshow(values, cmap="Blues")
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(names)), names)
    for (row, column), value in np.ndenumerate(values):
        axes.text(column, row, f"{value:g}", ha="center", va="center", fontsize=8)
    figure.colorbar(image)
    axes.set_title(title)
    figure.tight_layout()
    return figure
