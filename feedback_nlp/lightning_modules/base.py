"""What every task LightningModule shares: its task name in checkpoints and the optimizer.

Why: resume and export must refuse a checkpoint from another task, so the task name travels
in every checkpoint; and the optimizer/scheduler settings are one config section,
`model.optim` (optimizer, lr, weight decay, fused kernel, any `transformers.get_scheduler`
schedule with warmup), not arguments repeated in every task. Kept to one shallow base class.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import lightning as L
import torch

from feedback_nlp.core.config import ConfigError, check_type, closest
from feedback_nlp.core.errors import UserError
from feedback_nlp.core.vocabulary import TASK_RECORD_KINDS

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


@dataclasses.dataclass(frozen=True)
class OptimSettings:
    """The `model.optim` section. `scheduler` is any name `transformers.get_scheduler` takes
    (constant, linear, cosine, polynomial, ...); "constant" with warmup_steps > 0 warms up.

    Defaults here are overridden by each task's own (e.g. product safety: adam, lr 3e-6).

    Args:
        optimizer: adam or adamw.
        lr: Learning rate (peak, after warmup).
        weight_decay: Decoupled weight decay (adamw) or L2 penalty (adam).
        scheduler: transformers schedule name: constant, linear, cosine, polynomial, ...
        warmup_steps: Optimizer steps of linear warmup from 0 to lr.
        fused: Use torch's fused optimizer kernel (one pass over all parameters).
    """

    optimizer: str = "adamw"
    lr: float = 3e-5
    weight_decay: float = 0.0
    scheduler: str = "constant"
    warmup_steps: int = 0
    fused: bool = False

    @classmethod
    def from_section(cls, section: Mapping[str, Any] | None, **task_defaults: Any) -> OptimSettings:
        """Task defaults, then the config section; an unknown key or a wrong type is a ConfigError
        naming `model.optim.<key>`, an unknown optimizer or schedule names the choices."""
        from transformers.trainer_utils import SchedulerType

        base = dataclasses.replace(cls(), **task_defaults)
        fields = [f.name for f in dataclasses.fields(cls)]
        values = {}
        for key, value in dict(section or {}).items():
            if key not in fields:
                hint = closest(key, fields)
                raise ConfigError(
                    f"unknown config key 'model.optim.{key}'"
                    + (f"; did you mean 'model.optim.{hint}'?" if hint else "")
                )
            values[key] = check_type(f"model.optim.{key}", getattr(base, key), value)
        out = dataclasses.replace(base, **values)
        if out.optimizer not in OPTIMIZERS:
            raise ConfigError(f"model.optim.optimizer must be one of {sorted(OPTIMIZERS)}, got {out.optimizer!r}")
        schedules = sorted(s.value for s in SchedulerType)
        if out.scheduler not in schedules:
            raise ConfigError(
                f"model.optim.scheduler must be a transformers schedule ({', '.join(schedules)}), got {out.scheduler!r}"
            )
        return out


class TaskContractError(UserError, ValueError):
    """A task module that does not declare what it reads, how it tokenizes or how it exports."""


@dataclasses.dataclass(frozen=True)
class TaskContract:
    """What a task module states about itself, checked when the run starts (not discovered later).

    Why: finding the tokenizer with getattr and the exporter with hasattr let a module that lacked
    one (the MCML baseline) train to the end and silently export nothing.
    """

    task: str  # the serving registry's name for its exports
    record_kind: str  # what predict.py / the server decode for it
    tokenizer: Any  # handed to the DataModule's `connect`
    exporter: Callable[[Path], dict[str, Any]]  # writes the serving folder's files
    input_limits: Mapping[str, int] = dataclasses.field(default_factory=dict)  # handed to `connect`


class TaskModule(L.LightningModule):
    """The shared part of every task model: its served task name, record kind and optimizer.

    Args:
        optim: Optimizer and learning-rate schedule (section; keys: OptimSettings).
    """

    # config sections that a dataclass documents and checks (feedback-nlp train --list-keys)
    setting_sections: dict[str, type] = {"optim": OptimSettings}
    optim_defaults: dict[str, Any] = {}  # the task's own OptimSettings defaults (config keys win)
    task: str = ""  # a served task (core/vocabulary.TASK_RECORD_KINDS), which decides the record kind

    @property
    def record_kind(self) -> str:
        return TASK_RECORD_KINDS.get(self.task, "")

    def unavailable_metric(self, name: str) -> str | None:
        """Why this model, as configured, never logs metric `name` (None: it may). A checkpoint or
        early-stopping monitor on such a metric is refused before training, not after the first
        validation with Lightning's traceback."""
        return None

    def input_limits(self) -> dict[str, int]:
        """Input sizes the model was built for (e.g. max_length), handed to the DataModule's
        `connect`: one setting in the model section, never restated in the data section."""
        return {}

    def contract(self) -> TaskContract:
        """The declared contract, or TaskContractError naming what is missing."""
        from feedback_nlp.serving.registry import known_tasks

        name = type(self).__name__
        if self.task not in known_tasks():
            raise TaskContractError(f"{name}.task = {self.task!r} is not a served task ({', '.join(known_tasks())})")
        tokenizer = self.__dict__.get("tokenizer", getattr(self, "tokenizer", None))
        if tokenizer is None:
            raise TaskContractError(f"{name} declares no tokenizer (self.tokenizer) for its DataModule")
        if type(self).export_for_serving is TaskModule.export_for_serving:
            raise TaskContractError(f"{name} declares no exporter (export_for_serving)")
        return TaskContract(self.task, self.record_kind, tokenizer, self.export_for_serving, self.input_limits())

    def export_for_serving(self, out_dir: Path) -> dict[str, Any]:
        """Write the serving folder's weights and settings; return the manifest fields."""
        raise NotImplementedError

    def __init__(self, optim: Mapping[str, Any] | None = None, **task_defaults: Any):
        """`optim`: the `model.optim` section; `task_defaults`: the task's own defaults under it."""
        super().__init__()
        self.optim = OptimSettings.from_section(optim, **task_defaults)

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

    def trainer_datamodule(self) -> L.LightningDataModule | None:
        """The trainer's DataModule (Lightning sets `trainer.datamodule` at run time; its Trainer
        class does not declare the attribute, so it is read here, once, with its type)."""
        return getattr(self.trainer, "datamodule", None)

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimizer parameter groups; a task overrides this to give new parameters their own lr."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def configure_optimizers(self) -> Any:
        """Adam/AdamW over `param_groups()`, then transformers' schedule (the same schedules HF
        Trainer users know, warmup included). `fused`: torch's fused kernel on CPU/CUDA, one pass
        over all parameters instead of a Python loop per tensor (a large share of a small model's
        CPU step)."""
        from transformers import get_scheduler

        s = self.optim
        groups = [g for g in self.param_groups() if g["params"]]
        params = [p for g in groups for p in g["params"]]
        fused = s.fused and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
        if fused and self._trainer is not None and self.trainer.gradient_clip_val and _loss_scaler(self.trainer):
            fused = False  # fp16: a fused step unscales inside, too late for clipping (bf16 has no scaler)
        opt = OPTIMIZERS[s.optimizer](
            groups, lr=s.lr, weight_decay=s.weight_decay, **({"fused": True} if fused else {})
        )
        if s.scheduler == "constant" and not s.warmup_steps:
            return opt
        name = "constant_with_warmup" if s.scheduler == "constant" else s.scheduler
        total = max(1, int(self.trainer.estimated_stepping_batches)) if self._trainer is not None else 1
        sched = get_scheduler(name, opt, num_warmup_steps=s.warmup_steps, num_training_steps=total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def configure_gradient_clipping(
        self, optimizer: Any, gradient_clip_val: float | None = None, gradient_clip_algorithm: Any = None
    ) -> None:
        """Clip a fused optimizer's gradients under bf16 mixed precision, which Lightning refuses.

        Lightning forbids clipping under AMP whenever the optimizer unscales gradients itself (the
        fused kernels), because with fp16 they are still scaled at this point. bf16 has no loss
        scaler, so the gradients are true values: refusing made every fused bf16 run (the paper's
        T5 recipe: `fused: true`, `bf16-mixed`, `gradient_clip_val: 1.0`) fail at its first step
        on a GPU.
        """
        handles_unscaling = getattr(optimizer, "_step_supports_amp_scaling", False)
        if gradient_clip_val and handles_unscaling and not _loss_scaler(self.trainer):
            params = [p for group in optimizer.param_groups for p in group["params"]]
            if str(getattr(gradient_clip_algorithm, "value", gradient_clip_algorithm)) == "value":
                torch.nn.utils.clip_grad_value_(params, gradient_clip_val)
            else:
                torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)


def _loss_scaler(trainer: Any) -> Any:
    """The fp16 AMP loss scaler of a trainer, None for bf16 / fp32."""
    return getattr(trainer.precision_plugin, "scaler", None)


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x
