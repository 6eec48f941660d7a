"""Write `predictions.jsonl` from `predict_step` rows, safely under DDP and across nodes.

Why: each rank predicts its shard of the records. The shards travel to global rank 0 through the
process group (`all_gather_object`), never through files, because ranks on different nodes need
not share a file system. A distributed sampler pads the last shard with repeats so every rank
gets as many batches; those repeats are dropped by record id, and rows are ordered by record id,
so the file is the same whatever the world size. Rank 0 alone writes it, atomically.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import BasePredictionWriter

from feedback_nlp.core.io import atomic_write_text


def record_order(record_id: Any) -> tuple[int, int, str]:
    """Numeric ids in numeric order, then the rest as text: "2" before "10"."""
    text = str(record_id)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def merge_rows(shards: Iterable[Sequence[dict]]) -> list[dict]:
    """One row per record id (the first seen), ordered by record id."""
    seen: dict[str, dict] = {}
    for shard in shards:
        for row in shard:
            seen.setdefault(str(row.get("id")), row)
    return [seen[k] for k in sorted(seen, key=record_order)]


def gather_rows(trainer: Any, rows: list[dict]) -> list[list[dict]]:
    """Every rank's rows on every rank (a list per rank); just `[rows]` without a process group."""
    import torch.distributed as dist

    if trainer.world_size <= 1 or not (dist.is_available() and dist.is_initialized()):
        return [rows]
    shards: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(shards, rows)
    return [s or [] for s in shards]


class PredictionWriter(BasePredictionWriter):
    """Collects the list-of-dict rows each predict_step returns into run_dir/predictions.jsonl.

    Args:
        run_dir: The run directory (set by the train command, not in configs).
        filename: Name of the predictions file in the run directory.
    """

    def __init__(self, run_dir: str, filename: str = "predictions.jsonl"):
        super().__init__(write_interval="epoch")
        self.path = Path(run_dir) / filename

    def write_on_epoch_end(
        self, trainer: Any, pl_module: Any, predictions: Sequence[Any], batch_indices: Sequence[Any] | None
    ) -> None:
        rows = [row for batch in predictions for row in (batch or [])]
        shards = gather_rows(trainer, rows)
        if trainer.is_global_zero:
            merged = merge_rows(shards)
            atomic_write_text(self.path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in merged))
