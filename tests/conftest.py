"""Shared fixtures: a tiny random BERT (2 layers, hidden 32) with its tokenizer, and tiny labelled CSV files.

Nothing here touches the network: the vocabulary is written to a temporary folder and the weights are random.
"""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, Trainer, seed_everything
from transformers import BertConfig, BertModel, BertTokenizerFast

from project.data.datamodule import TextDataModule
from project.data.token_cache import ROOT_ENV
from project.training.module import TextClassifier

POSITIVE = ["great", "superb", "moving", "fun", "brilliant", "warm"]
NEGATIVE = ["dull", "boring", "awful", "flat", "tedious", "cold"]
NEUTRAL = ["the", "a", "film", "movie", "plot", "actor", "scene", "story", "is", "and", "with", "very"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIAL + POSITIVE + NEGATIVE + NEUTRAL


def write_tiny_encoder(folder: Path, max_position_embeddings: int = 128) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    # transformers 5 ignores vocab_file= here (it builds a 5-token vocabulary); vocab= takes the mapping.
    tokenizer = BertTokenizerFast(vocab={token: index for index, token in enumerate(VOCAB)})
    tokenizer.model_max_length = max_position_embeddings
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_position_embeddings,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session", autouse=True)
def token_cache(tmp_path_factory):
    """Token caches of the tests go to a temporary folder (subprocesses inherit it), not the user's cache."""
    folder = tmp_path_factory.mktemp("token-cache")
    previous = os.environ.get(ROOT_ENV)
    os.environ[ROOT_ENV] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop(ROOT_ENV)
    else:
        os.environ[ROOT_ENV] = previous


@pytest.fixture(scope="session", autouse=True)
def gemm_peak_cache(tmp_path_factory):
    """The fits' GEMM peak probe caches into a temporary file, not the user's cache (a peak measured under a test
    suite's load would stand for the machine's)."""
    from project.training.gemm_peak import CACHE_ENV

    path = tmp_path_factory.mktemp("gemm-peak") / "gemm_peak.json"
    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(path)
    yield path
    if previous is None:
        os.environ.pop(CACHE_ENV)
    else:
        os.environ[CACHE_ENV] = previous


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> str:
    return str(write_tiny_encoder(tmp_path_factory.mktemp("tiny-bert")))


def make_rows(count: int, seed: int = 0, pairs: bool = False) -> list[dict[str, str]]:
    """Learnable toy reviews: the label is the sentiment word's side; pairs get a neutral second text."""
    generator = random.Random(seed)
    rows = []
    for index in range(count):
        label = generator.choice(["pos", "neg"])
        words = generator.choices(NEUTRAL, k=generator.randint(2, 12))
        words.insert(generator.randrange(len(words) + 1), generator.choice(POSITIVE if label == "pos" else NEGATIVE))
        row = {"id": str(index), "review": " ".join(words), "sentiment": label}
        if pairs:
            row["context"] = " ".join(generator.choices(NEUTRAL, k=generator.randint(1, 5)))
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict[str, str]], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "reviews.csv", make_rows(120, pairs=True))


def tiny_setup(tiny_csv, tiny_encoder, batch_size=8, pairs=True, **model_options):
    """A TextClassifier and TextDataModule on the tiny encoder and CSV (pairs on unless `pairs` is False), seeded."""
    seed_everything(0)
    data = TextDataModule(
        train_file=str(tiny_csv), text_column="review", label_column="sentiment",
        text_pair_column="context" if pairs else None, tokenizer=tiny_encoder, batch_size=batch_size,
    )  # fmt: skip
    model = TextClassifier(
        encoder=tiny_encoder, num_labels=data.num_labels, label_names=data.label_names, **model_options
    )
    return model, data


def trainer(**options) -> Trainer:
    """A quiet CPU Trainer: no logger, checkpoints, progress bar or summary unless asked."""
    defaults = dict(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    return Trainer(**{**defaults, **options})


def one_line_error(capsys, entry, argv: list[str]) -> str:
    """Run a command's `main(argv)` expecting a user error: exit status 2 and exactly one `error:` line, returned."""
    with pytest.raises(SystemExit) as exit_info:
        entry(argv)
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    return lines[0]


class RecordLoss(Callback):
    """Every training batch's loss, as a float."""

    def __init__(self):
        self.losses = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.losses.append(outputs["loss"].item())


def hparams_summary(folder):
    """(the metric tags the HParams experiment lists, the hyper-parameter names its session carries)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    metrics, names = set(), set()
    for path in folder.glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name != "hparams":
                    continue
                data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                metrics |= {info.name.tag for info in data.experiment.metric_infos}
                names |= set(data.session_start_info.hparams)
    return metrics, names


def trained_checkpoint(folder: Path, tiny_encoder: str, pairs: bool = True) -> tuple[Path, TextClassifier]:
    """A short fit of the tiny encoder on 120 toy rows with pairs (single texts: `pairs` False), saved as
    `folder/model.ckpt`: (path, the model in eval mode). The module-scoped fixtures of the inference tests share it."""
    train = write_csv(folder / "train.csv", make_rows(120, pairs=pairs))
    model, data = tiny_setup(train, tiny_encoder, pairs=pairs, learning_rate=1e-3)
    run = trainer(max_epochs=2, enable_checkpointing=False, default_root_dir=folder)
    run.fit(model, data)
    run.save_checkpoint(folder / "model.ckpt")
    return folder / "model.ckpt", model.eval()


@pytest.fixture(scope="session")
def family_encoder(tmp_path_factory):
    """family -> the folder of its tiny random encoder (tests/model/family_zoo.py), written on first use. Here,
    not in tests/model, because tests/test_extending.py reruns the pooler registry tests that take it."""
    from tests.model.family_zoo import write_family

    folders: dict[str, str] = {}

    def folder(family: str) -> str:
        if family not in folders:
            folders[family] = str(write_family(family, tmp_path_factory.mktemp(family)))
        return folders[family]

    return folder


# A long document (past the max_length of 16 that `long_document_checkpoint` trains with) whose decisive word is only
# at its end: a head cut never sees it, tail and head_tail do.
LONG_MAX_LENGTH = 16


def long_document(last_word: str) -> str:
    return " ".join(["the", "film"] * 20 + [last_word])


def long_document_scores(checkpoint):
    """(two long documents differing only in their last word, the checkpoint's scores of them)."""
    from project.inference.checkpoint import load_trained
    from project.inference.predictions import predict_scores

    model, length = load_trained(str(checkpoint))
    tokenizer = BertTokenizerFast.from_pretrained(model.hparams.encoder)
    texts = [long_document("superb"), long_document("awful")]
    return texts, predict_scores(model, tokenizer, texts, max_length=length)


@pytest.fixture(scope="session")
def long_document_checkpoint(tmp_path_factory, tiny_encoder):
    """truncation -> a checkpoint of a two-step fit with `data.truncation` that (max_length 16, head_tail's head 3;
    single texts), written on first use: the inference paths must cut long texts the way it records. `chunks:max`
    is chunks with `model.chunk_aggregation: max` (plain `chunks`: mean)."""
    written = {}

    def checkpoint(name: str) -> Path:
        truncation, _, aggregation = name.partition(":")
        if name not in written:
            folder = tmp_path_factory.mktemp(f"long-{truncation}")
            rows = make_rows(40, seed=3)
            for row in rows[::2]:
                row["review"] = long_document(row["review"])
            seed_everything(0)
            data = TextDataModule(
                train_file=str(write_csv(folder / "train.csv", rows)), text_column="review", label_column="sentiment",
                tokenizer=tiny_encoder, batch_size=8, max_length=LONG_MAX_LENGTH, truncation=truncation,
                head_tokens=3 if truncation == "head_tail" else None,
            )  # fmt: skip
            model = TextClassifier(encoder=tiny_encoder, num_labels=data.num_labels, label_names=data.label_names,
                                   chunk_aggregation=aggregation or "mean")  # fmt: skip
            run = trainer(max_steps=2, limit_val_batches=0, default_root_dir=folder)
            run.fit(model, data)
            run.save_checkpoint(folder / "model.ckpt")
            written[name] = folder / "model.ckpt"
        return written[name]

    return checkpoint
