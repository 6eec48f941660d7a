"""A W&B run for jobs that have no Lightning Trainer: the universal model, the label-efficiency study.

Why: users compare every experiment in W&B, not only the ones that train. These jobs write
their results (metrics.json, markdown tables, PNG figures) to the run directory first; with
`logger=wandb` the same results, figures and input files then go to one W&B run whose id is
kept in the run directory (as for training jobs), so a re-run of the same dir continues it.
The login check (`logging_setup.check_logger`) is the caller's, before any work, as in train.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from feedback_nlp.core.config import to_dict
from feedback_nlp.training.logging_setup import (
    job_run_id,
    lineage_options,
    wandb_enabled,
    wandb_init_options,
)


def log_job(
    cfg: Any,
    run_dir: Path,
    job_type: str,
    summary: Mapping[str, Any],
    images: Mapping[str, Path] = {},
    tables: Mapping[str, tuple[list[str], list[list[Any]]]] = {},
    data: Mapping[str, Any] | None = None,
) -> str | None:
    """Log one finished job to W&B when `logger.wandb.enabled`; returns the W&B run id (else None).

    `summary`: final values (W&B summary); `images`: key -> PNG path; `tables`: key -> (columns,
    rows); `data`: a data-section-like mapping (path / train_path / dev_path / test_path) whose
    files are logged as dataset artifacts (feedback_nlp/training/lineage.py).
    """
    logger_cfg = cfg.get("logger")
    if not wandb_enabled(logger_cfg):
        return None
    import wandb

    opts = wandb_init_options(logger_cfg)
    opts.pop("log_model", None)  # a WandbLogger option; there are no checkpoints here
    opts["job_type"] = job_type
    config = to_dict(cfg)
    run = wandb.init(dir=str(run_dir), id=job_run_id(run_dir), resume="allow", config=config, **opts)
    try:
        if data and lineage_options(logger_cfg)["log_datasets"]:
            from feedback_nlp.training.lineage import log_datasets

            log_datasets(run, data)
        payload: dict[str, Any] = {key: wandb.Image(str(path)) for key, path in images.items()}
        payload.update({key: wandb.Table(columns=list(cols), data=rows) for key, (cols, rows) in tables.items()})
        if payload:
            run.log(payload)
        for key, value in summary.items():
            run.summary[key] = value
        return run.id
    finally:
        run.finish()
