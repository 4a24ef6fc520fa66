"""The masked language model: val/perplexity is exp(val/loss), the token-weighted mean over validation; the saved
folder loads with AutoModel and fine-tunes as a `TextClassifier` encoder."""

import math
import shutil

import pytest
import torch
from lightning.pytorch import seed_everything
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoTokenizer

from project.optim.optimizers import parameter_groups
from project.pretraining.corpus import CorpusDataModule
from project.pretraining.module import MaskedLanguageModel
from project.training.module import TextClassifier, encoder_depths
from tests.conftest import trainer
from tests.pretraining.conftest import write_corpus


def tiny_pretraining(tmp_path, encoder, **options):
    seed_everything(0)
    data = CorpusDataModule(train_file=str(write_corpus(tmp_path / "corpus.txt", 120)), tokenizer=encoder,
                            batch_size=8, val_ratio=0.25, **options)  # fmt: skip
    return MaskedLanguageModel(encoder=encoder, learning_rate=1e-3), data


def test_val_perplexity_is_exp_of_the_token_weighted_val_loss(tmp_path, chinese_encoder):
    model, data = tiny_pretraining(tmp_path, chinese_encoder)
    metrics = trainer().validate(model, datamodule=data, verbose=False)[0]

    total = count = 0.0
    model.eval()
    with torch.no_grad():
        for batch in data.val_dataloader():
            masked = int((batch["labels"] != -100).sum())
            total += model(**batch).item() * masked
            count += masked
    assert metrics["val/loss"] == pytest.approx(total / count, rel=1e-5)
    assert metrics["val/perplexity"] == pytest.approx(math.exp(metrics["val/loss"]), rel=1e-6)


def test_training_lowers_the_val_loss_and_logs_train_loss(tmp_path, chinese_encoder):
    model, data = tiny_pretraining(tmp_path, chinese_encoder)
    before = trainer().validate(MaskedLanguageModel(chinese_encoder), datamodule=data, verbose=False)[0]
    run = trainer(max_epochs=4, num_sanity_val_steps=0)
    run.fit(model, datamodule=data)
    assert "train/loss" in run.logged_metrics
    assert run.callback_metrics["val/perplexity"] < before["val/perplexity"]


def test_saved_folder_loads_with_automodel_and_builds_a_classifier(tmp_path, chinese_encoder):
    model, data = tiny_pretraining(tmp_path, chinese_encoder)
    data.setup("fit")
    with torch.no_grad():
        model.encoder.bert.embeddings.word_embeddings.weight.add_(1.0)  # something pretraining "learnt"
    model.save_hugging_face(tmp_path / "saved", data.tokenizer)

    encoder = AutoModel.from_pretrained(tmp_path / "saved")
    assert torch.equal(encoder.embeddings.word_embeddings.weight, model.encoder.bert.embeddings.word_embeddings.weight)
    assert len(AutoTokenizer.from_pretrained(tmp_path / "saved")) == len(data.tokenizer)
    classifier = TextClassifier(encoder=str(tmp_path / "saved"), num_labels=2)
    assert torch.equal(classifier.encoder.embeddings.word_embeddings.weight, encoder.embeddings.word_embeddings.weight)


def test_layer_decay_reaches_every_encoder_layer(chinese_encoder):
    model = MaskedLanguageModel(encoder=chinese_encoder)
    depths, num_layers = encoder_depths(model.encoder, 0.5)
    groups = parameter_groups(model.named_parameters(), 1e-3, 0.01, num_layers, layer_decay=0.5, depths=depths)
    names = {group["name"].removesuffix("_no_decay") for group in groups}
    assert names == {"embeddings", "layer_1", "layer_2", "top"}  # top: the MLM head's transform and bias


def test_an_encoder_without_an_mlm_head_gets_a_new_one_said_in_one_line(tmp_path, tiny_encoder, capsys):
    # The tiny encoder is a bare BertModel folder, as the built-in multilingual-e5-small's converted folder is.
    model = MaskedLanguageModel(encoder=tiny_encoder)
    out = capsys.readouterr()
    (line,) = [line for line in out.out.splitlines() if line]
    assert line.startswith(f"{tiny_encoder} has no masked-language-model head: built a new one")
    assert "LOAD REPORT" not in out.err + out.out and "corrupted" not in out.err + out.out
    bare = AutoModel.from_pretrained(tiny_encoder)
    assert torch.equal(model.encoder.bert.embeddings.word_embeddings.weight, bare.embeddings.word_embeddings.weight)
    decoder = model.encoder.get_output_embeddings().weight
    assert decoder.data_ptr() == model.encoder.bert.embeddings.word_embeddings.weight.data_ptr()  # tied, not random
    data = CorpusDataModule(train_file=str(write_corpus(tmp_path / "corpus.txt", 40)), tokenizer=tiny_encoder,
                            batch_size=8, val_ratio=0.25)  # fmt: skip
    run = trainer(max_steps=2, num_sanity_val_steps=0, limit_val_batches=0)
    run.fit(model, datamodule=data)
    assert math.isfinite(float(run.logged_metrics["train/loss"]))


def test_an_encoder_with_its_mlm_head_loads_without_a_line(chinese_encoder, capsys):
    MaskedLanguageModel(encoder=chinese_encoder)
    assert "masked-language-model head" not in capsys.readouterr().out


def test_encoder_weights_missing_from_the_folder_are_named_in_a_warning(tmp_path, tiny_encoder, capsys):
    folder = shutil.copytree(tiny_encoder, tmp_path / "damaged")
    weights = load_file(folder / "model.safetensors")
    lost = next(key for key in weights if "layer.1.output.dense.weight" in key)
    del weights[lost]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    MaskedLanguageModel(encoder=str(folder))
    (warning,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert "lacks 1 encoder weights" in warning and "encoder.layer.1.output.dense.weight" in warning
