import multiprocessing
import time
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from project.data import token_cache
from project.data.token_cache import cached_tokens
from project.data.truncation import Truncation

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


def test_an_entry_holds_the_strategys_ids_and_each_rows_length_before_the_cut(tmp_path, tokenizer):
    tokens = cached_tokens(tokenizer, TEXTS, None, 6, root=tmp_path, truncation=Truncation("tail"))
    whole = tokenizer(TEXTS)["input_ids"]
    assert tokens.full_lengths.tolist() == [len(ids) for ids in whole]
    long = TEXTS.index("a very very long story with the actor and the scene")
    assert tokens.row(long)["input_ids"] == whole[long][:1] + whole[long][-5:]  # [CLS] and the last 4 + [SEP]


def test_built_in_chunks_equals_built_at_once(tmp_path, tokenizer, monkeypatch):
    whole = cached_tokens(tokenizer, TEXTS * 5, None, 16, root=tmp_path / "whole")
    monkeypatch.setattr(token_cache, "CHUNK", 3)
    chunked = cached_tokens(tokenizer, TEXTS * 5, None, 16, root=tmp_path / "chunked")
    assert np.array_equal(whole.offsets, chunked.offsets) and np.array_equal(whole.input_ids, chunked.input_ids)


@pytest.mark.parametrize("truncation", ["head", "chunks"])
def test_long_texts_go_to_the_tokenizer_in_chunks_bounded_by_characters(tmp_path, tokenizer, monkeypatch, truncation):
    texts = [" ".join(["the actor and the scene"] * (1 + i % 7)) for i in range(40)]
    whole = cached_tokens(tokenizer, texts, None, 16, root=tmp_path / "whole", truncation=Truncation(truncation))
    calls = []
    original = token_cache._build

    def recording(folder, tokenizer, chunks, *args):
        chunks = [(list(texts), pairs) for texts, pairs in chunks]
        calls.extend(sum(map(len, texts)) for texts, _ in chunks)
        return original(folder, tokenizer, chunks, *args)

    monkeypatch.setattr(token_cache, "_build", recording)
    monkeypatch.setattr(token_cache, "CHUNK_CHARACTERS", 300)
    chunked = cached_tokens(tokenizer, texts, None, 16, root=tmp_path / "chunked", truncation=Truncation(truncation))
    longest = max(map(len, texts))
    assert len(calls) > 5 and max(calls) < 300 + longest and sum(calls) == sum(map(len, texts))
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
    cached_tokens(tokenizer, TEXTS, None, 8, root=tmp_path, truncation=Truncation("tail"))  # strategy
    cached_tokens(tokenizer, TEXTS, None, 8, root=tmp_path, truncation=Truncation("head_tail"))
    cached_tokens(tokenizer, TEXTS, None, 8, root=tmp_path, truncation=Truncation("head_tail", 3))  # its head
    assert len(list(tmp_path.iterdir())) == 7
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no half-written entries


def test_the_tokenizer_definition_is_part_of_the_key(tmp_path, tokenizer):
    first = cached_tokens(tokenizer, TEXTS, None, 8, root=tmp_path)
    tokenizer.add_tokens(["greatness"])
    second = cached_tokens(tokenizer, TEXTS, None, 8, root=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2 and len(first) == len(second)


class SlowCountingTokenizer:
    """Stands in for a tokenizer: notes every call in `log` and takes seconds, so that two processes overlap."""

    is_fast = False  # no encodings to cut: it truncates itself, as a slow Python tokenizer does

    def __init__(self, log: Path):
        self.log = log

    def get_vocab(self) -> dict[str, int]:
        return {"[PAD]": 0}

    def __call__(self, texts, pairs, **kwargs):
        with self.log.open("a") as file:
            file.write("tokenized\n")
        time.sleep(3)
        return {"input_ids": [[1] * len(text.split()) for text in texts]}


@pytest.mark.slow
def test_processes_asking_for_the_same_entry_at_once_tokenize_it_once(tmp_path):
    # What the ranks of a torchrun or SLURM job do: each reads its data before any process group exists.
    log = tmp_path / "calls.txt"
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=cached_tokens, args=(SlowCountingTokenizer(log), TEXTS, None, 8, tmp_path / "cache"))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0, 0]
    assert log.read_text().splitlines() == ["tokenized"]
    tokens = cached_tokens(SlowCountingTokenizer(log), TEXTS, None, 8, root=tmp_path / "cache")
    assert tokens.lengths().tolist() == [len(text.split()) for text in TEXTS]
    entries = list((tmp_path / "cache").iterdir())  # one whole entry; no lock file or half-built folder left
    assert len(entries) == 1 and (entries[0] / "meta.json").exists()
