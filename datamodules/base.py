"""The shared DataModule contract: validate early, split once, connect a tokenizer late.

Why: train.py must reject bad input before the run directory, model or trainer exist, and a
DataModule cannot know the tokenizer when it is built from config (litgpt's `connect`). Task
DataModules subclass this and only say how records become batches.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from feedback_nlp.datamodules.records import load_records
from feedback_nlp.datamodules.splits import Splits, make_splits


class ListDataset(Dataset):
    def __init__(self, items: Sequence[Any]):
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]


class EpochSeededSampler(Sampler[int]):
    """Shuffles by (seed, epoch) instead of the global RNG.

    Why: a job resumed from a checkpoint must see the same batch order as an uninterrupted
    one; Lightning calls `set_epoch` on samplers that have it (DistributedSampler does the same).
    """

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class RecordDataModule(L.LightningDataModule):
    """Reads one record kind from JSONL, validates it and splits it.

    Either one `path` split by `split` (time / random / auto), or explicit `train_path`,
    `dev_path`, `test_path` files (held-out data), or both (explicit files win per split).
    `batch_size` is the global batch: each of N DDP ranks gets batch_size // N.
    """

    kind: str = ""  # record kind: feedback | claim | transcript | question

    def __init__(self, path: str | None = None, train_path: str | None = None, dev_path: str | None = None,
                 test_path: str | None = None, field_map: Mapping[str, str] | None = None, split: str = "auto",
                 dev_fraction: float = 0.1, test_fraction: float = 0.2, test_month: str | None = None,
                 seed: int = 0, batch_size: int = 32, eval_batch_size: int | None = None, num_workers: int = 0):
        super().__init__()
        self.path, self.train_path, self.dev_path, self.test_path = path, train_path, dev_path, test_path
        self.field_map = dict(field_map or {})
        self.split, self.dev_fraction, self.test_fraction, self.test_month = split, dev_fraction, test_fraction, test_month
        self.seed, self.batch_size, self.num_workers = seed, batch_size, num_workers
        self.eval_batch_size = eval_batch_size or batch_size
        self.splits: Splits | None = None
        self.tokenizer: Any = None

    # --- contract used by train.py -------------------------------------------------------
    def validate(self) -> Splits:
        """Read and validate every input file; build splits. Raises DataValidationError."""
        if self.splits is None:
            self.splits = self.build_splits()
        return self.splits

    def task_info(self) -> dict[str, Any]:
        """What the model must know about the data (labels, ...); passed to its constructor."""
        return {}

    def connect(self, tokenizer: Any = None, **kwargs: Any) -> None:
        self.tokenizer = tokenizer

    # --- helpers ---------------------------------------------------------------------------
    def load(self, path: str | Path) -> list:
        return load_records(path, self.kind, self.field_map or None)

    def build_splits(self) -> Splits:
        if not (self.path or self.train_path):
            raise ValueError(f"{type(self).__name__}: set data.path or data.train_path")
        if self.path:
            splits = make_splits(self.load(self.path), self.split, self.seed, self.dev_fraction,
                                 self.test_fraction, self.test_month)
        else:
            splits = Splits()
        for name in ("train", "dev", "test"):
            explicit = getattr(self, f"{name}_path")
            if explicit:
                setattr(splits, name, self.load(explicit))
        if self.test_path and not self.path:
            splits.traffic = list(splits.test)
        if not splits.dev and splits.train:
            # no dev data given: carve one from train by the same seeded hash
            from feedback_nlp.datamodules.splits import random_split
            carved = random_split(splits.train, self.seed, test_fraction=self.dev_fraction)
            splits.train, splits.dev = carved.train, carved.test
        return splits

    def per_device_batch_size(self, global_batch: int) -> int:
        world = self.trainer.world_size if self.trainer is not None else 1
        if global_batch % world:
            raise ValueError(f"batch size {global_batch} is not divisible by world size {world}")
        return max(1, global_batch // world)

    def loader(self, items: Sequence[Any], collate: Any, train: bool) -> DataLoader:
        size = self.per_device_batch_size(self.batch_size if train else self.eval_batch_size)
        sampler = EpochSeededSampler(len(items), self.seed) if train else None
        return DataLoader(ListDataset(items), batch_size=size, sampler=sampler, collate_fn=collate,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)
