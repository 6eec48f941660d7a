"""Decide the run directory once per job and share it with every rank.

Why: Lightning's DDP launcher re-executes the script for ranks > 0, and torchrun/SLURM start
all ranks independently; each computing its own timestamp makes several output dirs per job
(a known weak spot of lightning-hydra-template). Rank 0 decides; spawned ranks inherit it
through the environment; under torchrun/SLURM the job id names the dir on every rank.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

ENV_VAR = "FEEDBACK_NLP_RUN_DIR"


def global_rank() -> int:
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def _job_id() -> str | None:
    for var in ("SLURM_JOB_ID", "TORCHELASTIC_RUN_ID"):
        val = os.environ.get(var)
        if val and val != "none":
            return f"job-{val}"
    return None


def resolve_run_dir(output_dir: str | None, experiment: str, root: str = "outputs") -> Path:
    """The run directory for this job (not created here)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    if output_dir:
        path = Path(output_dir)
    else:
        stamp = _job_id() or datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        path = Path(root) / experiment / stamp
        if global_rank() == 0 and not _job_id():
            n, base = 1, path
            while path.exists():
                n += 1
                path = base.with_name(f"{base.name}-{n}")
    os.environ[ENV_VAR] = str(path)  # inherited by ranks Lightning spawns
    return path
