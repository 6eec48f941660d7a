"""One W&B run for an operating job (monitor, compare): tables, images and a summary.

Why its own helper: operations/ may not import training/ (peers in the layers), and these
jobs have no Trainer and no config tree -- only their arguments. The job writes its files
first; this mirrors them to W&B (WANDB_MODE=offline works, `wandb sync` later).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def log_job(
    project: str,
    job_type: str,
    out_dir: Path,
    config: Mapping[str, Any],
    tables: Mapping[str, tuple[Sequence[str], Sequence[Sequence[Any]]]] = {},
    images: Mapping[str, Path] = {},
    summary: Mapping[str, Any] = {},
) -> str:
    """Log one finished job; returns the W&B run id."""
    import wandb

    run = wandb.init(
        project=project, job_type=job_type, dir=str(out_dir), config=dict(config), reinit="finish_previous"
    )
    try:
        payload: dict[str, Any] = {k: wandb.Image(str(p)) for k, p in images.items()}
        payload.update(
            {k: wandb.Table(columns=list(c), data=[list(r) for r in rows]) for k, (c, rows) in tables.items()}
        )
        if payload:
            run.log(payload)
        for key, value in summary.items():
            run.summary[key] = value
        return str(run.id)
    finally:
        run.finish()
