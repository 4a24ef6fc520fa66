import pytest
import torch

from project.data.datamodule import TextDataModule
from project.data.readers import DataError
from tests.conftest import make_rows, write_csv


def data_module(path, tokenizer, **options) -> TextDataModule:
    defaults = dict(train_file=str(path), text_column="review", label_column="sentiment", tokenizer=tokenizer)
    return TextDataModule(**{**defaults, **options})


def test_split_is_deterministic_disjoint_and_sized_by_ratio(tiny_csv, tiny_encoder):
    first = data_module(tiny_csv, tiny_encoder, val_ratio=0.2, test_ratio=0.1, seed=7).splits
    again = data_module(tiny_csv, tiny_encoder, val_ratio=0.2, test_ratio=0.1, seed=7).splits
    other = data_module(tiny_csv, tiny_encoder, val_ratio=0.2, test_ratio=0.1, seed=8).splits
    assert {split: len(rows) for split, rows in first.items()} == {"train": 84, "val": 24, "test": 12}
    assert {name: split.rows.tolist() for name, split in first.items()} == {
        name: split.rows.tolist() for name, split in again.items()
    }
    assert first["val"].rows.tolist() != other["val"].rows.tolist()
    rows = [set(split.rows.tolist()) for split in first.values()]
    assert sum(map(len, rows)) == 120 and set.union(*rows) == set(range(1, 121))


def test_string_labels_map_to_sorted_ids(tiny_csv, tiny_encoder):
    data = data_module(tiny_csv, tiny_encoder)
    assert data.label_names == ["neg", "pos"] and data.num_labels == 2
    data.setup("fit")
    for dataset, split in zip(data.datasets.values(), data.splits.values(), strict=True):
        assert [data.label_names[i] for i in dataset.targets] == split.labels


def test_numeric_labels_sort_as_numbers(tmp_path, tiny_encoder):
    rows = [{"review": "fun", "sentiment": str(label)} for label in (10, 2, 1, 2, 10, 1) * 4]
    data = data_module(write_csv(tmp_path / "n.csv", rows), tiny_encoder)
    assert data.label_names == ["1", "2", "10"]


def test_pairs_are_tokenized_as_pairs(tiny_csv, tiny_encoder):
    data = data_module(tiny_csv, tiny_encoder, text_pair_column="context")
    data.setup("fit")
    batch = next(iter(data.val_dataloader()))
    for ids, types, mask in zip(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"], strict=True):
        separators = (ids == 3).nonzero().flatten().tolist()  # [SEP] is id 3 in the tiny vocabulary
        assert len(separators) == 2 and ids[0] == 2  # [CLS] a [SEP] b [SEP]
        first, second = separators
        assert types[: first + 1].eq(0).all() and types[first + 1 : second + 1].eq(1).all()
        assert types[second + 1 :].eq(0).all() and mask[second + 1 :].eq(0).all()  # padding


def test_batches_are_padded_to_their_longest_member_only(tiny_csv, tiny_encoder):
    data = data_module(tiny_csv, tiny_encoder, max_length=128, batch_size=4)
    data.setup("fit")
    for batch in data.val_dataloader():
        lengths = batch["attention_mask"].sum(dim=1)
        assert batch["input_ids"].shape[1] == lengths.max() < 128


def test_only_training_is_shuffled_and_its_order_follows_the_seed(tiny_csv, tiny_encoder):
    def first_labels(loader):
        return [batch["input_ids"][:, 1].tolist() for batch in loader]

    data = data_module(tiny_csv, tiny_encoder, batch_size=8, seed=1)
    data.setup("fit")
    assert first_labels(data.val_dataloader()) == first_labels(data.val_dataloader())
    assert first_labels(data.train_dataloader()) == first_labels(data.train_dataloader())
    unshuffled = [data.datasets["train"][i]["input_ids"][1] for i in range(8)]
    assert first_labels(data.train_dataloader())[0] != unshuffled
    reseeded = data_module(tiny_csv, tiny_encoder, batch_size=8, seed=2)
    reseeded.setup("fit")
    assert first_labels(reseeded.train_dataloader()) != first_labels(data.train_dataloader())


def test_separate_val_and_test_files_are_used_as_given(tmp_path, tiny_encoder):
    train = write_csv(tmp_path / "train.csv", make_rows(30, seed=1))
    val = write_csv(tmp_path / "val.csv", make_rows(7, seed=2))
    data = data_module(train, tiny_encoder, val_file=str(val), test_ratio=0.0)
    assert {split: len(rows) for split, rows in data.splits.items()} == {"train": 30, "val": 7}


def test_missing_column_names_the_column_and_the_file(tiny_csv, tiny_encoder):
    with pytest.raises(DataError, match=rf"{tiny_csv}: no column 'headline'"):
        _ = data_module(tiny_csv, tiny_encoder, text_column="headline").num_labels


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_text_names_the_row(tmp_path, tiny_encoder, bad):
    rows = make_rows(10)
    rows[3]["review"] = bad
    path = write_csv(tmp_path / "t.csv", rows)
    with pytest.raises(DataError, match=rf"{path}: row 4: empty value in column 'review'"):
        _ = data_module(path, tiny_encoder).num_labels


def test_label_unseen_in_training_is_an_error(tmp_path, tiny_encoder):
    train = write_csv(tmp_path / "train.csv", make_rows(20))
    val = write_csv(tmp_path / "val.csv", [{"review": "fun", "sentiment": "meh"}])
    data = data_module(train, tiny_encoder, val_file=str(val))
    with pytest.raises(DataError, match=rf"{val}: row 1: label 'meh' never occurs in the training data"):
        data.setup("fit")


def test_max_length_above_the_tokenizer_limit_is_an_error(tiny_csv, tiny_encoder):
    with pytest.raises(DataError, match="data.max_length=512 exceeds the tokenizer's limit of 128"):
        data_module(tiny_csv, tiny_encoder, max_length=512).setup("fit")


def test_truncation_respects_max_length(tiny_csv, tiny_encoder):
    data = data_module(tiny_csv, tiny_encoder, max_length=6)
    data.setup("fit")
    assert data.datasets["train"].lengths().max() == 6
    assert isinstance(next(iter(data.train_dataloader()))["labels"], torch.Tensor)


def test_reading_keeps_labels_and_hashes_but_not_the_texts(tmp_path):
    """What makes a million rows fit in tens of megabytes: after reading, the texts are not in memory."""
    import tracemalloc

    from project.data.readers import iter_rows
    from project.data.splits import Columns, read_split

    count = 20_000
    rows = [{"review": f"{'x' * 200} {index}", "sentiment": "pos" if index % 2 else "neg"} for index in range(count)]
    path = write_csv(tmp_path / "long.csv", rows)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    split = read_split(lambda: iter_rows(path), str(path), Columns("review", "sentiment"))
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(split) == count
    assert kept < 40 * count, f"{kept / count:.0f} bytes kept per row of ~205 characters"  # a label pointer + hash
    assert split.read_texts()[:2] == [rows[0]["review"], rows[1]["review"]]


def test_splits_read_their_texts_back_in_their_own_order(tiny_csv, tiny_encoder):
    rows = make_rows(120, pairs=True)
    splits = data_module(tiny_csv, tiny_encoder, val_ratio=0.2, test_ratio=0.1).splits
    for split in splits.values():
        assert split.read_texts() == [rows[number - 1]["review"] for number in split.rows]
    train = splits["train"]
    assert train.table.read_texts(train.positions[::-1][:3]) == [rows[p]["review"] for p in train.positions[::-1][:3]]


def test_the_splits_of_one_file_share_one_token_cache_entry_and_another_seed_reuses_it(
    tiny_csv, tiny_encoder, tmp_path, monkeypatch
):
    from project.data.token_cache import ROOT_ENV

    root = tmp_path / "cache"
    monkeypatch.setenv(ROOT_ENV, str(root))
    first = data_module(tiny_csv, tiny_encoder, seed=1)
    first.setup("fit")
    entries = list(root.iterdir())
    assert len(entries) == 1
    second = data_module(tiny_csv, tiny_encoder, seed=2, val_ratio=0.3)
    second.setup("fit")
    assert list(root.iterdir()) == entries
    assert first.splits["val"].rows.tolist() != second.splits["val"].rows.tolist()
    for data in (first, second):  # each split's entries are its own rows' tokens, whatever the carving
        texts = data.splits["val"].read_texts()
        expected = first.tokenizer(texts, truncation=True, max_length=128)["input_ids"]
        assert [data.datasets["val"][i]["input_ids"] for i in range(len(texts))] == expected


def test_a_file_edited_between_reading_and_tokenizing_is_refused_in_one_line(tmp_path, tiny_encoder):
    path = write_csv(tmp_path / "reviews.csv", make_rows(60))
    data = data_module(path, tiny_encoder)
    assert len(data.splits["train"]) == 48  # read and validated
    rows = make_rows(60)
    rows[5]["review"] = "an edited review"
    write_csv(path, rows)
    with pytest.raises(DataError, match=r"reviews.csv: the file changed while this run was reading it"):
        data.setup("fit")


def test_splits_carved_from_one_file_read_their_texts_back_in_one_pass():
    from project.data.splits import Columns, carve, read_split, read_texts

    rows = [{"text": f"text {i}", "label": "ab"[i % 2]} for i in range(50)]
    opened = []

    def open_rows():
        opened.append(1)
        return iter(rows)

    splits = carve({"train": read_split(open_rows, "x.csv", Columns("text", "label"))}, 0.2, 0.2, seed=3)
    opened.clear()
    texts = read_texts(splits)
    assert len(opened) == 1  # not one pass per split
    for name, split in splits.items():
        assert texts[name] == [rows[number - 1]["text"] for number in split.rows]


def test_a_built_in_data_set_is_read_once_however_often_its_texts_are(monkeypatch, tiny_encoder):
    from project.data.builtin import DATASETS
    from project.data.splits import read_texts

    reads = []

    def tiny_builtin():  # a built-in set prints its summary on each read: read again, it would print again
        reads.append(1)
        return [{"text": row["review"], "label": row["sentiment"]} for row in make_rows(60)]

    monkeypatch.setitem(DATASETS, "tiny_builtin", tiny_builtin)
    data = TextDataModule(dataset="tiny_builtin", tokenizer=tiny_encoder, batch_size=8)
    data.setup("fit")  # validates the rows, then tokenizes them
    texts = read_texts(data.splits)  # what the TF-IDF baseline and the evaluation reports read again
    assert len(reads) == 1
    assert sum(map(len, texts.values())) == 60 and len(data.datasets["train"]) == len(texts["train"])


def fit_families(tmp_path, encoder_family, tokenizer_folder, max_length=32):
    """Fit an `encoder_family` encoder on data tokenized by `tokenizer_folder`; the first DataError, if any."""
    from transformers import AutoTokenizer

    from tests.model.family_zoo import fit_family, write_family

    encoder = write_family(encoder_family, tmp_path / encoder_family, positions=130)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    tokenizer.model_max_length = int(1e30)  # not recorded: the encoder's positions are what limit the length
    tokenizer.save_pretrained(tokenizer_folder)
    try:
        fit_family(str(encoder), tmp_path, max_length, tokenizer=str(tokenizer_folder))
    except DataError as error:
        return str(error)
    return None


def test_max_length_beyond_the_encoders_usable_positions_is_refused(tmp_path):
    from tests.model.family_zoo import write_family

    # 130 rows, numbered from the padding index + 1: 128 usable.
    tokenizer = write_family("roberta", tmp_path / "tokenizer", positions=130)
    assert (
        fit_families(tmp_path, "roberta", tokenizer, 129)
        == "data.max_length=129 exceeds the 128 positions the encoder can use"
    )
    assert fit_families(tmp_path / "ok", "roberta", tokenizer, 128) is None


def test_data_tokenized_without_the_segments_the_encoder_takes_is_refused(tmp_path):
    from tests.model.family_zoo import write_family

    # DistilBERT's tokenizer (same vocabulary as the tiny BERT's) declares no segments; BERT takes them.
    tokenizer = write_family("distilbert", tmp_path / "distilbert-tokenizer")
    error = fit_families(tmp_path, "bert", tokenizer)
    assert "gave the data without segment ids but the encoder (bert) takes segment ids" in error
    # A tokenizer-only folder (no config.json): its own declaration decides, and it matches DistilBERT.
    (tokenizer / "config.json").unlink()
    (tokenizer / "model.safetensors").unlink()
    assert fit_families(tmp_path / "ok", "distilbert", tokenizer) is None
    assert "without segment ids but the encoder (bert)" in fit_families(tmp_path / "bert", "bert", tokenizer)


def test_a_file_of_long_texts_is_read_back_for_tokenizing_in_chunks_bounded_by_characters(
    tmp_path, tiny_encoder, monkeypatch
):
    from project.data import token_cache

    rows = make_rows(60, seed=3, pairs=True)
    for index, row in enumerate(rows):
        row["review"] = " ".join([row["review"]] * (1 + index % 9))
    path = write_csv(tmp_path / "long.csv", rows)
    monkeypatch.setenv(token_cache.ROOT_ENV, str(tmp_path / "whole"))
    whole = data_module(path, tiny_encoder, text_pair_column="context")
    whole.setup("fit")

    sizes, original = [], token_cache._build

    def recording(folder, tokenizer, chunks, *args):
        chunks = [(texts, pairs) for texts, pairs in chunks]
        sizes.extend(sum(map(len, texts)) + sum(map(len, pairs)) for texts, pairs in chunks)
        return original(folder, tokenizer, chunks, *args)

    monkeypatch.setattr(token_cache, "_build", recording)
    monkeypatch.setattr(token_cache, "CHUNK_CHARACTERS", 400)
    monkeypatch.setenv(token_cache.ROOT_ENV, str(tmp_path / "chunked"))
    chunked = data_module(path, tiny_encoder, text_pair_column="context")
    chunked.setup("fit")
    longest = max(len(row["review"]) + len(row["context"]) for row in rows)
    assert len(sizes) > 5 and max(sizes) < 400 + longest
    assert set(whole.datasets) == set(chunked.datasets) and len(whole.datasets) >= 2
    for name in whole.datasets:
        assert [whole.datasets[name][i]["input_ids"] for i in range(len(whole.datasets[name]))] == [
            chunked.datasets[name][i]["input_ids"] for i in range(len(chunked.datasets[name]))
        ]
