"""Token ids on disk: each text list (a whole file's texts: the splits carved from it index into its entry) is
tokenized once, in chunks, into flat memory-mapped arrays that later runs (and every DDP rank, and every DataLoader
worker) share without holding them in memory.

Why numpy memory maps rather than Arrow (`datasets`): the data is one ragged int32 array plus offsets, which numpy
maps directly; `datasets` would add a large dependency (and its own cache rules) for the same layout.

The key covers everything that changes the ids: the tokenizer's full definition (vocabulary, normaliser, special
tokens, post-processor), `max_length`, the segment rule (`project.data.segments`: none, the tokenizer's, or built
from sequence ids), and the texts and text pairs themselves (their sha256, so an edited file
gets another entry, while another seed or val_ratio reuses the file's).

Under `data.truncation: chunks` a row holds every token its windows read (the document once, not once per window),
and the entry adds where each row's windowed text lies (`contents.npy`) and each window's span of it (`spans.npy`,
`span_offsets.npy`: row i's windows are spans[span_offsets[i]:span_offsets[i + 1]]); `window` builds one
(`project.data.chunks.window`). Entries are written to a temporary folder
and renamed into place, so a killed run never leaves a half-written entry behind, and a lock file makes concurrent
processes (DDP ranks) build an entry once: one tokenizes, the others wait for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path

import numpy as np
from filelock import FileLock

from project.core.assets import cache_root
from project.data.chunks import window
from project.data.segments import NO_SEGMENTS, TOKENIZER_SEGMENTS, encode_counted, encode_layouts, segment_ids
from project.data.truncation import HEAD, Truncation

# 2: one entry per file (splits index into it), not one per split; 3: each row's length before the cut recorded
FORMAT_VERSION = 3
ROOT_ENV = "BERT_TEMPLATE_TOKEN_CACHE"  # default: <the asset cache>/tokens
CHUNK = 10_000  # texts per tokenizer call: bounds the Python lists (and strings read back) alive at once
# ... and characters per call: 10,000 documents of 2,000 tokens held 20M token ids as Python lists (a 3.4 GiB peak
# tokenizing 100k of them, docs/benchmarks.md); short texts still go 10,000 to a call.
CHUNK_CHARACTERS = 4_000_000


def chunk_is_full(texts: int, characters: int) -> bool:
    """Whether a chunk of `texts` texts holding `characters` characters (pairs included) is as large as one gets."""
    return texts >= CHUNK or characters >= CHUNK_CHARACTERS


def token_cache_root() -> Path:
    return Path(os.environ[ROOT_ENV]).expanduser() if os.environ.get(ROOT_ENV) else cache_root() / "tokens"


def tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)  # fast tokenizers serialise their whole pipeline
    if backend is not None:
        pipeline = json.loads(backend.to_str())
        # The last call's truncation and padding settings live there too; max_length is keyed separately.
        pipeline.pop("truncation", None), pipeline.pop("padding", None)
        definition = json.dumps(pipeline, sort_keys=True)
    else:
        definition = json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return hashlib.sha256(f"{type(tokenizer).__name__}\n{definition}".encode()).hexdigest()


class TextsDigest:
    """sha256 over texts and their pairs in order: the part of the key that names the texts."""

    def __init__(self):
        self._digest = hashlib.sha256()

    def update(self, text: str, pair: str | None) -> None:
        self._digest.update(text.encode())
        self._digest.update(b"\x1f" + (pair.encode() if pair is not None else b"") + b"\x1e")

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def texts_fingerprint(texts: Sequence[str], pairs: Sequence[str] | None) -> str:
    digest = TextsDigest()
    for index, text in enumerate(texts):
        digest.update(text, pairs[index] if pairs is not None else None)
    return digest.hexdigest()


class TokenCache:
    """One tokenized text list, memory-mapped: `row(i)` gives row i's token ids, attention mask and segment ids."""

    def __init__(self, folder: Path):
        meta = json.loads((folder / "meta.json").read_text())
        self.offsets = np.load(folder / "offsets.npy", mmap_mode="r")
        self.input_ids = np.memmap(folder / "input_ids.bin", dtype=np.int32, mode="r", shape=(meta["tokens"],))
        # Each row's token count before the cut: what the data report compares with max_length.
        self.full_lengths = np.load(folder / "full_lengths.npy", mmap_mode="r")
        self.token_type_ids = None
        if meta["has_token_type_ids"]:
            self.token_type_ids = np.memmap(
                folder / "token_type_ids.bin", dtype=np.uint8, mode="r", shape=(meta["tokens"],)
            )
        self.chunked = bool(meta.get("chunked"))
        if self.chunked:
            self.contents = np.load(folder / "contents.npy", mmap_mode="r")
            self.spans = np.load(folder / "spans.npy", mmap_mode="r")
            self.span_offsets = np.load(folder / "span_offsets.npy", mmap_mode="r")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, index: int) -> dict[str, list[int]]:
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        row = {"input_ids": self.input_ids[start:end].tolist(), "attention_mask": [1] * (end - start)}
        if self.token_type_ids is not None:
            row["token_type_ids"] = self.token_type_ids[start:end].tolist()
        return row

    # ------------------------------------------------------------------ chunks: a row's windows
    def window_counts(self) -> np.ndarray:
        return np.diff(self.span_offsets)

    def window(self, index: int, span: int) -> dict[str, list[int]]:
        """Row `index`'s window number `span` (counted over the whole entry, as `spans` holds them)."""
        row, content, bounds = self.row(index), tuple(self.contents[index]), tuple(self.spans[span])
        cut = {key: window(values, content, bounds) for key, values in row.items() if key != "attention_mask"}
        return {**cut, "attention_mask": [1] * len(cut["input_ids"])}

    def window_lengths(self) -> np.ndarray:
        """Each window's token count, in `spans` order."""
        documents = np.repeat(np.arange(len(self)), self.window_counts())
        outside = self.lengths()[documents] - (self.contents[documents, 1] - self.contents[documents, 0])
        return outside + self.spans[:, 1] - self.spans[:, 0]

    def kept_lengths(self) -> np.ndarray:
        """Each row's tokens that some window reads (its special tokens and first text counted once)."""
        counts = self.window_counts()
        documents = np.repeat(np.arange(len(self)), counts)
        starts, ends = np.asarray(self.spans[:, 0]), np.asarray(self.spans[:, 1])
        # Windows run left to right: each adds what lies past the previous window's end in the same row.
        previous_end = np.concatenate([[0], ends[:-1]])
        first = np.zeros(len(ends), dtype=bool)
        first[self.span_offsets[:-1][counts > 0]] = True
        previous_end[first] = 0
        new = np.maximum(ends - np.maximum(starts, previous_end), 0)
        read = np.bincount(documents, weights=new, minlength=len(self)).astype(np.int64)
        return self.lengths() - (self.contents[:, 1] - self.contents[:, 0]) + read


def cached_tokens(
    tokenizer, texts: Sequence[str], pairs: Sequence[str] | None, max_length: int, root: Path | None = None,
    segments: str = TOKENIZER_SEGMENTS, truncation: Truncation = HEAD,
) -> TokenCache:  # fmt: skip
    """The cache entry for these texts, built first if missing."""

    def chunks() -> Iterator[tuple[list[str], list[str] | None]]:
        start, characters = 0, 0
        for index, text in enumerate(texts):
            characters += len(text) + (len(pairs[index]) if pairs is not None else 0)
            if chunk_is_full(index + 1 - start, characters) or index == len(texts) - 1:
                yield list(texts[start : index + 1]), list(pairs[start : index + 1]) if pairs is not None else None
                start, characters = index + 1, 0

    return tokens_for(tokenizer, texts_fingerprint(texts, pairs), chunks, max_length, root, segments, truncation)


def tokens_for(
    tokenizer, fingerprint: str, chunks: Callable[[], Iterable[tuple[list[str], list[str] | None]]], max_length: int,
    root: Path | None = None, segments: str = TOKENIZER_SEGMENTS, truncation: Truncation = HEAD,
) -> TokenCache:  # fmt: skip
    """The cache entry for the texts that `fingerprint` names, built from `chunks()` (texts read back a chunk at a
    time, not held) if missing, with segment ids under the rule `segments` (`project.data.segments`), cut to
    `max_length` under `truncation`."""
    parts = [str(FORMAT_VERSION), tokenizer_fingerprint(tokenizer), str(max_length), truncation.key(max_length),
             segments, fingerprint]  # fmt: skip
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]
    folder = (root or token_cache_root()) / key
    if not (folder / "meta.json").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        # The ranks of a distributed run (torchrun, SLURM) start together and each reads its data before any process
        # group exists to wait on: the first to take the lock tokenizes, the others wait, then map its entry.
        lock = folder.parent / f".{key}.lock"
        with FileLock(lock):
            if not (folder / "meta.json").exists():
                _build(folder, tokenizer, chunks(), max_length, segments, truncation)
        # Safe to remove: whoever takes a lock after this finds meta.json on its second look and builds nothing.
        lock.unlink(missing_ok=True)
    return TokenCache(folder)


def _build(
    folder: Path,
    tokenizer,
    chunks: Iterable[tuple[list[str], list[str] | None]],
    max_length: int,
    segments: str,
    truncation: Truncation,
) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        lengths, full_lengths, has_type_ids = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], False
        contents, spans, window_counts = [np.zeros((0, 2), np.int64)], [np.zeros((0, 2), np.int64)], [np.zeros(0, int)]
        with open(partial / "input_ids.bin", "wb") as ids_file, open(partial / "token_type_ids.bin", "wb") as types:
            for texts, pairs in chunks:
                if truncation.chunked:
                    layouts, counts = encode_layouts(tokenizer, texts, pairs, max_length, truncation)
                    encoding = {"input_ids": [document.row.ids for document in layouts]}
                    if segments != NO_SEGMENTS:
                        encoding["token_type_ids"] = [segment_ids(segments, document.row) for document in layouts]
                    contents.append(np.asarray([document.content for document in layouts], np.int64).reshape(-1, 2))
                    spans.append(np.asarray([span for document in layouts for span in document.spans],
                                            np.int64).reshape(-1, 2))  # fmt: skip
                    window_counts.append(np.asarray([len(document.spans) for document in layouts], int))
                else:
                    encoding, counts = encode_counted(
                        tokenizer, texts, pairs, max_length, segments, truncation, return_attention_mask=False
                    )
                full_lengths.append(np.asarray(counts, dtype=np.int64))
                chunk_lengths = np.fromiter(map(len, encoding["input_ids"]), dtype=np.int64)
                count = int(chunk_lengths.sum())
                ids_file.write(np.fromiter(chain.from_iterable(encoding["input_ids"]), np.int32, count).tobytes())
                if "token_type_ids" in encoding:
                    has_type_ids = True
                    types.write(np.fromiter(chain.from_iterable(encoding["token_type_ids"]), np.uint8, count).tobytes())
                lengths.append(chunk_lengths)
        offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(np.int64)
        np.save(partial / "offsets.npy", offsets)
        np.save(partial / "full_lengths.npy", np.concatenate(full_lengths))
        meta = {"rows": len(offsets) - 1, "tokens": int(offsets[-1]), "has_token_type_ids": has_type_ids}
        if truncation.chunked:
            meta["chunked"] = True
            np.save(partial / "contents.npy", np.concatenate(contents))
            np.save(partial / "spans.npy", np.concatenate(spans))
            np.save(partial / "span_offsets.npy", np.concatenate([[0], np.cumsum(np.concatenate(window_counts))]))
        (partial / "meta.json").write_text(json.dumps(meta))  # written last: its presence marks a whole entry
        try:
            os.rename(partial, folder)
        except OSError:  # another process (a DDP rank) finished the same entry first; theirs is identical
            if not (folder / "meta.json").exists():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
