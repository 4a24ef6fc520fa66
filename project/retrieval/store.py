"""The folder `project.embed` writes and `project.search` reads.

embed.json        how the vectors were made (checkpoint, or encoder + pooling), max length, dim, index type
embeddings.npy    (N, dim) float32, unit rows, row i for rows.jsonl line i
rows.jsonl        {"id": ..., "text": ...} per embedded text
index.faiss       the Faiss index over embeddings.npy
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from project.core.errors import UserError
from project.retrieval.indexes import faiss, index_type

META, VECTORS, ROWS, INDEX = "embed.json", "embeddings.npy", "rows.jsonl", "index.faiss"


def save_store(folder: Path, meta: dict, vectors: np.ndarray, rows: list[dict], index: faiss.Index) -> None:
    np.save(folder / VECTORS, vectors)
    with open(folder / ROWS, "w", encoding="utf-8") as file:
        for row in rows:
            file.write(json.dumps(row, ensure_ascii=False) + "\n")
    faiss.write_index(index, str(folder / INDEX))
    (folder / META).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load_store(folder: str | Path) -> tuple[dict, faiss.Index, list[dict]]:
    """(meta, index, rows)."""
    folder = Path(folder)
    if not (folder / META).is_file():
        raise UserError(f"--index {folder}: no {META}; build it with python -m project.embed")
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    index_type(meta["index"], meta["index_options"])  # Faiss installed, and a type this version knows
    index = faiss.read_index(str(folder / INDEX))
    with open(folder / ROWS, encoding="utf-8") as file:
        rows = [json.loads(line) for line in file]
    if index.ntotal != len(rows):
        raise UserError(f"--index {folder}: {INDEX} holds {index.ntotal} vectors but {ROWS} {len(rows)} rows")
    return meta, index, rows
