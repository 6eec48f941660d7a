"""Epoch-aware, length-grouped training batches (shared infrastructure).

Why: with dynamic padding a batch costs as much as its longest sample, so grouping samples of
similar length (as HF's `group_by_length`) cuts the padded tokens a seq2seq step computes. The
batch sampler also tags every index with the epoch, `(epoch, index)`, so a Dataset can make
per-epoch augmentations (000 §4.2 shuffling, App. A span infilling) as a pure function of
(seed, epoch, sample) — in DataLoader workers too, where a `set_epoch` on the Dataset would not
arrive. Under DDP, Lightning re-creates this batch sampler around its DistributedSampler (the
`sampler` argument), whose `epoch` then drives everything the same way on every rank.
"""

from __future__ import annotations

import random
from typing import Iterator, Sequence, Sized

import torch
from torch.utils.data import BatchSampler, RandomSampler, Sampler


class EpochRandomSampler(RandomSampler):
    """A random permutation drawn from (seed, epoch); Lightning calls `set_epoch` every epoch."""

    def __init__(self, data_source: Sized, seed: int = 0):
        super().__init__(data_source)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        yield from torch.randperm(len(self.data_source), generator=g).tolist()


def length_grouped_batches(
    indices: Sequence[int],
    lengths: Sequence[int],
    batch_size: int,
    group_size: int,
    rng: random.Random,
    drop_last: bool = False,
) -> list[list[int]]:
    """Batches of similar-length indices: sort each run of `batch_size * group_size` indices by
    length, cut into batches, shuffle batch order, and put the longest batch first (so an
    out-of-memory error shows on step one, not hours in)."""
    chunk = max(1, batch_size * group_size)
    batches: list[list[int]] = []
    for start in range(0, len(indices), chunk):
        group = sorted(indices[start : start + chunk], key=lambda i: lengths[i], reverse=True)
        batches += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    rng.shuffle(batches)
    if batches:
        longest = max(range(len(batches)), key=lambda b: max(lengths[i] for i in batches[b]))
        batches[0], batches[longest] = batches[longest], batches[0]
    return batches


class ResumableBatchSampler(BatchSampler):
    """A batch sampler that can start an epoch part-way: `resume_at=(epoch, batches)` skips the
    first `batches` batches of that epoch, once.

    Why: a job preempted mid-epoch resumes from a step checkpoint; replaying the epoch from its
    start would train twice on its first batches and never on the rest. Skipping happens on
    indices, before any sample is loaded or collated, so resuming costs no data loading. The
    position is an init argument so it survives Lightning re-creating this sampler around its
    DistributedSampler under DDP (every rank skips the same number of its own batches).
    """

    def __init__(
        self, sampler: Sampler[int], batch_size: int, drop_last: bool = False, resume_at: tuple[int, int] | None = None
    ):
        super().__init__(sampler, batch_size, drop_last)
        self.resume_at = tuple(resume_at) if resume_at else None

    @property
    def epoch(self) -> int:
        return int(getattr(self.sampler, "epoch", 0))

    def batches(self) -> Iterator[list]:
        yield from super().__iter__()

    def __iter__(self) -> Iterator[list]:
        skip = 0
        if self.resume_at is not None:
            epoch, done = self.resume_at
            skip = done if epoch == self.epoch else 0
            self.resume_at = None  # once: later epochs start at their beginning
        for n, batch in enumerate(self.batches()):
            if n >= skip:
                yield batch


class EpochBatchSampler(ResumableBatchSampler):
    """Yields batches of `(epoch, index)`; groups by `lengths` when given (`group_size` > 0)."""

    def __init__(
        self,
        sampler: Sampler[int],
        batch_size: int,
        drop_last: bool = False,
        lengths: Sequence[int] | None = None,
        group_size: int = 50,
        seed: int = 0,
        resume_at: tuple[int, int] | None = None,
    ):
        super().__init__(sampler, batch_size, drop_last, resume_at)
        self.lengths, self.group_size, self.seed = lengths, group_size, seed

    def batches(self) -> Iterator[list[tuple[int, int]]]:
        epoch, order = self.epoch, list(self.sampler)
        if self.lengths is not None and self.group_size > 0:
            rng = random.Random(f"batches:{self.seed}:{epoch}")
            batches = length_grouped_batches(order, self.lengths, self.batch_size, self.group_size, rng, self.drop_last)
        else:
            batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
            if self.drop_last and batches and len(batches[-1]) < self.batch_size:
                batches.pop()
        for batch in batches:
            yield [(epoch, i) for i in batch]
