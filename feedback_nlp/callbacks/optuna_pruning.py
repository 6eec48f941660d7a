"""Stop a sweep trial early when Optuna's pruner says it is worse than the trials before it.

Why: an ablation sweep spends most of its time on settings that are visibly bad after one or
two validations; reporting the monitored dev metric to the trial after each validation lets the
pruner (median by default) stop those. Rank 0 owns the trial and decides; the decision is
broadcast so every DDP rank stops at the same validation instead of hanging in a collective.

`feedback_nlp.cli.sweep` sets ACTIVE before each in-process trial; with no active trial (a normal
run, or a DDP rank > 0) the callback only joins the broadcast.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback

ACTIVE: dict[str, Any] = {}  # {"trial": optuna.Trial, "direction": "minimize" | "maximize"}


class OptunaPruning(Callback):
    def __init__(self, monitor: str = "val/loss", mode: str = "min"):
        if mode not in ("min", "max"):
            raise ValueError(f"callbacks.optuna_pruning.mode must be min or max, got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.reported: list[tuple[int, float]] = []

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        prune = False
        trial = ACTIVE.get("trial") if trainer.is_global_zero else None
        value = trainer.callback_metrics.get(self.monitor)
        if trial is not None and value is not None:
            v = float(value)
            # the pruner compares in the study's direction: a min metric in a maximize study is negated
            wants_max = ACTIVE.get("direction", "minimize") == "maximize"
            reported = -v if (self.mode == "min") == wants_max else v
            trial.report(reported, step=int(trainer.global_step))
            self.reported.append((int(trainer.global_step), reported))
            prune = bool(trial.should_prune())
        if trainer.world_size > 1:
            prune = bool(trainer.strategy.broadcast(prune, src=0))
        if prune:
            import optuna

            raise optuna.TrialPruned(f"pruned at step {trainer.global_step}: {self.monitor}={float(value):.4f}")
