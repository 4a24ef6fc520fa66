"""The folder `project.embed` writes and `project.search` reads.

embed.json        how the vectors were made (checkpoint, or encoder + pooling), max length, dim, index type
embeddings.npy    (N, dim) float32, unit rows, row i for rows.jsonl line i
rows.jsonl        {"id": ..., "text": ...} per embedded text
index.faiss       the Faiss index over embeddings.npy
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from project.core.atomic import write_bytes, write_text
from project.core.errors import UserError
from project.retrieval.indexes import faiss, index_type

META, VECTORS, ROWS, INDEX = "embed.json", "embeddings.npy", "rows.jsonl", "index.faiss"


def save_store(folder: Path, meta: dict, vectors: np.ndarray, rows: list[dict], index: faiss.Index) -> None:
    """Each file whole (`write_bytes`: free space checked first, so a full disk is one line naming the file, not
    numpy's or Faiss's error without a cause); the folder is the embed command's staging folder."""
    header = io.BytesIO()  # the .npy header, then the array's own buffer: no copy of the vectors
    vectors = np.ascontiguousarray(vectors)
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(vectors))
    write_bytes(folder / VECTORS, [header.getvalue(), memoryview(vectors)])
    write_text(folder / ROWS, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    write_bytes(folder / INDEX, memoryview(faiss.serialize_index(index)))
    write_text(folder / META, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


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
