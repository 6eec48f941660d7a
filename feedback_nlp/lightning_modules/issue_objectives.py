"""What the multi-level issue model trains on (per-task loss weights) and is selected by (a
weighted mean of per-level dev metrics), checked when the module is built.

Why (issue 26): the loss alone picked checkpoints whose granular level had collapsed to a few
generic strings, since a collapsed decoder still fits the frequent tokens well; the task's own
metric per level does not hide that. The score is one number so that ModelCheckpoint and
EarlyStopping (which watch one key) can use it: `val/selection_score` =
sum_l w_l * val/<l>/<metric> / sum_l w_l, default the mean of coarse and granular SimCSE F1.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from feedback_nlp.core.config import ConfigError
from feedback_nlp.core.vocabulary import AUX_TASKS, ISSUE_LEVELS

SELECTION_METRICS = ("simcse_f1", "simcse_precision", "simcse_recall", "rouge1", "rouge2")
DEFAULT_SELECTION_WEIGHTS = {lvl: 1.0 for lvl in ISSUE_LEVELS}


def check_selection(metric: str, weights: Mapping[str, float] | None) -> tuple[str, dict[str, float]]:
    """(metric, level -> weight) or ConfigError naming the `model.selection_*` key."""
    if metric not in SELECTION_METRICS:
        raise ConfigError(f"model.selection_metric must be one of {SELECTION_METRICS}, got {metric!r}")
    w = dict(DEFAULT_SELECTION_WEIGHTS if weights is None else weights)
    unknown = set(w) - set(ISSUE_LEVELS)
    if unknown:
        raise ConfigError(f"model.selection_weights: unknown level(s) {sorted(unknown)}; levels: {list(ISSUE_LEVELS)}")
    if any(float(v) < 0 for v in w.values()) or not any(float(v) > 0 for v in w.values()):
        raise ConfigError(f"model.selection_weights must be >= 0 with one > 0, got {w}")
    return metric, {k: float(v) for k, v in w.items() if float(v) > 0}


def selection_score(values: Mapping[str, Mapping[str, float]], metric: str, weights: Mapping[str, float]) -> float:
    """Weighted mean of `values[level][metric]` over the weighted levels."""
    total = sum(weights.values())
    return sum(w * float(values[lvl][metric]) for lvl, w in weights.items()) / total


def check_loss_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """task -> training-loss weight (tasks not named weigh 1); ConfigError naming the key."""
    out = {str(k): float(v) for k, v in dict(weights or {}).items()}
    known = (*ISSUE_LEVELS, *AUX_TASKS)
    unknown = set(out) - set(known)
    if unknown:
        raise ConfigError(f"model.task_loss_weights: unknown task(s) {sorted(unknown)}; tasks: {list(known)}")
    if any(v < 0 for v in out.values()):
        raise ConfigError(f"model.task_loss_weights must be >= 0, got {out}")
    return {k: v for k, v in out.items() if v != 1.0}


def row_weights(weights: Mapping[str, float], tasks: Sequence[str], device: torch.device) -> torch.Tensor:
    """One loss weight per batch row, from the row's task."""
    return torch.tensor([weights.get(t, 1.0) for t in tasks], device=device)
