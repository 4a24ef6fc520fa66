"""A TF-IDF baseline beside every result: fitted on the same train split in seconds, its regularisation chosen on
the same val split, scored on the same test split. If the fine-tune does not beat it, the user learns so at once.

Word 1-2-grams, or character 1-3-grams for text without spaces between words (Chinese, Japanese); the linear model
and its metrics are the task's (`Task.baseline_model`: logistic regression for classes, one per label for
multi-label, ridge regression for numbers).
"""

from __future__ import annotations

import numpy as np

from project.data.splits import read_texts
from project.tasks import Task

CHOICES = (0.25, 1.0, 4.0, 16.0)  # C (classes) or 1 / alpha (ridge): the regularisation tried on val
# Word bigrams of a million texts need gigabytes and many minutes; this many rows give a baseline's answer in
# seconds, and a linear model on TF-IDF gains little beyond them.
MAX_TRAIN_ROWS = 100_000


def unsegmented(texts: list[str]) -> bool:
    """Mostly characters of scripts written without spaces between words."""
    sample = "".join(texts[:2000])
    wide = sum(1 for char in sample if "\u3040" <= char <= "\u30ff" or "\u4e00" <= char <= "\u9fff")
    return bool(sample) and wide / len(sample) > 0.3


def vectorizer(texts: list[str]):
    from sklearn.feature_extraction.text import TfidfVectorizer

    if unsegmented(texts):
        return TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)


def baseline_metrics(splits: dict, datasets: dict, task: Task) -> dict[str, float]:
    """`baseline/test/<metric>` (and `baseline/val/<metric>`) by the task's baseline model and metrics; nothing for
    a task without a baseline (`Task.baseline_model` gives None)."""
    if task.baseline_model(CHOICES[0]) is None:
        return {}
    splits, targets = dict(splits), {name: np.asarray(dataset.targets) for name, dataset in datasets.items()}
    if len(splits["train"]) > MAX_TRAIN_ROWS:  # a seeded sample, the same in every run on this split
        kept = np.sort(np.random.default_rng(0).choice(len(splits["train"]), MAX_TRAIN_ROWS, replace=False))
        splits["train"], targets["train"] = splits["train"].take(kept), targets["train"][kept]
    texts = read_texts(splits)
    features = vectorizer(texts["train"])
    try:
        train = features.fit_transform(texts["train"])
    except ValueError:  # every word occurs once: min_df leaves no vocabulary
        features.set_params(min_df=1)
        train = features.fit_transform(texts["train"])
    encoded = {name: features.transform(texts[name]) for name in texts if name != "train"}
    fitted = [task.baseline_model(c).fit(train, targets["train"]) for c in CHOICES]
    scores = [task.baseline_scores(targets["val"], model.predict(encoded["val"])) for model in fitted]
    best = int(np.nanargmax([result[task.baseline_selection] for result in scores]))
    metrics = {"baseline/train_rows": float(len(texts["train"]))}
    metrics.update({f"baseline/val/{name}": float(value) for name, value in scores[best].items()})
    if "test" in encoded:
        tested = task.baseline_scores(targets["test"], fitted[best].predict(encoded["test"]))
        metrics.update({f"baseline/test/{name}": float(value) for name, value in tested.items()})
    return metrics
