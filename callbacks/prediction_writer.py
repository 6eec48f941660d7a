"""Write `predictions.jsonl` from `predict_step` rows, safely under DDP.

Why: each rank predicts its shard; rank 0 alone merges the shards into one file, atomically,
so a DDP job never leaves several or half-written prediction files.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from lightning.pytorch.callbacks import BasePredictionWriter

from feedback_nlp.common.io import atomic_write_text


class PredictionWriter(BasePredictionWriter):
    """Collects the list-of-dict rows each predict_step returns into run_dir/predictions.jsonl."""

    def __init__(self, run_dir: str, filename: str = "predictions.jsonl"):
        super().__init__(write_interval="epoch")
        self.path = Path(run_dir) / filename

    def write_on_epoch_end(self, trainer: Any, pl_module: Any, predictions: Sequence[Any],
                           batch_indices: Sequence[Any] | None) -> None:
        rows = [row for batch in predictions for row in (batch or [])]
        shard = self.path.with_name(f".{self.path.name}.rank{trainer.global_rank}")
        atomic_write_text(shard, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))
        trainer.strategy.barrier("prediction_shards")
        if trainer.is_global_zero:
            parts = [self.path.with_name(f".{self.path.name}.rank{r}") for r in range(trainer.world_size)]
            atomic_write_text(self.path, "".join(p.read_text(encoding="utf-8") for p in parts))
            for p in parts:
                p.unlink(missing_ok=True)
