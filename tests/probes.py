"""Callbacks that tests inject into a train.py subprocess through the config
(`+callbacks.<name>.class_path=tests.probes.<Class>`), to see inside a real job.

Why: a resumed job that silently started fresh can reach the same numbers as one that loaded
its checkpoint (fixed seeds); only the state at the first step tells them apart.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback


def optimizer_fingerprint(optimizer_state: dict) -> dict[str, float]:
    """Sum of every tensor per optimizer state key (exp_avg, exp_avg_sq, step) over parameters."""
    out: dict[str, float] = {}
    for per_param in optimizer_state.get("state", {}).values():
        for key, value in per_param.items():
            out[key] = out.get(key, 0.0) + float(value.double().sum())
    return out


class StartProbe(Callback):
    """Writes, when training starts (after any checkpoint is restored), what each rank starts from."""

    def __init__(self, path: str):
        self.path = path

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        state = trainer.optimizers[0].state_dict()
        row = {
            "global_step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "world_size": trainer.world_size,
            "rank": trainer.global_rank,
            "optimizer": optimizer_fingerprint(state),
            "cwd": os.getcwd(),
            "run_dir": str(trainer.default_root_dir),
        }
        self._write(trainer, "start", row)

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        self._predicted: list[str] = []

    def on_predict_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._predicted += [str(row["id"]) for row in outputs or []]

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        self._write(
            trainer, "predict", {"rank": trainer.global_rank, "world_size": trainer.world_size, "ids": self._predicted}
        )

    def _write(self, trainer: Any, what: str, row: dict) -> None:
        path = Path(f"{self.path}.{what}.rank{trainer.global_rank}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(row))


class PauseAtStep(Callback):
    """Stops making progress after `step` optimizer steps (and says so in `<marker>.rank<r>`), so a
    test can signal or kill the job at a known point in the middle of an epoch."""

    def __init__(self, step: int, marker: str):
        self.step, self.marker = step, marker

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            Path(f"{self.marker}.rank{trainer.global_rank}").write_text(str(trainer.global_step))
            while True:
                time.sleep(1)
