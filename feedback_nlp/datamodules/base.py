"""The shared DataModule contract: validate early, split once, connect a tokenizer late.

Why: train.py must reject bad input before the run directory, model or trainer exist, and a
DataModule cannot know the tokenizer when it is built from config (litgpt's `connect`). Task
DataModules subclass this and only say how records become batches.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from feedback_nlp.core.records import load_records
from feedback_nlp.datamodules.batching import EpochRandomSampler, ResumableBatchSampler
from feedback_nlp.datamodules.splits import Splits, make_splits


class ListDataset(Dataset):
    def __init__(self, items: Sequence[Any]):
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]


class RecordDataModule(L.LightningDataModule):
    """Reads one record kind from JSONL, validates it and splits it.

    Either one `path` split by `split` (time / random / auto), or explicit `train_path`,
    `dev_path`, `test_path` files (held-out data), or both (explicit files win per split).
    `batch_size` is the global batch: each of N DDP ranks gets batch_size // N.

    DataLoader settings default to what suits the device the job runs on: `num_workers` null
    means 0 on CPU (the training step needs the cores) and up to 4 per GPU process (tokenized
    features are cheap, collation is not free); `pin_memory` null means on for CUDA.
    `pad_to_multiple_of` (8 for tensor cores) is passed to the collators that pad.
    The position in the training epoch is part of the checkpoint (`state_dict`), so a job
    resumed from a mid-epoch checkpoint continues with the next batch.

    Args:
        path: One JSONL file of records, split into train/dev/test by `split`.
        train_path: Explicit training JSONL (wins over the `path` split for train).
        dev_path: Explicit dev JSONL (wins over the `path` split for dev).
        test_path: Explicit test JSONL (wins over the `path` split for test).
        field_map: Schema field -> source field renames, e.g. {text: narrative}.
        split: How `path` is split: time (last labeled month is test), random, or auto (time when all are dated).
        dev_fraction: Share of the training records held out as dev when no dev file is given.
        test_fraction: Share of the records held out as test by a random split.
        test_month: Test month "YYYY-MM" of a time split (null: the last month with a labeled record).
        seed: Seed of the random split and of the training order.
        batch_size: Global training batch (each of N DDP ranks gets batch_size // N).
        eval_batch_size: Global batch for validation, test and predict (null: batch_size).
        num_workers: DataLoader worker processes (null: 0 on CPU, up to 4 per GPU process).
        pin_memory: Pin host memory for faster copies to the GPU (null: on with CUDA).
        pad_to_multiple_of: Pad token sequences to a multiple of this (8 suits tensor cores; null: no rounding).
    """

    kind: str = ""  # record kind: feedback | claim | transcript | question

    def __init__(
        self,
        path: str | None = None,
        train_path: str | None = None,
        dev_path: str | None = None,
        test_path: str | None = None,
        field_map: Mapping[str, str] | None = None,
        split: str = "auto",
        dev_fraction: float = 0.1,
        test_fraction: float = 0.2,
        test_month: str | None = None,
        seed: int = 0,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int | None = 0,
        pin_memory: bool | None = None,
        pad_to_multiple_of: int | None = None,
    ):
        super().__init__()
        self.path, self.train_path, self.dev_path, self.test_path = path, train_path, dev_path, test_path
        self.field_map = dict(field_map or {})
        self.split, self.dev_fraction, self.test_fraction, self.test_month = (
            split,
            dev_fraction,
            test_fraction,
            test_month,
        )
        self.seed, self.batch_size, self.num_workers = seed, batch_size, num_workers
        self.eval_batch_size = eval_batch_size or batch_size
        self.pin_memory, self.pad_to_multiple_of = pin_memory, pad_to_multiple_of
        self.splits: Splits | None = None
        self.tokenizer: Any = None
        self.train_position: tuple[int, int] = (0, 0)  # (epoch, training batches fetched in it)
        self._resume_at: tuple[int, int] | None = None

    # --- contract used by train.py -------------------------------------------------------
    def validate(self) -> Splits:
        """Read and validate every input file; build splits. Raises DataValidationError."""
        if self.splits is None:
            self.splits = self.build_splits()
        return self.splits

    def task_info(self) -> dict[str, Any]:
        """What the model must know about the data (labels, ...); passed to its constructor."""
        return {}

    def connect(self, tokenizer: Any = None, **limits: Any) -> None:
        """The model's tokenizer and input limits (TaskContract), given when the model exists.
        A subclass takes the limits it uses by name; any other is refused."""
        if limits:
            raise TypeError(f"{type(self).__name__}.connect got input limits it does not use: {sorted(limits)}")
        self.tokenizer = tokenizer

    # --- helpers ---------------------------------------------------------------------------
    def load(self, path: str | Path) -> list:
        return load_records(path, self.kind, self.field_map or None)

    def build_splits(self) -> Splits:
        if not (self.path or self.train_path):
            raise ValueError(f"{type(self).__name__}: set data.path or data.train_path")
        if self.path:
            splits = make_splits(
                self.load(self.path), self.split, self.seed, self.dev_fraction, self.test_fraction, self.test_month
            )
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

    # --- DataLoaders ---------------------------------------------------------------------
    def _on_gpu(self) -> bool:
        accelerator = getattr(self.trainer, "accelerator", None) if self.trainer is not None else None
        return type(accelerator).__name__ == "CUDAAccelerator"

    def loader_options(self) -> dict[str, Any]:
        """num_workers / pin_memory / persistent_workers / generator for every DataLoader.

        Why the generator: a DataLoader without one draws its worker seed from the global RNG at
        every `iter()`, so a resumed job (which calls `iter()` at a point the uninterrupted one
        did not) would draw different dropout masks afterwards."""
        gpu = self._on_gpu()
        workers = self.num_workers
        if workers is None:
            per_process = max(1, len(os.sched_getaffinity(0)) // max(1, getattr(self.trainer, "num_devices", 1)))
            workers = min(4, per_process - 1) if gpu else 0
        pin = gpu if self.pin_memory is None else bool(self.pin_memory)
        return {
            "num_workers": workers,
            "pin_memory": pin,
            "persistent_workers": workers > 0,
            "generator": torch.Generator().manual_seed(self.seed),
        }

    def resume_position(self) -> tuple[int, int] | None:
        """(epoch, batches) to skip in the next training epoch, once, after a mid-epoch resume."""
        at, self._resume_at = self._resume_at, None
        return at

    def eval_sampler(self, n: int) -> Sampler[int] | None:
        """Test/predict shards without the padding repeats of DistributedSampler.

        Why: Lightning pads the last test shard with repeated records so all ranks get as many
        batches; a metric that counts samples would count those twice. Each rank gets a
        disjoint shard instead (their union is the test set once); evaluation needs no
        gradient sync, so uneven shards are safe. Validation keeps Lightning's default."""
        trainer = self.trainer
        if trainer is None or trainer.world_size <= 1 or trainer.state.fn not in ("test", "predict"):
            return None
        from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

        return UnrepeatedDistributedSampler(
            range(n), num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
        )

    def loader(self, items: Sequence[Any], collate: Any, train: bool) -> DataLoader:
        size = self.per_device_batch_size(self.batch_size if train else self.eval_batch_size)
        if train:
            batches = ResumableBatchSampler(
                EpochRandomSampler(items, self.seed), size, drop_last=False, resume_at=self.resume_position()
            )
            return DataLoader(ListDataset(items), batch_sampler=batches, collate_fn=collate, **self.loader_options())
        return DataLoader(
            ListDataset(items),
            batch_size=size,
            sampler=self.eval_sampler(len(items)),
            collate_fn=collate,
            **self.loader_options(),
        )

    # --- mid-epoch resume: the data position travels in the checkpoint --------------------
    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = self.trainer
        if trainer is not None and trainer.training and not trainer.sanity_checking:
            epoch, done = self.train_position
            self.train_position = (trainer.current_epoch, done + 1 if epoch == trainer.current_epoch else 1)
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"train_position": list(self.train_position)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        position = state_dict.get("train_position")
        if position:
            self.train_position = (int(position[0]), int(position[1]))
            self._resume_at = self.train_position
