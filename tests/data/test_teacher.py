"""A teacher's scores reach the training rows only, each beside its own row, and scores of other rows are refused."""

import pytest
import torch

from project.core.errors import DataError
from project.data.datamodule import TextDataModule
from project.data.teacher import save_teacher_scores
from project.tasks import TEACHER_SCORES


def data_module(tiny_csv, tiny_encoder, **options) -> TextDataModule:
    return TextDataModule(train_file=str(tiny_csv), text_column="review", label_column="sentiment",
                          tokenizer=tiny_encoder, batch_size=8, **options)  # fmt: skip


def test_teacher_scores_sit_beside_their_training_rows_and_nowhere_else(tmp_path, tiny_csv, tiny_encoder):
    plain = data_module(tiny_csv, tiny_encoder)
    train = plain.splits["train"]
    scores = torch.arange(len(train) * 2, dtype=torch.float32).reshape(-1, 2)  # row i holds 2i, 2i + 1
    path = tmp_path / "teacher.pt"
    save_teacher_scores(path, {"train": train}, {"train": scores})
    data = data_module(tiny_csv, tiny_encoder, teacher_scores=str(path))
    data.setup("fit")
    plain.setup("fit")
    for index in (0, 7, len(train) - 1):
        item = data.datasets["train"][index]
        assert item[TEACHER_SCORES] == [2.0 * index, 2.0 * index + 1]
        assert item["labels"] == plain.datasets["train"][index]["labels"]
    assert data.datasets["train"].lengths().tolist() == plain.datasets["train"].lengths().tolist()
    for split in ("val", "test"):
        assert all(TEACHER_SCORES not in data.datasets[split][i] for i in range(len(data.datasets[split])))
    batch = next(iter(data.train_dataloader()))
    assert batch[TEACHER_SCORES].shape == (8, 2) and batch[TEACHER_SCORES].dtype == torch.float32


def test_scores_of_other_rows_are_refused_in_one_line(tmp_path, tiny_csv, tiny_encoder):
    other_split = data_module(tiny_csv, tiny_encoder, seed=7).splits["train"]  # the same file, carved otherwise
    path = tmp_path / "teacher.pt"
    save_teacher_scores(path, {"train": other_split}, {"train": torch.rand(len(other_split), 2)})
    data = data_module(tiny_csv, tiny_encoder, teacher_scores=str(path))
    with pytest.raises(DataError, match="computed for other train rows"):
        data.setup("fit")


def test_under_chunks_every_window_takes_its_documents_teacher_scores(tmp_path, tiny_csv, tiny_encoder):
    chunked = {"truncation": "chunks", "max_length": 8, "chunk_overlap": 2}  # the tiny reviews span several windows
    plain = data_module(tiny_csv, tiny_encoder, **chunked)
    train = plain.splits["train"]
    scores = torch.arange(len(train), dtype=torch.float32).reshape(-1, 1).repeat(1, 2)  # document i holds i, i
    path = tmp_path / "teacher.pt"
    save_teacher_scores(path, {"train": train}, {"train": scores})
    data = data_module(tiny_csv, tiny_encoder, teacher_scores=str(path), **chunked)
    data.setup("fit")
    plain.setup("fit")
    windows = plain.datasets["train"]
    assert len(windows) > len(train)  # more windows than documents, else this test shows nothing
    for index in range(len(windows)):
        document = int(windows.entry_documents[index])
        assert data.datasets["train"][index][TEACHER_SCORES] == [float(document)] * 2
