import importlib.util
import json
import re

import pytest

from project.core.errors import UserError
from project.model.encoder import load_encoder, missing_package
from tests.conftest import VOCAB, make_rows, one_line_error, write_csv
from tests.model.family_zoo import write_family


def test_encoder_trains_with_dropout_and_without_the_unused_nsp_pooler(tiny_encoder):
    # from_pretrained returns eval mode and Lightning keeps it: the encoder would train without dropout.
    encoder = load_encoder(tiny_encoder)
    assert encoder.training and encoder.pooler is None


def test_dropout_overrides_reach_the_config(tiny_encoder):
    encoder = load_encoder(tiny_encoder, attention_dropout=0.0, hidden_dropout=0.3)
    assert encoder.config.attention_probs_dropout_prob == 0.0 and encoder.config.hidden_dropout_prob == 0.3


def test_an_encoder_that_loads_nowhere_is_a_one_line_error(tmp_path):
    missing = str(tmp_path / "no" / "such" / "encoder")
    with pytest.raises(UserError, match=f"cannot load encoder/tokenizer '{missing}'") as error:
        load_encoder(missing)
    assert "\n" not in str(error.value)


def test_code_shipped_in_a_model_folder_is_never_run(tmp_path):
    folder, marker = tmp_path / "remote-code", tmp_path / "code-ran"
    folder.mkdir()
    auto_map = {"AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel"}
    (folder / "config.json").write_text(json.dumps({"model_type": "x-custom", "auto_map": auto_map}))
    for name in ("configuration_x.py", "modeling_x.py"):
        (folder / name).write_text(f"open({str(marker)!r}, 'w').close()\n")
    with pytest.raises(UserError, match="cannot load encoder/tokenizer"):
        load_encoder(str(folder))
    assert not marker.exists()


def test_reinit_redraws_exactly_the_top_k_layers(tiny_encoder):
    import torch

    from project.core.errors import ConfigError
    from project.model.encoder import load_encoder, redraw_top_layers

    pretrained = load_encoder(tiny_encoder)
    encoder = load_encoder(tiny_encoder)
    redraw_top_layers(encoder, 1)
    layers = len(encoder.encoder.layer)
    for name, parameter in encoder.named_parameters():
        original = dict(pretrained.named_parameters())[name]
        in_top = name.startswith(f"encoder.layer.{layers - 1}.")
        if in_top and parameter.ndim == 2:  # weight matrices are drawn anew; norms and biases reset to 1 and 0
            assert not torch.equal(parameter, original), name
        if not in_top:
            assert torch.equal(parameter, original), name
    with pytest.raises(
        ConfigError, match=f"model.encoder_options.reinit_top_layers={layers + 1}, but the encoder has {layers}"
    ):
        redraw_top_layers(encoder, layers + 1)


def roformer_folder(folder) -> str:
    """A RoFormer encoder with RoFormer's own tokenizer, which segments Chinese with rjieba (not installed here)."""
    write_family("roformer", folder, tokenizer=False, vocab_size=len(VOCAB))
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "RoFormerTokenizer"}))
    return str(folder)


@pytest.mark.skipif(importlib.util.find_spec("rjieba") is not None, reason="rjieba is installed")
def test_a_tokenizer_missing_its_package_is_one_line_naming_the_pip_install(capsys, tmp_path):
    from project.fit import main

    encoder = roformer_folder(tmp_path / "roformer")
    train = write_csv(tmp_path / "train.csv", make_rows(20))
    line = one_line_error(capsys, main, [
        "--model.encoder", encoder, "--data.train_file", str(train), "--data.text_column", "review",
        "--data.label_column", "sentiment", "--trainer.default_root_dir", str(tmp_path / "runs"),
    ])  # fmt: skip
    assert line == (
        f"error: cannot load encoder/tokenizer '{encoder}': it needs a package that is not installed: "
        "pip install rjieba"
    )
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.ckpt"))


@pytest.mark.parametrize(
    ("error", "package"),
    [
        (ImportError("You need to install sacremoses to use XLMTokenizer. See https://pypi.org/project/sacremoses/"),
         "sacremoses"),
        (ImportError("\nAlbertTokenizer requires the SentencePiece library but it was not found in your environment."),
         "sentencepiece"),
        (ImportError("\nLlamaConverter requires the protobuf library but it was not found in your environment."),
         "protobuf"),
        (ModuleNotFoundError("No module named 'google.protobuf'", name="google.protobuf"), "protobuf"),
        (ModuleNotFoundError("No module named 'fugashi'", name="fugashi"), "fugashi"),
    ],
)  # fmt: skip
def test_the_package_to_install_is_read_from_the_error(error, package):
    assert missing_package(error) == package


@pytest.mark.skipif(importlib.util.find_spec("sacremoses") is not None, reason="sacremoses is installed")
def test_xlms_tokenizer_without_sacremoses_names_it(tmp_path):
    from transformers import AutoTokenizer

    from project.model.encoder import from_pretrained

    (tmp_path / "vocab.json").write_text(json.dumps({"<s>": 0, "</s>": 1, "<pad>": 2, "<unk>": 3, "a</w>": 4}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "XLMTokenizer"}))
    with pytest.raises(UserError, match="it needs a package that is not installed: pip install sacremoses$"):
        from_pretrained(AutoTokenizer, str(tmp_path))


def test_word_embeddings_freeze_by_mode_and_auto_freezes_only_large_vocabularies(tiny_encoder):
    from transformers import BertConfig, BertModel

    from project.model.encoder import LARGE_VOCABULARY, freeze_word_embeddings

    encoder = load_encoder(tiny_encoder)
    table = encoder.get_input_embeddings().weight
    assert not freeze_word_embeddings(encoder, "auto") and table.requires_grad  # a small vocabulary trains
    assert freeze_word_embeddings(encoder, "freeze") and not table.requires_grad
    assert not freeze_word_embeddings(encoder, "train") and table.requires_grad
    others = [p.requires_grad for n, p in encoder.named_parameters() if "word_embeddings" not in n]
    assert all(others)  # only the word-embedding matrix is ever frozen
    large = BertModel(BertConfig(vocab_size=LARGE_VOCABULARY + 1, hidden_size=4, num_hidden_layers=1,
                                 num_attention_heads=1, intermediate_size=4))  # fmt: skip
    assert freeze_word_embeddings(large, "auto") and not large.get_input_embeddings().weight.requires_grad


def test_gradient_checkpointing_gives_the_same_gradients_and_is_refused_where_the_family_cannot(tiny_encoder):
    """Each layer recomputed in the backward pass, dropout included (its random state is kept): the same gradients
    as an ordinary step, through the fit's own model class and option."""
    import torch
    from torch import nn

    from project.core.errors import ConfigError
    from project.model.encoder import enable_gradient_checkpointing
    from project.training.module import TextClassifier

    batch = {"input_ids": torch.tensor([[2, 5, 6, 7, 3], [2, 8, 9, 3, 0]]), "attention_mask": torch.tensor(
        [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])}  # fmt: skip
    gradients, kept = [], []
    for checkpointing in (False, True):
        model = TextClassifier(encoder=tiny_encoder, num_labels=2,
                               encoder_options={"gradient_checkpointing": checkpointing})  # fmt: skip
        assert model.encoder.is_activation_checkpointing == checkpointing
        model.train()
        saved = []  # what the forward pass keeps for backward outside checkpointed layers (their inside is dropped)
        with torch.autograd.graph.saved_tensors_hooks(lambda t, saved=saved: saved.append(t.numel()) or t, lambda t: t):
            torch.manual_seed(0)
            loss = model.encoder(**batch).last_hidden_state.pow(2).sum()
        loss.backward()
        gradients.append({name: p.grad.clone() for name, p in model.encoder.named_parameters() if p.grad is not None})
        kept.append(sum(saved))
    assert kept[1] < kept[0] / 2  # most activations recomputed instead of kept
    assert gradients[0].keys() == gradients[1].keys()
    for name, gradient in gradients[0].items():
        torch.testing.assert_close(gradients[1][name], gradient, msg=name)
    with pytest.raises(ConfigError, match="gradient_checkpointing: Linear cannot checkpoint its layers"):
        enable_gradient_checkpointing(nn.Linear(2, 2))


@pytest.mark.parametrize(
    ("options", "message"),
    [({"frozen_layers": 3}, "frozen_layers=3, but the encoder has 2 layers"),
     ({"frozen_layers": 1, "reinit_top_layers": 2}, "frozen_layers=1 would freeze some of the 2 re-drawn top layers"),
     ({"frozen_layers": 1, "word_embeddings": "train"}, "frozen_layers=1 freezes the embeddings, but model.encoder_"
      "options.word_embeddings is `train`; set it to auto or freeze")],
)  # fmt: skip
def test_frozen_layers_that_cannot_be_honoured_are_refused_in_one_line(tiny_encoder, options, message):
    from project.core.errors import ConfigError
    from project.training.module import TextClassifier

    with pytest.raises(ConfigError, match=f"^model.encoder_options.{re.escape(message)}"):
        TextClassifier(encoder=tiny_encoder, num_labels=2, encoder_options=options)


def test_a_fit_with_frozen_layers_keeps_them_pretrained_and_trains_the_rest(tiny_csv, tiny_encoder):
    import torch

    from project.model.families import parameter_depths
    from tests.conftest import tiny_setup, trainer

    pretrained = {name: p.detach().clone() for name, p in load_encoder(tiny_encoder).named_parameters()}
    model, data = tiny_setup(tiny_csv, tiny_encoder, learning_rate=3e-3, encoder_options={"frozen_layers": 1})
    trainer(max_steps=2, limit_val_batches=0).fit(model, datamodule=data)
    depths, _ = parameter_depths(model.encoder, "test")
    for name, parameter in model.encoder.named_parameters():
        assert torch.equal(parameter, pretrained[name]) == (depths[name] <= 1), name
