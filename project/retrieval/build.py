"""What `python -m project.embed --input texts.csv --output embeddings/reviews --checkpoint CKPT` does

Embeds every text (the pooled vector, L2-normalised) and builds a Faiss index over them, into a new folder written
whole or not at all (see `project.retrieval.store`). `--encoder NAME --pooling mean` embeds with a bare encoder
instead of a fine-tuned checkpoint. Query it with `python -m project.search`.
"""

from __future__ import annotations

import time
from typing import Any

from project.core.atomic import new_folder
from project.data.readers import read_table
from project.inference.batching import check_precision
from project.retrieval.embedder import Embedder
from project.retrieval.indexes import index_type
from project.retrieval.store import save_store


def embed(
    *, input: str, output: str, checkpoint: str | None = None, encoder: str | None = None,
    pooling: str | None = None, pooling_options: dict[str, Any] | None = None, text_column: str = "text",
    id_column: str | None = None, index: str = "flat", index_options: dict[str, Any] | None = None,
    batch_size: int = 64, max_length: int = 128, precision: str = "32", device: str = "cpu", prefix: str = "",
) -> None:  # fmt: skip
    """Embed the texts of `input` and index them for cosine search.

    Args:
        input: CSV, TSV, JSONL, JSON or text file (one text a line) with the texts.
        output: the folder to create; an existing path is refused.
        checkpoint: a `.ckpt` from `python -m project.fit`: its encoder and pooler.
        encoder: instead of a checkpoint, a bare encoder (built-in name, folder, or hub name while online).
        pooling: with --encoder, a weightless pooler: mean (default), cls, max, min, mean_max, kmax_mean.
        pooling_options: the pooler's options, e.g. {k: 3}.
        text_column: column with the text.
        id_column: column saved as each text's id (default: the row number, from 1).
        index: flat (exact), hnsw or ivf (approximate, for large sets).
        index_options: hnsw {m, ef_construction, ef_search}; ivf {nlist, nprobe}.
        batch_size: texts per forward pass.
        max_length: truncation length.
        precision: 32, bf16 or 16 (autocast).
        device: cpu, cuda, cuda:1...
        prefix: put before every text when embedding it (the stored texts stay as read), and saved with the index:
            `project.search` puts it before each query too unless told otherwise. E5 encoders (the built-in
            multilingual-e5-small) were trained on prefixed texts: "query: " for similarity between texts alike,
            "passage: " for documents searched by short queries (then search with --query_prefix "query: ").
    """
    check_precision(precision)
    kind = index_type(index, index_options)  # a bad index name or option fails before any embedding
    rows = read_table(input, [id_column], filled=[text_column])
    with new_folder(output) as folder:
        embedder = Embedder.load(checkpoint, encoder, pooling, pooling_options, device)
        texts = [row[text_column] for row in rows]
        vectors = embedder.embed([prefix + text for text in texts], batch_size, max_length, precision, progress=True)
        start = time.perf_counter()
        built = kind.build(vectors)
        seconds = time.perf_counter() - start
        meta = {
            **embedder.source, "max_length": max_length, "dim": embedder.dim, "count": len(texts),
            "index": index, "index_options": index_options or {}, "prefix": prefix,
        }  # fmt: skip
        ids = [row[id_column] if id_column else number for number, row in enumerate(rows, start=1)]
        save_store(folder, meta, vectors, [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)], built)
    print(f"embedded {len(texts)} texts ({embedder.dim} dims) into {output}; {index} index built in {seconds:.2f} s")
