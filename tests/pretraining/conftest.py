"""A tiny character-level Chinese BERT (vocabulary built from the test texts) and raw-text corpora."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from project.pretraining.scratch import write_character_bert

GOOD = ["很好", "喜欢", "满意", "推荐", "不错"]
BAD = ["失望", "太差", "退货", "难看", "糟糕"]
FILLER = ["这本", "书", "的", "内容", "质量", "酒店", "服务", "我们", "觉得", "非常", "还是", "一般"]


def chinese_reviews(count: int, seed: int = 0) -> list[dict[str, str]]:
    """Learnable toy reviews: the label follows the sentiment word; a little English and digits as well."""
    generator = random.Random(seed)
    rows = []
    for _ in range(count):
        label = generator.choice(["positive", "negative"])
        words = generator.choices(FILLER, k=generator.randint(3, 15))
        words.insert(generator.randrange(len(words) + 1), generator.choice(GOOD if label == "positive" else BAD))
        if generator.random() < 0.2:
            words.append(generator.choice(["ok", "kindle", "2011年"]))
        rows.append({"text": "".join(words) + "。", "label": label})
    return rows


@pytest.fixture(scope="session")
def chinese_encoder(tmp_path_factory) -> str:
    texts = [row["text"] for row in chinese_reviews(200)]
    folder = tmp_path_factory.mktemp("char-bert")
    return str(write_character_bert(folder, texts, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=64, max_position_embeddings=64))  # fmt: skip


def write_corpus(path: Path, count: int = 120, seed: int = 0) -> Path:
    path.write_text("\n".join(row["text"] for row in chinese_reviews(count, seed)) + "\n", encoding="utf-8")
    return path


def two_character_words(text: str) -> list[str]:
    """A segmenter the tests name as 'tests.pretraining.conftest:two_character_words'."""
    return [text[start : start + 2] for start in range(0, len(text), 2)]
