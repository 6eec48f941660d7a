"""What every task LightningModule shares: its task name in checkpoints and the optimizer.

Why: resume and export must refuse a checkpoint from another task, so the task name travels
in every checkpoint; and the optimizer/scheduler settings are config (lr, weight decay,
warmup), not hard-coded per task. Kept to one shallow base class on purpose.
"""
from __future__ import annotations

import random
from typing import Any

import lightning as L
import torch


class TaskModule(L.LightningModule):
    task: str = ""

    def __init__(self, lr: float = 3e-5, weight_decay: float = 0.0, warmup_steps: int = 0,
                 optimizer: str = "adamw"):
        super().__init__()
        self.lr, self.weight_decay, self.warmup_steps, self.optimizer_name = lr, weight_decay, warmup_steps, optimizer

    def on_fit_start(self) -> None:
        """Train mode for every submodule before the first step.

        Why: `from_pretrained` returns a model in eval mode and Lightning keeps module modes as it
        finds them, so a pretrained encoder would be fine-tuned with its dropout off. A module that
        must stay in eval mode while training (a frozen encoder) says so in its own `train()`.
        """
        self.train()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["task"] = self.task
        # RNG state, so a resumed job draws the same dropout masks as an uninterrupted one
        checkpoint["rng_torch"] = torch.get_rng_state()
        checkpoint["rng_python"] = random.getstate()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.trainer_attached() and self.trainer.state.fn == "fit":
            if "rng_torch" in checkpoint:
                torch.set_rng_state(checkpoint["rng_torch"])
            if "rng_python" in checkpoint:
                random.setstate(_as_tuple(checkpoint["rng_python"]))

    def trainer_attached(self) -> bool:
        return self._trainer is not None

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        if self.optimizer_name == "adam":
            opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        elif self.optimizer_name == "adamw":
            opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        else:
            raise ValueError(f"model.optimizer must be adam or adamw, got {self.optimizer_name!r}")
        if not self.warmup_steps:
            return opt
        warmup = self.warmup_steps
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x
