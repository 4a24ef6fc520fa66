"""`data.truncation: chunks`: windows of max_length tokens over the whole document (pairs: over the second text),
overlapping, at most max_chunks chosen evenly; stored once in the token cache; each window a training example;
evaluation per document; a text within one window exactly as head; bad options one line naming the key."""

import csv
import json

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from project.data.chunks import spans
from project.data.datamodule import TextDataModule
from project.data.segments import NO_SEGMENTS, SEQUENCE_SEGMENTS, encode, encode_windows, layout_windows
from project.data.token_cache import cached_tokens
from project.data.truncation import Truncation
from project.fit import main as fit_main
from project.inference.checkpoint import load_trained
from project.inference.predictions import predict_scores
from project.tasks.aggregation import aggregate
from tests.conftest import make_rows, one_line_error, write_csv


@pytest.fixture(scope="module")
def tokenizer(tiny_encoder):
    return AutoTokenizer.from_pretrained(tiny_encoder)


def numbered(count: int) -> str:
    """A document whose tokens say where they are: film great film dull ... (two words alternate)."""
    return " ".join("great" if index % 2 else "film" for index in range(count))


def test_windows_hold_max_length_tokens_overlap_and_end_at_the_documents_end(tokenizer):
    text = " ".join(["great"] + ["film"] * 20 + ["dull"])  # 22 content tokens
    rows, counts = encode_windows(tokenizer, [text, "a film"], None, 8, NO_SEGMENTS, Truncation("chunks", None, 2))
    assert counts == [5, 1]
    windows = [tokenizer.convert_ids_to_tokens(ids) for ids in rows["input_ids"]]
    assert all(len(window) == 8 and window[0] == "[CLS]" and window[-1] == "[SEP]" for window in windows[:5])
    assert windows[0][1] == "great" and windows[4][-2] == "dull"  # the first and last tokens are both read
    assert spans(22, 6, 2, 8) == [(0, 6), (4, 10), (8, 14), (12, 18), (16, 22)]  # 2 shared by neighbours
    assert spans(25, 14, 4, 8) == [(0, 14), (6, 20), (11, 25)]  # at least 4 shared, spread evenly
    # a text within max_length is one window: exactly head's ids
    assert rows["input_ids"][5] == encode(tokenizer, ["a film"], None, 8, NO_SEGMENTS)["input_ids"][0]


def test_more_windows_than_max_chunks_are_chosen_evenly_first_and_last_kept():
    assert spans(100, 10, 0, 3) == [(0, 10), (50, 60), (90, 100)]  # of the 10 windows that tile it
    assert spans(100, 10, 0, 1) == [(0, 10)]
    assert len(spans(100, 10, 5, 8)) == 8 and spans(100, 10, 5, 8)[-1] == (90, 100)


def test_pairs_keep_the_first_text_as_head_does_and_window_the_second(tokenizer):
    document = " ".join(["great"] + ["film"] * 20 + ["dull"])
    rows, counts = encode_windows(tokenizer, ["a plot"], [document], 10, SEQUENCE_SEGMENTS,
                                  Truncation("chunks", None, 2, 3))  # fmt: skip
    windows = [tokenizer.convert_ids_to_tokens(ids) for ids in rows["input_ids"]]
    assert counts == [3]
    assert all(window[:4] == ["[CLS]", "a", "plot", "[SEP]"] and len(window) == 10 for window in windows)
    assert windows[0][4] == "great" and windows[-1][-2:] == ["dull", "[SEP]"]
    assert rows["token_type_ids"] == [[0] * 4 + [1] * 6] * 3
    # a pair within one window is head's cut, segment ids included
    short = encode_windows(tokenizer, ["a plot"], ["a film"], 10, SEQUENCE_SEGMENTS, Truncation("chunks"))[0]
    head = encode(tokenizer, ["a plot"], ["a film"], 10, SEQUENCE_SEGMENTS)
    assert short["input_ids"] == head["input_ids"] and short["token_type_ids"] == head["token_type_ids"]


def test_the_raw_tokenizers_path_gets_the_same_windows(tokenizer, tiny_encoder):
    from project.data.chunks import layout

    raw = Tokenizer.from_file(f"{tiny_encoder}/tokenizer.json")
    raw.no_truncation()
    texts, pairs = [numbered(40), "a film", numbered(9)], ["the plot", numbered(30), "a"]
    truncation = Truncation("chunks", None, 3, 4)
    expected = encode_windows(tokenizer, texts, pairs, 12, SEQUENCE_SEGMENTS, truncation)
    layouts = [layout(whole, 12, truncation) for whole in raw.encode_batch(list(zip(texts, pairs, strict=True)))]
    assert layout_windows(layouts, SEQUENCE_SEGMENTS) == expected


def test_the_token_cache_stores_each_document_once_and_gives_the_same_windows(tokenizer, tmp_path):
    texts, truncation = [numbered(60), "a film", numbered(25)], Truncation("chunks", None, 4, 3)
    tokens = cached_tokens(tokenizer, texts, None, 16, root=tmp_path, segments=SEQUENCE_SEGMENTS,
                           truncation=truncation)  # fmt: skip
    expected, counts = encode_windows(tokenizer, texts, None, 16, SEQUENCE_SEGMENTS, truncation)
    assert tokens.window_counts().tolist() == counts == [3, 1, 3]
    assert tokens.lengths().tolist() == [62, 4, 27]  # the whole documents, not 3 + 1 + 2 windows of 16
    windows = [tokens.window(row, span) for row in range(3) for span in range(*tokens.span_offsets[row : row + 2])]
    assert [window["input_ids"] for window in windows] == expected["input_ids"]
    assert [window["token_type_ids"] for window in windows] == expected["token_type_ids"]
    assert tokens.window_lengths().tolist() == [16, 16, 16, 4, 16, 16, 16]
    assert tokens.kept_lengths().tolist() == [44, 4, 27]  # 3 windows of 14 read 42 of the 60 words


def test_documents_within_one_window_train_exactly_as_under_head(tiny_csv, tiny_encoder):
    def entries(truncation):
        data = TextDataModule(train_file=str(tiny_csv), text_column="review", label_column="sentiment",
                              text_pair_column="context", tokenizer=tiny_encoder, truncation=truncation)  # fmt: skip
        data.setup("fit")
        return {name: [dataset[index] for index in range(len(dataset))] for name, dataset in data.datasets.items()}

    head, chunks = entries("head"), entries("chunks")
    assert set(head) == set(chunks)
    for name in head:  # the same ids and labels, one entry a row; evaluation entries name their row
        assert [{key: value for key, value in item.items() if key != "document"} for item in chunks[name]] == head[name]
    assert [item["document"] for item in chunks["val"]] == list(range(len(chunks["val"])))


def test_evaluation_batches_hold_whole_documents_within_the_window_budget(tmp_path, tiny_encoder):
    rows = make_rows(30, seed=5)
    for row in rows[::3]:
        row["review"] = numbered(50)
    data = TextDataModule(train_file=str(write_csv(tmp_path / "t.csv", rows)), text_column="review",
                          label_column="sentiment", tokenizer=tiny_encoder, max_length=16, truncation="chunks",
                          batch_size=4, eval_batch_size=5, val_ratio=0.5, test_ratio=0.2)  # fmt: skip
    data.setup("fit")
    counts = data.datasets["val"].window_counts
    batches = list(data.val_dataloader())
    documents = [batch["document"].tolist() for batch in batches]
    assert [document for batch in documents for document in sorted(set(batch))] == list(range(len(counts)))
    assert all(len(batch) <= 5 or len(set(batch)) == 1 for batch in documents)  # a long document alone
    assert sum(len(batch) for batch in documents) == counts.sum() > len(counts)
    assert all(len(batch["input_ids"]) <= 4 for batch in data.train_dataloader())


@pytest.mark.parametrize(
    "option, value, named",
    [
        ("--data.max_chunks", "0", "data.max_chunks=0"),
        ("--data.chunk_overlap", "128", "data.chunk_overlap=128: choose 0 to 127"),
        ("--data.head_tokens", "8", "data.head_tokens=8 applies to data.truncation=head_tail"),
    ],
)
def test_bad_chunk_options_fail_in_one_line_naming_the_key(capsys, option, value, named):
    line = one_line_error(capsys, fit_main, ["--data.truncation", "chunks", option, value])
    assert named in line


def test_mean_and_max_aggregate_each_documents_windows():
    values = np.array([[1.0, -1.0], [3.0, 0.0], [5.0, 2.0], [0.0, 4.0]], dtype=np.float32)
    assert aggregate(values, [1, 3], "mean") == pytest.approx(np.array([[1.0, -1.0], [8 / 3, 2.0]]))
    assert aggregate(values, [1, 3], "max").tolist() == [[1.0, -1.0], [5.0, 4.0]]


@pytest.mark.slow
def test_a_chunked_fit_evaluates_per_document_as_checkpoint_predict_scores_them(tmp_path, tiny_encoder):
    rows = make_rows(64, seed=7)
    for row in rows[::2]:
        row["review"] = numbered(36) + " " + row["review"]  # 3 or more windows of 16
    train = write_csv(tmp_path / "train.csv", rows)
    options = dict(train_file=str(train), text_column="review", label_column="sentiment", val_ratio=0.25,
                   test_ratio=0.25, tokenizer=tiny_encoder, max_length=16, truncation="chunks")  # fmt: skip
    fit_main([
        "--model.encoder", tiny_encoder,
        *(f"--data.{key}={value}" for key, value in options.items() if key != "tokenizer"),
        "--model.chunk_aggregation", "max", "--data.batch_size", "8", "--model.learning_rate", "1e-3",
        "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(tmp_path / "runs"),
        "--trainer.enable_progress_bar", "false",
    ])  # fmt: skip
    run = tmp_path / "runs" / "lightning_logs" / "version_0"
    metrics = json.loads((run / "test_metrics.json").read_text())
    report = json.loads((run / "data_report.json").read_text())
    assert report["truncation"]["train_windows"] > report["rows"]["train"] == 32  # the windows train, each alone
    assert report["token_lengths"]["train"]["tokens_lost_share"] == 0  # 8 windows read every token
    for stage in ("val", "test"):  # one row per document, never per window
        assert json.loads((run / f"{stage}_report.json").read_text())["summary"]["rows"] == 16
        with open(run / f"{stage}_errors.csv", encoding="utf-8") as file:
            numbers = [int(line["row"]) for line in csv.DictReader(file)]
        assert len(numbers) == len(set(numbers)) <= 16
    data = TextDataModule(**options)
    test = data.splits["test"]
    model, length = load_trained(metrics["checkpoint"])
    assert model.truncation.chunked and model.hparams.chunk_aggregation == "max"
    scores = predict_scores(model, AutoTokenizer.from_pretrained(tiny_encoder), test.table.read_texts(test.positions),
                            max_length=length)  # fmt: skip
    truth = torch.tensor(data.codec.encode_all(test.labels, test.where))
    assert (scores.argmax(-1) == truth).float().mean().item() == pytest.approx(metrics["test/acc"])


@pytest.mark.parametrize("task, metric", [("multi_label", "val/f1_micro"), ("regression", "val/mse")])
@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_every_task_evaluates_chunked_pairs_per_document(tmp_path, tiny_encoder, task, metric, aggregation):
    from lightning.pytorch import seed_everything

    from project.evaluation.report import CollectOutputs
    from project.training.module import TextClassifier
    from tests.conftest import trainer

    rows = []
    for index, row in enumerate(make_rows(40, seed=4, pairs=True)):
        label = row["sentiment"] if task == "multi_label" else str(4.0 if row["sentiment"] == "pos" else 1.0)
        second = " ".join([row["context"]] * 6) if index % 2 else row["context"]  # long documents second
        rows.append({"first": row["review"], "second": second, "target": label})
    seed_everything(0)
    data = TextDataModule(train_file=str(write_csv(tmp_path / "t.csv", rows)), text_column="first",
                          text_pair_column="second", label_column="target", task=task, tokenizer=tiny_encoder,
                          max_length=20, truncation="chunks", batch_size=8, val_ratio=0.25)  # fmt: skip
    model = TextClassifier(encoder=tiny_encoder, task=task, num_labels=data.num_labels, label_names=data.label_names,
                           chunk_aggregation=aggregation)  # fmt: skip
    outputs = CollectOutputs()
    run = trainer(max_epochs=1, num_sanity_val_steps=0, callbacks=[outputs])
    run.fit(model, data)
    scores, targets = outputs.outputs["val"]
    assert len(scores) == len(targets) == len(data.splits["val"]) == 10  # documents, not windows
    assert data.datasets["val"].window_counts.sum() > 10 and metric in run.callback_metrics
