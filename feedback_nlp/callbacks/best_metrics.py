"""Best-so-far values of the monitored and headline metrics, with the epoch they came from.

Why: a W&B run's summary otherwise shows the last value of every metric, and the runs table
then compares whatever the final epoch happened to give. Here the metric the checkpoint
monitors and the papers' headline metrics (000: ROUGE / SimCSE F1 per level; 001: dev recall
and precision at the threshold; 002: accuracy, main-question accuracy) carry their best value
(max or min as fits) and its epoch and step, in the W&B summary (`best/<metric>`,
`best/<metric>/epoch`) and in `best_metrics.json` in the run dir, for users without W&B and
for `compare_runs` / `sweep`. `define_metric` also gives W&B's own min/max summaries and makes
`epoch` a metric every chart can use as its x-axis.
"""

from __future__ import annotations

import fnmatch
import math
from pathlib import Path
from typing import Any, TypedDict

from lightning.pytorch.callbacks import Callback

from feedback_nlp.core.io import atomic_write_json

FILENAME = "best_metrics.json"
# glob -> max|min; the first pattern a metric matches decides (the monitored metric is added first)
HEADLINE: dict[str, str] = {
    "val/*loss": "min",
    "val/acc": "max",
    "val/main_question/*": "max",
    "val/*/rouge*": "max",
    "val/*/simcse_*": "max",
    "val/recall_at_threshold": "max",
    "val/precision_at_threshold": "max",
}


class Best(TypedDict):
    """One metric's best value so far and where it was reached (a row of best_metrics.json)."""

    value: float
    epoch: int
    step: int
    mode: str  # min | max


class BestMetrics(Callback):
    """The best value of each headline metric so far, with its epoch and step, in run_dir/best_metrics.json.

    Args:
        run_dir: The run directory (set by the train command, not in configs).
        metrics: Metric name pattern -> min or max (null: the headline metrics of every task).
        filename: Name of the best-metrics file in the run directory.
    """

    def __init__(self, run_dir: str, metrics: dict[str, str] | None = None, filename: str = FILENAME):
        self.path = Path(run_dir) / filename
        self.patterns: dict[str, str] = dict(HEADLINE if metrics is None else metrics)
        for pattern, mode in self.patterns.items():
            if mode not in ("min", "max"):
                raise ValueError(f"callbacks.best_metrics.metrics.{pattern}: mode must be min or max, got {mode!r}")
        self.best: dict[str, Best] = {}
        self._defined: set[str] = set()
        self._trainer: Any = None

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # a resumed run keeps its best so far
        self.best = dict(state_dict.get("best", {}))

    def _modes(self, trainer: Any) -> dict[str, str]:
        ckpt = trainer.checkpoint_callback
        monitored = {ckpt.monitor: ckpt.mode} if ckpt is not None and getattr(ckpt, "monitor", None) else {}
        return {**monitored, **{k: v for k, v in self.patterns.items() if k not in monitored}}

    def mode_of(self, trainer: Any, key: str) -> str | None:
        return next((mode for pattern, mode in self._modes(trainer).items() if fnmatch.fnmatchcase(key, pattern)), None)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        from feedback_nlp.training.logging_setup import wandb_run

        self._trainer = trainer
        run = wandb_run(trainer)
        if run is None:
            return
        run.define_metric("epoch", hidden=False)  # an x-axis for every chart, next to trainer/global_step
        self._define(run, [p for p in self._modes(trainer) if not any(c in p for c in "*?[")])

    def _define(self, run: Any, keys: list[str]) -> None:
        """W&B min/max summaries; wandb takes exact names (or `prefix*` only), so globs are
        resolved against the metrics as they appear."""
        for key in keys:
            if key not in self._defined and (mode := self.mode_of(self._trainer, key)) is not None:
                run.define_metric(key, summary=mode)
                self._defined.add(key)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        changed: dict[str, Best] = {}
        for key, value in trainer.callback_metrics.items():
            mode = self.mode_of(trainer, key)
            if mode is None or getattr(value, "numel", lambda: 1)() != 1:
                continue
            v = float(value)
            if math.isnan(v):
                continue
            old = self.best.get(key)
            if old is None or (v < old["value"] if mode == "min" else v > old["value"]):
                self.best[key] = changed[key] = {
                    "value": v,
                    "epoch": int(trainer.current_epoch),
                    "step": int(trainer.global_step),
                    "mode": mode,
                }
        if not trainer.is_global_zero:
            return
        from feedback_nlp.training.logging_setup import wandb_run

        run = wandb_run(trainer)
        if run is not None:
            self._trainer = trainer
            self._define(run, [k for k in trainer.callback_metrics if self.mode_of(trainer, k)])
        if not changed:
            return
        atomic_write_json(self.path, self.best)
        if run is not None:
            for key, row in changed.items():
                run.summary[f"best/{key}"] = row["value"]
                run.summary[f"best/{key}/epoch"] = row["epoch"]
                run.summary[f"best/{key}/step"] = row["step"]
