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
    assert data.datasets["train"].tokens.lengths().max() == 6
    assert isinstance(next(iter(data.train_dataloader()))["labels"], torch.Tensor)
