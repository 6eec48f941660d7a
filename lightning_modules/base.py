"""What every task LightningModule shares: its task name in checkpoints and the optimizer.

Why: resume and export must refuse a checkpoint from another task, so the task name travels
in every checkpoint; and the optimizer/scheduler settings are config (lr, weight decay,
warmup), not hard-coded per task. Kept to one shallow base class on purpose.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import lightning as L
import torch


class TaskContractError(ValueError):
    """A task module that does not declare what it reads, how it tokenizes or how it exports."""


@dataclass(frozen=True)
class TaskContract:
    """What a task module states about itself, checked when the run starts (not discovered later).

    Why: finding the tokenizer with getattr and the exporter with hasattr let a module that lacked
    one (the MCML baseline) train to the end and silently export nothing.
    """

    task: str                                       # the serving registry's name for its exports
    record_kind: str                                # what predict.py / the server decode for it
    tokenizer: Any                                  # handed to the DataModule's `connect`
    exporter: Callable[[Path], dict[str, Any]]      # writes the serving folder's files


class TaskModule(L.LightningModule):
    task: str = ""
    record_kind: str = ""      # claim | feedback | transcript | question (serving/records.py)

    def contract(self) -> TaskContract:
        """The declared contract, or TaskContractError naming what is missing."""
        from feedback_nlp.serving.records import RECORD_KINDS
        from feedback_nlp.serving.registry import known_tasks
        name = type(self).__name__
        if self.task not in known_tasks():
            raise TaskContractError(f"{name}.task = {self.task!r} is not a served task ({', '.join(known_tasks())})")
        if self.record_kind not in RECORD_KINDS:
            raise TaskContractError(f"{name}.record_kind = {self.record_kind!r}; expected one of "
                                    f"{', '.join(RECORD_KINDS)}")
        tokenizer = self.__dict__.get("tokenizer", getattr(self, "tokenizer", None))
        if tokenizer is None:
            raise TaskContractError(f"{name} declares no tokenizer (self.tokenizer) for its DataModule")
        if type(self).export_for_serving is TaskModule.export_for_serving:
            raise TaskContractError(f"{name} declares no exporter (export_for_serving)")
        return TaskContract(self.task, self.record_kind, tokenizer, self.export_for_serving)

    def export_for_serving(self, out_dir: Path) -> dict[str, Any]:
        """Write the serving folder's weights and settings; return the manifest fields."""
        raise NotImplementedError

    def __init__(self, lr: float = 3e-5, weight_decay: float = 0.0, warmup_steps: int = 0,
                 optimizer: str = "adamw", lr_schedule: str = "constant", fused_optimizer: bool = False):
        super().__init__()
        self.lr, self.weight_decay, self.warmup_steps, self.optimizer_name = lr, weight_decay, warmup_steps, optimizer
        self.lr_schedule, self.fused_optimizer = lr_schedule, fused_optimizer

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

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimizer parameter groups; a task overrides this to give new parameters their own lr."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def configure_optimizers(self) -> Any:
        """Adam/AdamW over `param_groups()` with warmup and a `constant` or `linear` (decay to 0
        over training, HF's default) schedule. `fused_optimizer`: torch's fused kernel on CPU/CUDA,
        one pass over all parameters instead of a Python loop per tensor (a large share of a small
        model's CPU step)."""
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(self.optimizer_name)
        if cls is None:
            raise ValueError(f"model.optimizer must be adam or adamw, got {self.optimizer_name!r}")
        if self.lr_schedule not in ("constant", "linear"):
            raise ValueError(f"model.lr_schedule must be constant or linear, got {self.lr_schedule!r}")
        groups = [g for g in self.param_groups() if g["params"]]
        params = [p for g in groups for p in g["params"]]
        fused = self.fused_optimizer and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
        opt = cls(groups, lr=self.lr, weight_decay=self.weight_decay, **({"fused": True} if fused else {}))
        warmup, schedule = self.warmup_steps, self.lr_schedule
        if not warmup and schedule == "constant":
            return opt
        total = max(1, int(self.trainer.estimated_stepping_batches)) if self._trainer is not None else 1

        def factor(step: int) -> float:
            f = min(1.0, (step + 1) / warmup) if warmup else 1.0
            return f * max(0.0, 1.0 - step / total) if schedule == "linear" else f

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x
