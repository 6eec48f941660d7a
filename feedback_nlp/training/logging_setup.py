"""Loggers from the `logger` config section: CSV by default, W&B when enabled.

Why: CSV needs no account and always works offline; W&B is what users compare runs in. The W&B
run id is stored in the run directory so a resumed job continues the same W&B run instead of
starting a duplicate (a known weak spot of lightning-hydra-template). A W&B logger without a
login is found before any model is built (`check_logger`), not when the first metric is logged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from feedback_nlp.core.config import to_dict
from feedback_nlp.core.errors import UserError
from feedback_nlp.core.io import atomic_write_text

WANDB_ID_FILE = "wandb_run_id.txt"
# keys of the `logger.wandb` section read here, not passed to wandb.init
LINEAGE_KEYS = ("log_datasets", "log_export")
OFFLINE_MODES = ("offline", "disabled")


class LoggerSetupError(UserError, ValueError):
    """A logger that cannot work in this environment; the message names the fixes."""


def wandb_run_id(run_dir: Path) -> str:
    """The W&B run id of this run directory, created once and reused on resume."""
    path = Path(run_dir) / WANDB_ID_FILE
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    from feedback_nlp.training.run_dir import new_wandb_run_id

    run_id = new_wandb_run_id()
    atomic_write_text(path, run_id + "\n")
    return run_id


def job_run_id(run_dir: Path) -> str:
    """Under a W&B sweep agent the agent's run id (WANDB_RUN_ID), so the run joins its sweep;
    else the run directory's own id."""
    agent_id = os.environ.get("WANDB_RUN_ID") if os.environ.get("WANDB_SWEEP_ID") else None
    return agent_id or wandb_run_id(run_dir)


def wandb_mode(cfg: DictConfig | dict) -> str:
    """online | offline | disabled, as wandb.init will see it (WANDB_MODE wins, as in wandb)."""
    wb = cfg.get("wandb") or {}
    if os.environ.get("WANDB_DISABLED", "").lower() in ("1", "true", "yes"):
        return "disabled"
    mode = (os.environ.get("WANDB_MODE") or wb.get("mode") or "online").lower()
    return "offline" if mode == "dryrun" else mode


def check_logger(cfg: DictConfig | dict | None) -> None:
    """Fail now, with the three ways out, when W&B is on and online but nobody is logged in.

    Why: without this the job builds the model, maybe waits for a GPU node, and only then stops
    in wandb.init. Uses the public `wandb.login(prompt=False, verify=False)`: it reads
    WANDB_API_KEY, the W&B settings files and ~/.netrc, never prompts and never goes online.
    """
    wb = (cfg or {}).get("wandb") or {}
    if not wb.get("enabled", False) or wandb_mode(cfg or {}) in OFFLINE_MODES:
        return
    import wandb

    if not wandb.login(prompt=False, verify=False):
        raise LoggerSetupError(
            "the W&B logger is on (logger.wandb.enabled=true) but no W&B login was found "
            "(no WANDB_API_KEY, no key in ~/.netrc). Fix one of: add logger=csv (or "
            "logger.wandb.enabled=false) to log to CSV only; set WANDB_MODE=offline to log to the "
            "run directory and `wandb sync` later; or run `wandb login` once."
        )


def wandb_enabled(cfg: DictConfig | dict | None) -> bool:
    return bool(((cfg or {}).get("wandb") or {}).get("enabled", False))


def wandb_init_options(cfg: DictConfig | dict) -> dict[str, Any]:
    """The `logger.wandb` section as wandb.init keywords (lineage switches removed, mode explicit)."""
    wb = cfg.get("wandb") or {}
    opts = to_dict(wb)
    opts.pop("enabled", None)
    for key in LINEAGE_KEYS:
        opts.pop(key, None)
    opts = {k: v for k, v in opts.items() if v is not None or k in ("entity", "group", "name")}
    opts["mode"] = wandb_mode(cfg)  # explicit: wandb caches the environment of its first setup in a process
    return opts


def build_loggers(cfg: DictConfig, run_dir: Path, full_config: DictConfig, is_rank_zero: bool) -> list[Logger]:
    loggers: list[Logger] = []
    csv = cfg.get("csv") or {}
    if csv.get("enabled", True):
        loggers.append(CSVLogger(save_dir=str(run_dir), name="csv", version=""))
    if wandb_enabled(cfg):
        opts = wandb_init_options(cfg)
        run_id = job_run_id(run_dir) if is_rank_zero else None
        logger = WandbLogger(
            save_dir=str(run_dir),
            id=run_id,
            resume="allow",
            config=OmegaConf.to_container(full_config, resolve=True),
            **opts,
        )
        loggers.append(logger)
    return loggers


def wandb_run(trainer: Any) -> Any | None:
    """The live W&B run of this job on rank 0, else None (CSV only, or another rank)."""
    if not getattr(trainer, "is_global_zero", False):
        return None
    for logger in getattr(trainer, "loggers", []):
        if isinstance(logger, WandbLogger):
            return logger.experiment
    return None


def log_table(trainer: Any, key: str, columns: list[str], rows: list[list[Any]]) -> None:
    """A table in this job's W&B run (rank 0; nothing without W&B). The one place task modules
    log tables from, instead of each looping over `self.loggers` for a WandbLogger."""
    run = wandb_run(trainer)
    if run is None or not rows:
        return
    import wandb

    run.log(
        {
            key: wandb.Table(columns=list(columns), data=[list(r) for r in rows]),
            "trainer/global_step": int(getattr(trainer, "global_step", 0)),
        }
    )


def lineage_options(cfg: DictConfig | dict | None) -> dict[str, bool]:
    wb = (cfg or {}).get("wandb") or {}
    return {key: bool(wb.get(key, True)) for key in LINEAGE_KEYS}
