"""Callbacks from the `callbacks` config section (name -> {class_path, ...} or null to disable).

Why: checkpointing, early stopping, progress bars and task callbacks are all config, so an
experiment can swap or drop one without code; callbacks that write files get the run dir.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar
from omegaconf import DictConfig

from feedback_nlp.core.config import to_dict
from feedback_nlp.core.instantiate import import_object, instantiate


def build_callbacks(cfg: DictConfig | None, run_dir: Path, progress_bar: bool = True) -> list[Callback]:
    """`progress_bar=False` (trainer.enable_progress_bar=false) drops configured progress bars:
    Lightning refuses a ProgressBar callback on a trainer with the bar disabled."""
    out: list[Callback] = []
    for name, section in (cfg or {}).items():
        if section is None or (isinstance(section, DictConfig) and section.get("enabled", True) is False):
            continue
        settings = to_dict(section)
        settings.pop("enabled", None)
        cls = import_object(settings["class_path"])
        if not progress_bar and isinstance(cls, type) and issubclass(cls, ProgressBar):
            continue
        extra: dict[str, Any] = {}
        if issubclass(cls, ModelCheckpoint) and not settings.get("dirpath"):
            settings["dirpath"] = str(run_dir / "checkpoints")
        if "run_dir" in inspect.signature(cls).parameters:
            extra["run_dir"] = str(run_dir)
        out.append(instantiate(settings, "callbacks." + str(name), **extra))
    return out
