"""Embeddings are unit vectors independent of batching; every index finds a text itself; the flat index equals an
exact numpy cosine top-k; bad queries and mismatched models fail in one line."""

import csv
import json

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from project.embed import main as embed_main
from project.model.pooling import POOLERS, build_pooler
from project.retrieval.embedder import Embedder
from project.retrieval.indexes import INDEXES, faiss, index_type
from project.retrieval.query import search
from project.retrieval.store import load_store
from project.search import main as search_main
from tests.conftest import (
    LONG_MAX_LENGTH,
    long_document,
    make_rows,
    one_line_error,
    tiny_setup,
    trainer,
    write_csv,
    write_tiny_encoder,
)


@pytest.fixture(scope="module")
def texts():
    return sorted({row["review"] for row in make_rows(300, seed=11)})  # unique: no ties in the rankings


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, texts):
    folder = tmp_path_factory.mktemp("corpus")
    return write_csv(folder / "texts.csv", [{"key": f"t{i}", "review": text} for i, text in enumerate(texts)])


@pytest.fixture(scope="module")
def store(tmp_path_factory, corpus, tiny_encoder):
    out = tmp_path_factory.mktemp("stores") / "flat"
    embed_main(["--input", str(corpus), "--output", str(out), "--encoder", tiny_encoder, "--text_column", "review",
                "--id_column", "key", "--batch_size", "16"])  # fmt: skip
    return out


def test_embeddings_are_unit_vectors_and_do_not_depend_on_the_batch(tiny_encoder, texts):
    embedder = Embedder.load(encoder=tiny_encoder, pooling="mean")
    batched = embedder.embed(texts[:40], batch_size=16)
    single = np.concatenate([embedder.embed([text]) for text in texts[:40]])
    assert batched.shape == (40, 32) and batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched, single, atol=1e-5)  # padding and neighbours in a batch change nothing


def test_checkpoint_embeddings_are_its_pooled_vectors(tmp_path, tiny_encoder, texts):
    model, data = tiny_setup(write_csv(tmp_path / "train.csv", make_rows(48, pairs=True)), tiny_encoder,
                             pooling="attention")  # fmt: skip
    run = trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=0, default_root_dir=tmp_path)
    run.fit(model, data)
    run.save_checkpoint(tmp_path / "model.ckpt")
    vectors = Embedder.load(checkpoint=str(tmp_path / "model.ckpt")).embed(texts[:5])
    batch = AutoTokenizer.from_pretrained(tiny_encoder)(texts[:5], padding=True, return_tensors="pt")
    with torch.no_grad():
        pooled = model.eval().plain_model().embed(**batch)
    np.testing.assert_allclose(vectors, torch.nn.functional.normalize(pooled, dim=-1).numpy(), atol=1e-5)


def test_a_text_is_its_own_nearest_neighbour(store, texts):
    results = search(index=str(store), query=texts[7], top_k=3)
    assert results[0][0]["text"] == texts[7] and results[0][0]["id"] == "t7"
    assert results[0][0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert results[0][0]["score"] >= results[0][1]["score"] >= results[0][2]["score"]


def test_flat_index_equals_exact_numpy_cosine_top_k(store, texts, tiny_encoder, tmp_path):
    queries = write_csv(tmp_path / "queries.csv", [{"text": t} for t in ["great fun film", "dull plot", "the actor"]])
    results = search(index=str(store), queries=str(queries), top_k=10, output=str(tmp_path / "hits.csv"))
    embedder = Embedder.load(encoder=tiny_encoder, pooling="mean")
    corpus, asked = embedder.embed(texts), embedder.embed(["great fun film", "dull plot", "the actor"])
    cosine = (asked @ corpus.T) / np.outer(np.linalg.norm(asked, axis=1), np.linalg.norm(corpus, axis=1))
    for query_hits, row in zip(results, cosine, strict=True):
        exact = np.argsort(-row)[:10]
        assert [hit["text"] for hit in query_hits] == [texts[i] for i in exact]
        np.testing.assert_allclose([hit["score"] for hit in query_hits], row[exact], atol=1e-5)
    with open(tmp_path / "hits.csv", newline="", encoding="utf-8") as file:
        written = list(csv.DictReader(file))
    assert len(written) == 30 and written[0]["query"] == "great fun film" and written[0]["rank"] == "1"


@pytest.mark.parametrize("name", sorted(INDEXES))
def test_every_index_finds_each_vector_itself(name):
    generator = np.random.default_rng(0)
    vectors = generator.standard_normal((2000, 24)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = index_type(name, {"nprobe": 64} if name == "ivf" else None).build(vectors)
    scores, positions = index.search(vectors[:200], 1)
    assert (positions[:, 0] == np.arange(200)).mean() >= 0.99
    np.testing.assert_allclose(scores[:, 0][positions[:, 0] == np.arange(200)], 1.0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(INDEXES))
def test_every_index_type_round_trips_through_the_store(tmp_path, corpus, tiny_encoder, texts, name):
    out = tmp_path / name
    embed_main(["--input", str(corpus), "--output", str(out), "--encoder", tiny_encoder, "--text_column", "review",
                "--index", name])  # fmt: skip
    meta = json.loads((out / "embed.json").read_text())
    assert meta["index"] == name and meta["count"] == len(texts) and meta["dim"] == 32
    assert search(index=str(out), query=texts[3], top_k=1)[0][0]["text"] == texts[3]


def test_a_loaded_index_keeps_its_query_time_options(tmp_path, corpus, tiny_encoder):
    """A loaded index searches with the options it was embedded with (Faiss keeps them in the file)."""
    for name, options, read in [
        ("ivf", "{nlist: 4, nprobe: 3}", lambda index: faiss.extract_index_ivf(index).nprobe),
        ("hnsw", "{ef_search: 77}", lambda index: index.hnsw.efSearch),
    ]:
        out = tmp_path / name
        embed_main(["--input", str(corpus), "--output", str(out), "--encoder", tiny_encoder, "--text_column",
                    "review", "--index", name, "--index_options", options])  # fmt: skip
        _, index, _ = load_store(out)
        assert read(index) == (3 if name == "ivf" else 77)


def test_an_empty_query_file_fails_in_one_line(capsys, store, tmp_path):
    empty = tmp_path / "queries.csv"
    empty.write_text("text\n")
    assert "queries.csv: no data rows" in one_line_error(
        capsys, search_main, ["--index", str(store), "--queries", str(empty)]
    )


def test_a_model_of_another_dimension_fails_in_one_line(capsys, store, tmp_path):
    wider = write_tiny_encoder(tmp_path / "wider")  # the fixture's tokenizer and config, then 48 wide, not 32
    config = json.loads((wider / "config.json").read_text())
    BertModel(BertConfig(**{**config, "hidden_size": 48, "intermediate_size": 96})).save_pretrained(wider)
    line = one_line_error(capsys, search_main, ["--index", str(store), "--query", "fun", "--encoder", str(wider)])
    assert "holds 32-dimensional vectors" in line and "makes 48-dimensional" in line


WEIGHTED_POOLERS = [name for name in sorted(POOLERS) if any(True for _ in build_pooler(name, 32, 2).parameters())]


@pytest.mark.parametrize("name", WEIGHTED_POOLERS)
def test_a_pooler_with_untrained_weights_needs_a_checkpoint(capsys, corpus, tiny_encoder, tmp_path, name):
    line = one_line_error(capsys, embed_main, ["--input", str(corpus), "--output", str(tmp_path / "x"), "--encoder",
                                    tiny_encoder, "--text_column", "review", "--pooling", name])  # fmt: skip
    assert "only training sets" in line
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.partial*"))


def test_an_existing_output_folder_is_refused(capsys, corpus, store, tiny_encoder):
    before = sorted(path.name for path in store.iterdir())
    argv = ["--input", str(corpus), "--output", str(store), "--encoder", tiny_encoder, "--text_column", "review"]
    line = one_line_error(capsys, embed_main, argv)
    assert "already exists" in line and sorted(path.name for path in store.iterdir()) == before


@pytest.mark.parametrize(
    "truncation, sees_the_end", [("head", False), ("tail", True), ("head_tail", True), ("chunks", True)]
)
def test_a_checkpoints_embeddings_cut_long_documents_as_it_was_trained(
    long_document_checkpoint, truncation, sees_the_end
):
    embedder = Embedder.load(checkpoint=str(long_document_checkpoint(truncation)))
    first, second = embedder.embed([long_document("superb"), long_document("awful")], max_length=LONG_MAX_LENGTH)
    assert (np.abs(first - second).max() > 1e-6) == sees_the_end


def test_a_prefix_is_embedded_with_every_text_saved_and_put_before_queries(tmp_path, corpus, tiny_encoder, texts):
    # E5 encoders want "query: " (or "passage: ") before each text; the tiny encoder only sees the added tokens.
    out = tmp_path / "prefixed"
    embed_main(["--input", str(corpus), "--output", str(out), "--encoder", tiny_encoder, "--text_column", "review",
                "--prefix", "good bad "])  # fmt: skip
    meta, _, rows = load_store(out)
    assert meta["prefix"] == "good bad " and rows[0]["text"] == texts[0]  # the stored text stays as read
    expected = Embedder.load(encoder=tiny_encoder, pooling="mean").embed(["good bad " + text for text in texts[:3]])
    np.testing.assert_allclose(np.load(out / "embeddings.npy")[:3], expected, atol=1e-5)
    (hit, *_), *_ = search(index=str(out), query=texts[7], top_k=2)  # the index's prefix, before the query too
    assert hit["text"] == texts[7] and hit["score"] == pytest.approx(1.0, abs=1e-5)
    (bare, *_), *_ = search(index=str(out), query=texts[7], top_k=2, query_prefix="")
    assert bare["score"] < 1.0 - 1e-3  # without it the query is another vector
