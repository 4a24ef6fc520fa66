"""The training order: batches that depend on (seed, epoch) only, optionally grouped by length, resumable
mid-epoch, split between the processes of a distributed run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DistributedSampler


class EpochSampler(DistributedSampler):
    """A new shuffled list of batches every epoch, drawn from (seed, epoch) alone, yielded back to back.

    Unlike `shuffle=True` with a generator, the order does not depend on how many epochs this process has already
    run, so a run resumed at epoch 3 sees epoch 3's order, and reloading the loader does not repeat epoch 0.
    Lightning calls `set_epoch` before every epoch; `resume` skips the batches a checkpoint has already trained on.

    With `group_by_length`, the shuffled examples are cut into windows of `window_batches` batches, each window is
    sorted by length and cut into batches, and the batches are shuffled: batches hold texts of similar length (little
    padding) while their order stays random. The batch with the longest text goes first, so a batch too large for
    the device fails at the first step rather than hours in.

    It yields indices, and the DataLoader (same batch size, drop_last off) cuts them into exactly these batches:
    the only short batch is kept last. Process `rank` of `num_replicas` takes every num_replicas-th batch, the list
    padded with its first batches so every process takes as many (as DistributedSampler pads). Being a
    DistributedSampler, Lightning keeps it instead of wrapping it in its own.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int,
        group_by_length: bool = False,
        window_batches: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        super().__init__(lengths, num_replicas=num_replicas, rank=rank, shuffle=False, seed=seed)
        self.lengths = lengths
        self.batch_size = batch_size
        self.group_by_length = group_by_length
        self.window = window_batches * batch_size
        self._resume: tuple[int, int] | None = None
        self._epoch_batches: tuple[int, list[list[int]]] | None = None  # (epoch, this process's batches)

    def resume(self, epoch: int, batches_done: int) -> None:
        """The next iteration, if it is of `epoch`, starts after this process's first `batches_done` batches."""
        self._resume = (epoch, batches_done)

    def batches(self) -> list[list[int]]:
        """This epoch's batches for every process, in training order."""
        generator = torch.Generator().manual_seed(self.seed + 1_000_003 * self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        size, lengths = self.batch_size, self.lengths
        if self.group_by_length:
            grouped = []
            for start in range(0, len(order), self.window):  # windows are whole batches: no batch spans two
                grouped += sorted(order[start : start + self.window], key=lambda index: -lengths[index])
            order = grouped
        batches = [order[start : start + size] for start in range(0, len(order), size)]
        if self.group_by_length:
            short = [batches.pop()] if len(batches[-1]) < size else []
            batches = [batches[index] for index in torch.randperm(len(batches), generator=generator).tolist()]
            batches += short
            longest = max(range(len(batches)), key=lambda index: lengths[batches[index][0]])
            if len(batches[longest]) == size:  # the short batch stays last
                batches[0], batches[longest] = batches[longest], batches[0]
        return batches

    def rank_batches(self) -> list[list[int]]:
        """This process's batches: every num_replicas-th, after padding the list with its first batches. Built once
        per epoch: Lightning asks `len()` several times an epoch, and sorting a million lengths takes seconds."""
        if self._epoch_batches is None or self._epoch_batches[0] != self.epoch:
            batches = self.batches()
            per_rank = -(-len(batches) // self.num_replicas)
            padded = (batches * (1 + self.num_replicas))[: per_rank * self.num_replicas]
            self._epoch_batches = (self.epoch, padded[self.rank :: self.num_replicas])
        return self._epoch_batches[1]

    def __iter__(self) -> Iterator[int]:
        batches = self.rank_batches()
        start = self._resume[1] if self._resume is not None and self._resume[0] == self.epoch else 0
        self._resume = None
        return (index for batch in batches[start:] for index in batch)

    def __len__(self) -> int:
        return sum(len(batch) for batch in self.rank_batches())
