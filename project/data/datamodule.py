"""LightningDataModule: rows -> validated splits -> token ids once (cached on disk) -> dynamically padded batches."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from transformers import AutoConfig, AutoTokenizer, DataCollatorWithPadding

from project.core.errors import DataError
from project.core.types import NonNegativeInt, PositiveInt, UnitIntervalOpenRight, plain_arguments
from project.data.builtin import load_dataset
from project.data.chunks import DOCUMENT
from project.data.readers import iter_rows
from project.data.sampler import EpochSampler
from project.data.segments import NO_SEGMENTS, tokenizer_rule
from project.data.splits import Columns, Split, carve, read_split
from project.data.teacher import TaughtDataset, load_teacher_scores
from project.data.token_cache import TokenCache, tokens_for
from project.data.truncation import MAX_CHUNKS, Truncation
from project.model.encoder import DEFAULT_ENCODER, from_pretrained, resolve_pretrained
from project.model.families import takes_segments, usable_positions
from project.tasks import TASKS, LabelCodec


class TokenizedDataset(Dataset):
    """A split's rows of its file's token cache, with their targets; padding happens per batch in the collator.

    Under `data.truncation: chunks` its entries are the rows' windows, in row order, each with its row's target;
    with `documents`, each also names its row's place in the split (`DOCUMENT`), which evaluation aggregates by."""

    def __init__(self, tokens: TokenCache, positions: np.ndarray, targets: list, documents: bool = False):
        self.tokens = tokens
        self.positions = positions  # the split's rows in the file (and so in `tokens`)
        self.targets = targets  # class ids, multi-hot lists or numbers, by task: one per row (document)
        self.documents = documents
        if tokens.chunked:
            self.window_counts = tokens.window_counts()[positions]
            self.entry_documents = np.repeat(np.arange(len(positions)), self.window_counts)
            first = np.asarray(tokens.span_offsets)[positions]
            before = np.concatenate([[0], np.cumsum(self.window_counts)[:-1]]).astype(np.int64)
            # The entries' windows: each row's run of spans in the cache, one after another.
            self.entry_spans = np.arange(len(self.entry_documents)) + np.repeat(first - before, self.window_counts)

    def __len__(self) -> int:
        return len(self.entry_spans) if self.tokens.chunked else len(self.targets)

    def __getitem__(self, index: int) -> dict:
        if not self.tokens.chunked:
            return {**self.tokens.row(int(self.positions[index])), "labels": self.targets[index]}
        document = int(self.entry_documents[index])
        item = {**self.tokens.window(int(self.positions[document]), int(self.entry_spans[index])),
                "labels": self.targets[document]}  # fmt: skip
        return {**item, DOCUMENT: document} if self.documents else item

    def lengths(self) -> np.ndarray:
        """Each entry's token count (a window's, under chunks)."""
        if self.tokens.chunked:
            return self.tokens.window_lengths()[self.entry_spans]
        return self.tokens.lengths()[self.positions]

    def full_lengths(self) -> np.ndarray:
        """Each row's token count before the cut to max_length."""
        return np.asarray(self.tokens.full_lengths)[self.positions]

    def kept_lengths(self) -> np.ndarray:
        """Each row's tokens the model reads (under chunks, those some window holds)."""
        if self.tokens.chunked:
            return self.tokens.kept_lengths()[self.positions]
        return self.tokens.lengths()[self.positions]


class DocumentBatches(DistributedSampler):
    """Evaluation batches of whole documents (under chunks: each document's windows together, so its outputs can be
    aggregated), in order, at most `size` windows a batch (a document with more is a batch of its own). A
    distributed run's process `rank` takes every num_replicas-th batch. Being a DistributedSampler, Lightning keeps
    it; the DataLoader takes its batches whole (batch_size None)."""

    def __init__(self, window_counts: np.ndarray, size: int, num_replicas: int = 1, rank: int = 0):
        super().__init__(window_counts, num_replicas=num_replicas, rank=rank, shuffle=False)
        batches, batch, held, entry = [], [], 0, 0
        for count in np.asarray(window_counts).tolist():
            if batch and held + count > size:
                batches.append(batch)
                batch, held = [], 0
            batch += range(entry, entry + count)
            held, entry = held + count, entry + count
        self.all_batches = batches + ([batch] if batch else [])
        self.own = self.all_batches[rank::num_replicas]

    def __iter__(self):
        return iter(self.own)

    def __len__(self) -> int:
        return len(self.own)


class Batched(Dataset):
    """A dataset read a batch of indices at a time (for a sampler that yields whole batches)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, indices: list[int]) -> list[dict]:
        return [self.dataset[index] for index in indices]


class TextDataModule(LightningDataModule):
    def __init__(
        self,
        dataset: str = "rotten_tomatoes",
        train_file: str | None = None,
        val_file: str | None = None,
        test_file: str | None = None,
        text_column: str = "text",
        text_pair_column: str | None = None,
        label_column: str = "label",
        task: str = "single_label",
        label_delimiter: str = ",",
        max_length: PositiveInt = 128,
        truncation: Literal["head", "tail", "head_tail", "chunks"] = "head",
        head_tokens: PositiveInt | None = None,
        chunk_overlap: int | None = None,
        max_chunks: int = MAX_CHUNKS,
        batch_size: PositiveInt = 32,
        eval_batch_size: PositiveInt | None = None,
        val_ratio: UnitIntervalOpenRight = 0.1,
        test_ratio: UnitIntervalOpenRight = 0.1,
        num_workers: NonNegativeInt = 0,
        empty_text: Literal["error", "drop"] = "error",
        group_by_length: bool = True,
        group_window_batches: PositiveInt = 50,
        tokenizer: str = DEFAULT_ENCODER,
        seed: int = 42,
        teacher_scores: str | None = None,
    ):
        """Text classification data from a built-in data set or from files.

        Args:
            dataset: built-in data set, used when `train_file` is not given: rotten_tomatoes, chinese_reviews,
                bbc_news (long documents), dutch_book_reviews, chinese_entities (multi_label).
            train_file: CSV, TSV or JSONL; takes precedence over `dataset`.
            val_file: if absent, `val_ratio` of the training rows are held out instead.
            test_file: if absent, `test_ratio` of the training rows are held out instead.
            text_column: column with the text.
            text_pair_column: optional second text; pairs are tokenized as pairs, with segment ids
                (token_type_ids) where the encoder takes them (see `project.data.segments`).
            label_column: column with the label: a class name, a list of names (multi_label) or a number.
            task: how labels are read (see `project.tasks`); linked to `model.task` by the CLI.
            label_delimiter: separates names in a multi_label cell that is not a JSON list.
            max_length: truncate longer inputs; shorter batches are padded only to their longest member.
            truncation: which tokens of a longer input are kept: head (the first), tail (the last) or head_tail
                (the first `head_tokens` and the rest from the end); special tokens always stay. chunks keeps them
                all: a document is read as windows of `max_length` tokens, each a training example with the
                document's label, and evaluation, predict and serve aggregate a document's windows
                (`model.chunk_aggregation`). With pairs it applies to the second text (see
                `project.data.truncation`, `project.data.chunks`). Predict, serve and exports use the same.
            head_tokens: head_tail's tokens from the start (default: a quarter of `max_length`).
            chunk_overlap: under chunks, the tokens two neighbouring windows share (default: a quarter of
                `max_length`, so a sentence cut by one window's edge is read whole in the next).
            max_chunks: under chunks, the most windows of a document; a longer one is read through this many,
                chosen evenly from its first window to its last.
            batch_size: training batch size (per device, before gradient accumulation).
            eval_batch_size: validation/test batch size; defaults to twice `batch_size` (no gradients to hold).
            val_ratio: share of the training file held out for validation when there is no `val_file`.
            test_ratio: share of the training file held out for testing when there is no `test_file`.
            num_workers: DataLoader worker processes; 0 is fastest here (collating is cheap).
            empty_text: a row whose text (or pair) is empty or blank: `error` refuses the file, counting every such
                row; `drop` leaves them out, and the data report counts them (`rows_dropped_for_empty_text`).
            group_by_length: batch training texts of similar length (less padding, same randomness of batch order;
                see `project.data.sampler`); false gives plain shuffled batches.
            group_window_batches: how many batches' worth of shuffled texts are sorted by length together.
            tokenizer: tokenizer name or folder; linked to `model.encoder` by the CLI.
            seed: seeds the split and the training order; linked to `seed_everything` by the CLI.
            teacher_scores: a teacher's scores of the training rows, for the distillation trick; set by
                `python -m project.distill`, which computes them (see `project.data.teacher`).
        """
        arguments = plain_arguments(locals())
        super().__init__()
        self.save_hyperparameters(arguments)
        self.truncation = Truncation(truncation, head_tokens, chunk_overlap, max_chunks)
        self.truncation.check(max_length)
        held_out = (val_ratio if not val_file else 0) + (test_ratio if not test_file else 0)
        if held_out >= 1:
            raise DataError(
                f"data.val_ratio={val_ratio} and data.test_ratio={test_ratio} hold out {held_out:.0%} of the training "
                "rows, leaving none to train on"
            )
        self._splits: dict[str, Split] | None = None
        self._codec: LabelCodec | None = None
        self.datasets: dict[str, TokenizedDataset] = {}
        self._resume_position: tuple[int, int] | None = None
        self.dropped_for_empty_text: dict[str, int] = {}  # file split -> rows left out (data.empty_text: drop)

    # --------------------------------------------------------------------------------- labels (read at link time)
    @property
    def splits(self) -> dict[str, Split]:
        """train, val and (if any) test, validated; read on first use (the CLI's label link asks first)."""
        if self._splits is None:
            self._splits = self._load_splits()
        return self._splits

    @property
    def codec(self) -> LabelCodec:
        if self._codec is None:
            train_labels = self.splits["train"].labels
            task = TASKS.lookup(self.hparams.task)
            try:
                self._codec = task.label_codec(train_labels, self._train_source, self.hparams.label_delimiter)
            except DataError as error:
                hp = self.hparams
                held = [f"data.{name}={getattr(hp, name)}" for name, file in (("val_ratio", hp.val_file),
                        ("test_ratio", hp.test_file)) if not file and getattr(hp, name)]  # fmt: skip
                if not held:
                    raise
                raise DataError(f"{error} (in the {len(train_labels)} training rows left after holding out "
                                f"{' and '.join(held)})") from None  # fmt: skip
        return self._codec

    @property
    def label_names(self) -> list[str] | None:
        return self.codec.label_names

    @property
    def num_labels(self) -> int:
        return self.codec.num_labels

    @property
    def _train_source(self) -> str:
        return self.hparams.train_file or f"data.dataset '{self.hparams.dataset}'"

    # --------------------------------------------------------------------------------- Lightning hooks
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        tokenizer = self.tokenizer = from_pretrained(AutoTokenizer, self.hparams.tokenizer)
        limit = tokenizer.model_max_length
        if limit < 1_000_000 and self.hparams.max_length > limit:  # huge values mean "not recorded"
            raise DataError(f"data.max_length={self.hparams.max_length} exceeds the tokenizer's limit of {limit}")
        self.segments = tokenizer_rule(tokenizer, self._encoder_takes_segments(tokenizer))
        tokens = {}  # one entry per file: the splits carved from the training file share it
        for name, split in self.splits.items():
            table = split.table
            if id(table) not in tokens:
                tokens[id(table)] = tokens_for(
                    tokenizer,
                    table.fingerprint,
                    table.text_chunks,
                    self.hparams.max_length,
                    segments=self.segments,
                    truncation=self.truncation,
                )
            targets = self.codec.encode_all(split.labels, split.where)
            self.datasets[name] = TokenizedDataset(tokens[id(table)], split.positions, targets, name != "train")
        if self.hparams.get("teacher_scores"):  # the training rows only: never a validation or test row
            scores, about = load_teacher_scores(self.hparams.teacher_scores, self.splits["train"])
            self.datasets["train"] = TaughtDataset(self.datasets["train"], scores, about)
        self.collator = DataCollatorWithPadding(tokenizer)

    def _encoder_takes_segments(self, tokenizer) -> bool:
        """Whether the encoder named like the tokenizer (`data.tokenizer` is linked from `model.encoder`) takes
        segment ids: its config says; a tokenizer folder without one, the tokenizer's own declaration."""
        path = Path(resolve_pretrained(self.hparams.tokenizer))
        if path.is_dir() and not (path / "config.json").is_file():
            return "token_type_ids" in tokenizer.model_input_names
        return takes_segments(from_pretrained(AutoConfig, str(path)))

    def check_encoder(self, encoder) -> None:
        """DataError if the encoder cannot take this data: inputs longer than its usable positions, segment ids it
        does not take (or missing ones it does), or token ids beyond its embedding (a tokenizer from another
        model), which would otherwise fail mid-training or train on inputs it never sees at inference."""
        config, max_length = encoder.config, self.hparams.max_length
        positions = usable_positions(encoder)
        if positions and max_length > positions:
            raise DataError(f"data.max_length={max_length} exceeds the {positions} positions the encoder can use")
        if takes_segments(config) != (self.segments != NO_SEGMENTS):
            having = "with" if self.segments != NO_SEGMENTS else "without"
            wants = "takes" if takes_segments(config) else "takes no"
            raise DataError(
                f"data.tokenizer '{self.hparams.tokenizer}' gave the data {having} segment ids but the encoder "
                f"({config.model_type}) {wants} segment ids: set data.tokenizer to the encoder's own"
            )
        if len(self.tokenizer) > config.vocab_size:
            raise DataError(
                f"the tokenizer '{self.hparams.tokenizer}' has {len(self.tokenizer)} tokens but the encoder's "
                f"embedding has {config.vocab_size} rows: the tokenizer files are from another model"
            )

    def train_dataloader(self) -> DataLoader:
        hp, trainer = self.hparams, self.trainer
        self.train_sampler = EpochSampler(
            self.datasets["train"].lengths().tolist(), hp.batch_size, hp.seed, hp.group_by_length,
            hp.group_window_batches, num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
        )  # fmt: skip
        if self._resume_position is not None:
            self.train_sampler.resume(*self._resume_position)
        return self._loader("train", batch_size=hp.batch_size, sampler=self.train_sampler)

    # A checkpoint records how far into which epoch it was written; a resumed run skips the batches already seen,
    # so a mid-epoch resume sees exactly the samples the uninterrupted run would have seen.
    def state_dict(self) -> dict[str, int]:
        trainer = self.trainer
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"epoch": trainer.current_epoch, "batches_done": done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_position = (state["epoch"], state["batches_done"])
        if getattr(self, "train_sampler", None) is not None:  # Lightning may build the loader before restoring
            self.train_sampler.resume(*self._resume_position)

    def val_dataloader(self) -> DataLoader:
        return self._evaluation_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._evaluation_loader("test")

    def _evaluation_loader(self, split: str) -> DataLoader:
        kwargs = {}
        trainer = self.trainer
        size = self.hparams.eval_batch_size or 2 * self.hparams.batch_size
        dataset = self.datasets[split]
        if dataset.tokens.chunked:  # batches of whole documents, bounded by their windows
            replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
            batches = DocumentBatches(dataset.window_counts, size, replicas, rank)
            return self._loader(split, batch_size=None, sampler=batches, dataset=Batched(dataset))
        if trainer is not None and trainer.world_size > 1:
            # Each process takes every n-th row, none repeated: Lightning's own DistributedSampler pads the shards
            # with repeats, so a distributed val/acc would count some rows twice and differ from one process's.
            kwargs["sampler"] = UnrepeatedDistributedSampler(
                self.datasets[split], num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
            )
        return self._loader(split, batch_size=size, **kwargs)

    def _loader(self, split: str, dataset: Dataset | None = None, **kwargs) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            dataset if dataset is not None else self.datasets[split],
            collate_fn=self.collator,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            # Its own generator: creating an iterator draws a seed, and must not draw it from the global generator
            # (the dropout masks' source), or a resumed run's masks would shift.
            generator=torch.Generator().manual_seed(self.hparams.seed),
            **kwargs,
        )

    # --------------------------------------------------------------------------------- reading and splitting
    def _load_splits(self) -> dict[str, Split]:
        hp = self.hparams
        columns = Columns(hp.text_column, hp.label_column, hp.text_pair_column)
        empty_labels = TASKS.lookup(hp.task).label_cells_may_be_empty
        drop = hp.get("empty_text", "error") == "drop"
        if hp.train_file:
            files = {"train": hp.train_file, "val": hp.val_file, "test": hp.test_file}
            loaded = {
                split: read_split(partial(iter_rows, path), str(Path(path)), columns, empty_labels, drop)
                for split, path in files.items()
                if path
            }
        else:
            # Read once, held in memory (a built-in set is small): each pass over the texts (tokenizing, the
            # baseline, the reports) would otherwise unpack and filter it again, and print its summary again.
            rows = load_dataset(hp.dataset, hp.task)
            loaded = {"train": read_split(lambda: rows, hp.dataset, columns, empty_labels, drop)}
        self.dropped_for_empty_text = {name: split.table.dropped for name, split in loaded.items()} if drop else {}
        return carve(loaded, hp.val_ratio, hp.test_ratio, hp.seed)
