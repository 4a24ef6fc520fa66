"""Training order that depends on (seed, epoch) only."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochShuffleSampler(Sampler[int]):
    """A new permutation every epoch, drawn from (seed, epoch) alone.

    Unlike `shuffle=True` with a generator, the order does not depend on how many epochs this process has already
    run, so a run resumed at epoch 3 sees epoch 3's order, and reloading the loader does not repeat epoch 0.
    Lightning calls `set_epoch` before every epoch.
    """

    def __init__(self, length: int, seed: int):
        self.length = length
        self.seed = seed
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume(self, epoch: int, samples_done: int) -> None:
        """The next iteration, if it is of `epoch`, starts after its first `samples_done` samples (once)."""
        self._resume = (epoch, samples_done)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + 1_000_003 * self.epoch)
        order = torch.randperm(self.length, generator=generator).tolist()
        start = self._resume[1] if self._resume is not None and self._resume[0] == self.epoch else 0
        self._resume = None
        return iter(order[start:])

    def __len__(self) -> int:
        return self.length
