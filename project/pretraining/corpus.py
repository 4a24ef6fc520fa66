"""LightningDataModule for raw text: documents -> token windows with word ids -> masked batches.

A text file holds one document per line; a CSV/TSV/JSONL file holds them in a column. A document longer than
`max_length` tokens becomes several windows (the tokenizer's overflow), so nothing past the limit is thrown away.
"""

from __future__ import annotations

import random

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader
from transformers import AutoTokenizer

from project.core.errors import DataError
from project.core.types import NonNegativeInt, OpenUnitInterval, PositiveInt, UnitIntervalOpenRight, plain_arguments
from project.data.readers import read_table
from project.data.sampler import EpochSampler
from project.model.encoder import DEFAULT_ENCODER, from_pretrained
from project.pretraining.masking import (
    NO_WORD,
    MaskingCollator,
    load_segmenter,
    masked_once,
    padding_collator,
    segment_word_ids,
)


def read_documents(path: str, text_column: str) -> list[str]:
    """Non-empty documents in `text_column` of any file the readers know; a text file's lines are its column
    `text`, the default."""
    documents = [(row[text_column] or "").strip() for row in read_table(path, [text_column])]
    documents = [document for document in documents if document]
    if not documents:
        raise DataError(f"{path}: no text to pretrain on")
    return documents


class CorpusDataModule(LightningDataModule):
    def __init__(
        self,
        train_file: str,
        val_file: str | None = None,
        text_column: str = "text",
        val_ratio: UnitIntervalOpenRight = 0.05,
        max_length: PositiveInt = 128,
        batch_size: PositiveInt = 32,
        eval_batch_size: PositiveInt | None = None,
        mlm_probability: OpenUnitInterval = 0.15,
        whole_word_mask: bool = False,
        segmenter: str | None = None,
        num_workers: NonNegativeInt = 0,
        tokenizer: str = DEFAULT_ENCODER,
        seed: int = 42,
    ):
        """Raw text for masked-language-model pretraining.

        Args:
            train_file: a .txt file (one document per line) or a CSV/TSV/JSONL file with a `text_column`.
            val_file: held-out documents; if absent, `val_ratio` of the training documents are held out.
            text_column: the column with the text (a .txt file's lines are the column `text`).
            val_ratio: share of the training documents held out for val/loss and val/perplexity.
            max_length: tokens per window; longer documents become several windows.
            batch_size: training batch size (per device, before gradient accumulation).
            eval_batch_size: validation batch size; defaults to twice `batch_size`.
            mlm_probability: share of tokens (of words, with whole_word_mask) to predict; BERT's 0.15.
            whole_word_mask: mask every token of a chosen word together (always as [MASK]).
            segmenter: with whole_word_mask, where words come from: null for the tokenizer's own words (each
                Chinese character is one), or a function 'package.module:function' from a text to its words
                (e.g. jieba:lcut, after `pip install jieba`).
            num_workers: DataLoader worker processes.
            tokenizer: tokenizer name or folder; linked to `model.encoder` by the CLI.
            seed: seeds the split, the training order and the validation masks; linked to `seed_everything`.
        """
        arguments = plain_arguments(locals())
        super().__init__()
        self.save_hyperparameters(arguments)
        if not 0 <= val_ratio < 1:
            raise DataError(f"data.val_ratio must be in [0, 1), got {val_ratio}")
        if segmenter is not None and not whole_word_mask:
            raise DataError("data.segmenter only decides word boundaries for data.whole_word_mask: set it true")
        self.segmenter = load_segmenter(segmenter) if segmenter else None
        self.datasets: dict[str, list[dict]] = {}
        self._resume_position: tuple[int, int] | None = None

    def documents(self) -> dict[str, list[str]]:
        hp = self.hparams
        train = read_documents(hp.train_file, hp.text_column)
        if hp.val_file:
            return {"train": train, "val": read_documents(hp.val_file, hp.text_column)}
        random.Random(hp.seed).shuffle(train)
        held_out = round(len(train) * hp.val_ratio)
        if held_out == 0 and hp.val_ratio > 0:
            raise DataError(f"{hp.train_file}: {len(train)} documents are too few to hold out data.val_ratio")
        return {"train": train[held_out:], "val": train[:held_out]}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        hp = self.hparams
        self.tokenizer = from_pretrained(AutoTokenizer, hp.tokenizer)
        if not self.tokenizer.is_fast:
            raise DataError(f"tokenizer '{hp.tokenizer}' has no fast version: word ids need one")
        self.collator = MaskingCollator(self.tokenizer, hp.mlm_probability, hp.whole_word_mask)
        windows = {split: self.windows(documents) for split, documents in self.documents().items()}
        self.datasets["train"] = windows["train"]
        if windows["val"]:
            seeded = MaskingCollator(self.tokenizer, hp.mlm_probability, hp.whole_word_mask, seed=hp.seed)
            self.datasets["val"] = masked_once(windows["val"], seeded)

    def windows(self, documents: list[str]) -> list[dict]:
        """{input_ids, word_ids} per window of at most max_length tokens."""
        if not documents:
            return []
        encoding = self.tokenizer(
            documents, truncation=True, max_length=self.hparams.max_length, return_overflowing_tokens=True,
            return_offsets_mapping=self.segmenter is not None, return_special_tokens_mask=True,
        )  # fmt: skip
        windows = []
        for index, input_ids in enumerate(encoding["input_ids"]):
            if self.segmenter is None:
                word_ids = [NO_WORD if word is None else word for word in encoding.word_ids(index)]
            else:
                text = documents[encoding["overflow_to_sample_mapping"][index]]
                word_ids = segment_word_ids(self.segmenter(text), text, encoding["offset_mapping"][index],
                                            encoding["special_tokens_mask"][index])  # fmt: skip
            windows.append({"input_ids": input_ids, "word_ids": word_ids})
        return windows

    def train_dataloader(self) -> DataLoader:
        hp, trainer = self.hparams, self.trainer
        self.train_sampler = EpochSampler(
            [len(window["input_ids"]) for window in self.datasets["train"]], hp.batch_size, hp.seed, True, 50,
            num_replicas=trainer.world_size if trainer else 1, rank=trainer.global_rank if trainer else 0,
        )  # fmt: skip
        if self._resume_position is not None:
            self.train_sampler.resume(*self._resume_position)
        # Its own generator, as TextDataModule's: the global one feeds the masks and dropout, which a resume restores.
        return DataLoader(self.datasets["train"], batch_size=hp.batch_size, sampler=self.train_sampler,
                          collate_fn=self.collator, num_workers=hp.num_workers,
                          generator=torch.Generator().manual_seed(hp.seed))  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        if "val" not in self.datasets:
            return []
        hp = self.hparams
        return DataLoader(self.datasets["val"], batch_size=hp.eval_batch_size or 2 * hp.batch_size,
                          collate_fn=padding_collator(self.tokenizer), num_workers=hp.num_workers)  # fmt: skip

    # As TextDataModule: a resumed run skips the batches its checkpoint has already seen.
    def state_dict(self) -> dict[str, int]:
        done = self.trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"epoch": self.trainer.current_epoch, "batches_done": done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_position = (state["epoch"], state["batches_done"])
        if getattr(self, "train_sampler", None) is not None:
            self.train_sampler.resume(*self._resume_position)
