"""Faiss index registry. Every index ranks by inner product, which on unit vectors is cosine similarity.

- flat: exact search (every vector compared); the right choice up to a few hundred thousand vectors.
- hnsw: a graph index; fast queries, no training, more memory; recall rises with `ef_search`.
- ivf: vectors bucketed by k-means into `nlist` cells, a query scans `nprobe` of them; trains on the data.

The query-time options (`ef_search`, `nprobe`) are set at build time; Faiss saves them in the index file.
"""

from __future__ import annotations

import math

import numpy as np

from project.core.errors import ConfigError, UserError

try:
    import faiss
except ImportError:  # an optional extra: embed and search say how to get it instead of a traceback
    faiss = None
from project.core.registry import Registry


class IndexType:
    def build(self, vectors: np.ndarray) -> faiss.Index:
        raise NotImplementedError


INDEXES: Registry[type[IndexType]] = Registry("index type")
register_index = INDEXES.register


def index_type(name: str, options: dict | None = None) -> IndexType:
    if faiss is None:
        raise UserError("similarity search needs Faiss: pip install -e '.[search]' (or pip install faiss-cpu)")
    index_class = INDEXES.lookup(name)
    try:
        return index_class(**(options or {}))
    except TypeError as error:
        raise ConfigError(f"--index_options for '{name}': {error}") from None


@register_index("flat")
class FlatIndex(IndexType):
    def build(self, vectors: np.ndarray) -> faiss.Index:
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        return index


@register_index("hnsw")
class HNSWIndex(IndexType):
    def __init__(self, m: int = 32, ef_construction: int = 200, ef_search: int = 128):
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search

    def build(self, vectors: np.ndarray) -> faiss.Index:
        index = faiss.IndexHNSWFlat(vectors.shape[1], self.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = self.ef_search
        index.add(vectors)
        return index


@register_index("ivf")
class IVFIndex(IndexType):
    def __init__(self, nlist: int | None = None, nprobe: int = 16):
        """nlist: number of k-means cells (default 4 x sqrt(N), at most N / 39 so each cell trains on 39 points)."""
        self.nlist, self.nprobe = nlist, nprobe

    def build(self, vectors: np.ndarray) -> faiss.Index:
        count, dim = vectors.shape
        nlist = self.nlist or max(1, min(int(4 * math.sqrt(count)), count // 39))
        if nlist > count:
            raise ConfigError(f"--index_options.nlist {nlist} is more than the {count} vectors to index")
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.add(vectors)
        index.nprobe = self.nprobe
        return index
