"""Loggers from the `logger` config section: CSV by default, W&B when enabled.

Why: CSV needs no account and always works offline; W&B is what users compare runs in. The W&B
run id is stored in the run directory so a resumed job continues the same W&B run instead of
starting a duplicate (a known weak spot of lightning-hydra-template).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from feedback_nlp.common.io import atomic_write_text

WANDB_ID_FILE = "wandb_run_id.txt"


def wandb_run_id(run_dir: Path) -> str:
    """The W&B run id of this run directory, created once and reused on resume."""
    path = Path(run_dir) / WANDB_ID_FILE
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    from feedback_nlp.common.run_dir import new_wandb_run_id
    run_id = new_wandb_run_id()
    atomic_write_text(path, run_id + "\n")
    return run_id


def build_loggers(cfg: DictConfig, run_dir: Path, full_config: DictConfig, is_rank_zero: bool) -> list[Logger]:
    loggers: list[Logger] = []
    csv = cfg.get("csv") or {}
    if csv.get("enabled", True):
        loggers.append(CSVLogger(save_dir=str(run_dir), name="csv", version=""))
    wb = cfg.get("wandb") or {}
    if wb.get("enabled", False):
        opts: dict[str, Any] = OmegaConf.to_container(wb, resolve=True)  # type: ignore[assignment]
        opts.pop("enabled", None)
        run_id = wandb_run_id(run_dir) if is_rank_zero else None
        logger = WandbLogger(save_dir=str(run_dir), id=run_id, resume="allow",
                             config=OmegaConf.to_container(full_config, resolve=True), **opts)
        loggers.append(logger)
    return loggers
