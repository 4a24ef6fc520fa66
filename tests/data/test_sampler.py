import random

import pytest

from project.data.sampler import EpochSampler

_RANDOM = random.Random(0)
LENGTHS = [_RANDOM.randint(3, 120) for _ in range(1000)]


def epoch_batches(sampler: EpochSampler, epoch: int) -> list[list[int]]:
    """The batches a DataLoader with the sampler's batch size cuts from its indices."""
    sampler.set_epoch(epoch)
    indices = list(sampler)
    return [indices[start : start + sampler.batch_size] for start in range(0, len(indices), sampler.batch_size)]


def padded_tokens(batches: list[list[int]]) -> int:
    return sum(len(batch) * max(LENGTHS[index] for index in batch) for batch in batches)


@pytest.mark.parametrize("grouped", [False, True])
def test_every_example_once_per_epoch_in_full_batches_but_the_last(grouped):
    sampler = EpochSampler(LENGTHS, batch_size=32, seed=0, group_by_length=grouped, window_batches=4)
    batches = epoch_batches(sampler, 0)
    assert len(sampler) == len(LENGTHS)
    assert sorted(index for batch in batches for index in batch) == list(range(len(LENGTHS)))
    assert len(batches) == 32  # ceil(1000 / 32)
    assert batches == sampler.batches()  # the loader's cut gives the sampler's own batches: the short one is last


@pytest.mark.parametrize("grouped", [False, True])
def test_order_depends_on_seed_and_epoch_only(grouped):
    def sampler(seed):
        return EpochSampler(LENGTHS, batch_size=32, seed=seed, group_by_length=grouped)

    first = sampler(0)
    assert epoch_batches(first, 1) == epoch_batches(sampler(0), 1)  # a fresh process at epoch 1: same batches
    assert epoch_batches(first, 1) != epoch_batches(first, 2)
    assert epoch_batches(first, 1) != epoch_batches(sampler(1), 1)


def test_grouping_cuts_padding_and_keeps_the_longest_batch_first():
    plain = epoch_batches(EpochSampler(LENGTHS, 32, seed=0), 0)
    grouped = epoch_batches(EpochSampler(LENGTHS, 32, seed=0, group_by_length=True, window_batches=8), 0)
    assert padded_tokens(grouped) < 0.75 * padded_tokens(plain)
    assert max(LENGTHS[index] for index in grouped[0]) == max(LENGTHS)
    # Batch order is still shuffled: the batches' longest lengths are not sorted.
    longest = [max(LENGTHS[index] for index in batch) for batch in grouped[1:]]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


@pytest.mark.parametrize("grouped", [False, True])
def test_resume_skips_the_batches_already_seen_in_that_epoch_only(grouped):
    sampler = EpochSampler(LENGTHS, 32, seed=3, group_by_length=grouped)
    full = epoch_batches(sampler, 2)
    sampler.resume(epoch=2, batches_done=5)
    assert epoch_batches(sampler, 2) == full[5:]
    assert len(sampler) == len(LENGTHS)  # the epoch's length, as Lightning counts it, does not shrink
    assert epoch_batches(sampler, 2) == full  # once
    sampler.resume(epoch=1, batches_done=5)  # a checkpoint taken at the end of epoch 1
    assert epoch_batches(sampler, 2) == full


@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("world", [2, 3])
def test_processes_take_distinct_batches_and_as_many_each(grouped, world):
    ranks = [
        EpochSampler(LENGTHS, 32, seed=0, group_by_length=grouped, num_replicas=world, rank=rank)
        for rank in range(world)
    ]
    per_rank = [epoch_batches(sampler, 1) for sampler in ranks]
    assert len({len(batches) for batches in per_rank}) == 1  # same number of steps everywhere
    seen = [index for batches in per_rank for batch in batches for index in batch]
    assert set(seen) == set(range(len(LENGTHS)))
    padding = len(per_rank[0]) * world - 32  # the list is padded with its first batches
    assert len(seen) - len(LENGTHS) <= padding * 32
    assert per_rank[0] == ranks[0].batches()[0::world][: len(per_rank[0])]


def test_an_epoch_is_built_once_however_often_its_length_is_asked(monkeypatch):
    sampler = EpochSampler(LENGTHS, 32, seed=0, group_by_length=True)
    built = []
    plain_batches = EpochSampler.batches
    monkeypatch.setattr(EpochSampler, "batches", lambda self: built.append(self.epoch) or plain_batches(self))
    for epoch in (0, 0, 1):
        sampler.set_epoch(epoch)
        assert len(sampler) == len(LENGTHS) and len(list(sampler)) == len(LENGTHS)
    assert built == [0, 1]
