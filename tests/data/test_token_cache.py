import numpy as np
import pytest
from transformers import AutoTokenizer

from project.data import token_cache
from project.data.token_cache import cached_tokens

TEXTS = ["the film is great", "boring", "a very very long story with the actor and the scene", "fun"]
PAIRS = ["the plot", "a scene", "very", "movie"]


@pytest.fixture
def tokenizer(tiny_encoder):
    return AutoTokenizer.from_pretrained(tiny_encoder)


@pytest.mark.parametrize("pairs", [None, PAIRS])
def test_cached_rows_equal_the_tokenizer_output(tmp_path, tokenizer, pairs):
    tokens = cached_tokens(tokenizer, TEXTS, pairs, max_length=8, root=tmp_path)
    expected = tokenizer(TEXTS, pairs, truncation=True, max_length=8)
    assert len(tokens) == len(TEXTS)
    for index in range(len(TEXTS)):
        row = tokens.row(index)
        assert row["input_ids"] == expected["input_ids"][index]
        assert row["attention_mask"] == expected["attention_mask"][index]
        assert row.get("token_type_ids") == (
            expected["token_type_ids"][index] if pairs else [0] * len(row["input_ids"])
        )
    assert tokens.lengths().tolist() == [len(ids) for ids in expected["input_ids"]]


def test_built_in_chunks_equals_built_at_once(tmp_path, tokenizer, monkeypatch):
    whole = cached_tokens(tokenizer, TEXTS * 5, None, 16, root=tmp_path / "whole")
    monkeypatch.setattr(token_cache, "CHUNK", 3)
    chunked = cached_tokens(tokenizer, TEXTS * 5, None, 16, root=tmp_path / "chunked")
    assert np.array_equal(whole.offsets, chunked.offsets) and np.array_equal(whole.input_ids, chunked.input_ids)


def test_a_second_run_reuses_the_entry_and_any_change_makes_a_new_one(tmp_path, tokenizer, monkeypatch):
    cached_tokens(tokenizer, TEXTS, None, 8, root=tmp_path)
    entries = sorted(path.name for path in tmp_path.iterdir())

    def never(*args):
        raise AssertionError("tokenized again")

    monkeypatch.setattr(token_cache, "_build", never)
    cached_tokens(tokenizer, TEXTS, None, 8, root=tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == entries
    monkeypatch.undo()
    cached_tokens(tokenizer, TEXTS, None, 9, root=tmp_path)  # max_length
    cached_tokens(tokenizer, TEXTS[:-1] + ["fun!"], None, 8, root=tmp_path)  # one text
    cached_tokens(tokenizer, TEXTS, PAIRS, 8, root=tmp_path)  # pairs
    assert len(list(tmp_path.iterdir())) == 4
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no half-written entries


def test_the_tokenizer_definition_is_part_of_the_key(tmp_path, tokenizer):
    first = cached_tokens(tokenizer, TEXTS, None, 8, root=tmp_path)
    tokenizer.add_tokens(["greatness"])
    second = cached_tokens(tokenizer, TEXTS, None, 8, root=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2 and len(first) == len(second)
