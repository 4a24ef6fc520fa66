"""What `python -m project.search --index embeddings/reviews --query "a warm, funny film" --top_k 5`

Embeds the query (or each text of `--queries FILE`) the way the index's texts were embedded and prints the top-k
ids, cosine scores and texts; `--output results.csv` also writes them. The embedder can be overridden
(`--checkpoint`, `--encoder`, `--pooling`), but its dimension must match the index's.
"""

from __future__ import annotations

from project.core.atomic import write_csv
from project.core.errors import ConfigError, DataError, UserError
from project.data.readers import read_table
from project.inference.batching import check_precision
from project.retrieval.embedder import Embedder
from project.retrieval.store import load_store


def search(
    *, index: str, query: str | None = None, queries: str | None = None, text_column: str = "text",
    top_k: int = 10, output: str | None = None, checkpoint: str | None = None, encoder: str | None = None,
    pooling: str | None = None, batch_size: int = 64, precision: str = "32", device: str = "cpu",
    query_prefix: str | None = None,
) -> list[list[dict]]:  # fmt: skip
    """Print (and return) the `top_k` nearest indexed texts of each query, best first.

    Args:
        index: a folder written by `python -m project.embed`.
        query: one query text.
        queries: instead, a CSV, TSV, JSONL, JSON or text file (one query a line) of queries (column `text_column`).
        text_column: the queries file's text column.
        top_k: results per query.
        output: also write the results to this CSV: query_number, query, rank, id, score, text.
        checkpoint: embed queries with this checkpoint instead of the index's own embedder.
        encoder: embed queries with this bare encoder instead (with --pooling).
        pooling: the pooler for --encoder.
        batch_size: queries per forward pass.
        precision: 32, bf16 or 16 (autocast).
        device: cpu, cuda...
        query_prefix: put before each query when embedding it; default: the index's `--prefix` (E5 encoders:
            "query: ", also for an index of "passage: " texts).
    """
    if (query is None) == (queries is None):
        raise ConfigError("give exactly one of --query TEXT or --queries FILE")
    check_precision(precision)
    if top_k < 1:
        raise ConfigError(f"--top_k must be at least 1, got {top_k}")
    if query is not None:
        if not query.strip():
            raise DataError("--query is empty")
        texts = [query]
    else:
        texts = [row[text_column] for row in read_table(queries, filled=[text_column])]
    meta, faiss_index, rows = load_store(index)
    if checkpoint or encoder:
        embedder = Embedder.load(checkpoint, encoder, pooling, device=device)
    else:
        embedder = Embedder.load(
            meta.get("checkpoint"), meta.get("encoder"), meta.get("pooling"), meta.get("pooling_options"), device
        )
    if embedder.dim != faiss_index.d:
        raise UserError(
            f"--index {index} holds {faiss_index.d}-dimensional vectors but the query embedder "
            f"({checkpoint or encoder}) makes {embedder.dim}-dimensional ones; use the model that built the index"
        )
    prefix = meta.get("prefix", "") if query_prefix is None else query_prefix  # indexes before the option: none
    vectors = embedder.embed([prefix + text for text in texts], batch_size, meta["max_length"], precision)
    scores, positions = faiss_index.search(vectors, min(top_k, faiss_index.ntotal))
    results = [
        [{"rank": rank, **rows[position], "score": float(score)}
         for rank, (score, position) in enumerate(zip(query_scores, query_positions, strict=True), start=1)
         if position >= 0]  # approximate indexes return -1 where they found fewer than k
        for query_scores, query_positions in zip(scores, positions, strict=True)
    ]  # fmt: skip
    for text, hits in zip(texts, results, strict=True):
        print(f"query: {text}")
        for hit in hits:
            print(f"  {hit['rank']:>3}  {hit['score']:.4f}  {hit['id']}  {hit['text']}")
    if output:
        write_results(output, texts, results)
    return results


def write_results(output: str, texts: list[str], results: list[list[dict]]) -> None:
    header = ["query_number", "query", "rank", "id", "score", "text"]
    write_csv(output, [header] + [
        [number, text, hit["rank"], hit["id"], f"{hit['score']:.6f}", hit["text"]]
        for number, (text, hits) in enumerate(zip(texts, results, strict=True), start=1)
        for hit in hits
    ])  # fmt: skip
