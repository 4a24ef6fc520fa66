"""Faiss index build and query time, flat vs approximate (HNSW, IVF), with recall@10 against exact search.

    python bench/search_index.py [--vectors 100000] [--queries 1000] [--real-checkpoint RUN/checkpoints/best.ckpt]

Two collections: (1) `--vectors` synthetic unit vectors of 384 dims (the default encoder's width) drawn around 1,000
random centres (noise `--spread` per dimension; at 1.0 a point's cosine to its centre is about 0.7), so that, as
with sentence embeddings, neighbours cluster; queries are fresh draws from the same
mixture. (2) With `--real-checkpoint`: the Rotten Tomatoes texts embedded by that fine-tuned checkpoint (mean
pooling), 10% held out as queries. recall@10 = share of the exact (flat) top 10 that the index returns in its top 10.
Query time: per query when all queries go in one batch (Faiss parallelises across them), and the median latency
of a single query (200 of them, one at a time).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import print_table  # noqa: E402

VARIANTS = {"flat": {}, "hnsw": {"m": 32, "ef_construction": 200, "ef_search": 128}, "ivf": {"nprobe": 16}}


def synthetic(count: int, queries: int, spread: float, dim: int = 384, centres: int = 1000):
    import numpy as np

    generator = np.random.default_rng(0)
    means = generator.standard_normal((centres, dim)).astype(np.float32)

    def draw(size):
        points = means[generator.integers(0, centres, size)] + spread * generator.standard_normal((size, dim))
        return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)

    return draw(count), draw(queries)


def real(checkpoint: str):
    from project.data.builtin import load_dataset
    from project.retrieval.embedder import Embedder

    texts = [row["text"] for row in load_dataset("rotten_tomatoes")]
    vectors = Embedder.load(checkpoint=checkpoint).embed(texts, batch_size=64, progress=True)
    held_out = len(texts) // 10
    return vectors[held_out:], vectors[:held_out]


def measure(name: str, corpus, queries) -> list[str]:
    import faiss

    from project.retrieval.indexes import index_type

    rows, exact = [], None
    for kind, options in VARIANTS.items():
        start = time.perf_counter()
        index = index_type(kind, options).build(corpus)
        built = time.perf_counter() - start
        start = time.perf_counter()
        _, found = index.search(queries, 10)
        queried = time.perf_counter() - start
        single = []
        for query in queries[:200]:  # one query at a time: a served request's latency
            start = time.perf_counter()
            index.search(query[None], 10)
            single.append(time.perf_counter() - start)
        if exact is None:
            exact = found
        recall = sum(len(set(a) & set(b)) for a, b in zip(found, exact, strict=True)) / exact.size
        size = len(faiss.serialize_index(index)) / 2**20
        label = f"{kind} {options}" if options else kind
        rows.append([
            name, label, f"{built:.2f}", f"{queried * 1e6 / len(queries):.0f}",
            f"{statistics.median(single) * 1e6:.0f}", f"{recall:.3f}", f"{size:.0f}",
        ])  # fmt: skip
        print(rows[-1], file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=1.0, help="noise per dimension around a centre of norm ~19.6")
    parser.add_argument("--real-checkpoint")
    options = parser.parse_args()
    corpus, queries = synthetic(options.vectors, options.queries, options.spread)
    rows = measure(f"synthetic {len(corpus):,} × 384, spread {options.spread}", corpus, queries)
    if options.real_checkpoint:
        corpus, queries = real(options.real_checkpoint)
        rows += measure(f"Rotten Tomatoes {len(corpus):,} × {corpus.shape[1]}", corpus, queries)
    print_table(
        f"{options.queries} queries per collection (RT: its held-out 10%), top 10.",
        ["collection", "index", "build s", "µs/query, batched", "µs, one query", "recall@10", "MiB"],
        rows,
    )


if __name__ == "__main__":
    main()
