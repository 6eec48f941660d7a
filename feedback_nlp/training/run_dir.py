"""One run identity per job, agreed on by every rank on every node, and the run directory it names.

Why: ranks on different nodes share no file system and no clock, so nothing a rank computes on
its own (a timestamp, "does this dir exist") names the same run everywhere. The identity comes,
in order, from: an explicit `run_id=`; torchrun's `TORCHELASTIC_RUN_ID` (torchrun with c10d
rendezvous and no `--rdzv-id` sets it to "none", which names nothing); SLURM's job id with its
step id and array task id (several `srun` steps of one allocation are separate runs; a requeued
job keeps its job id, so it continues its own run); else rank 0 draws a new id and broadcasts it
over the process group, which is started here for that purpose (Lightning reuses it).
Ranks Lightning itself spawns inherit rank 0's decision through `FEEDBACK_NLP_RUN_DIR`.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from feedback_nlp.core.errors import UserError

ENV_VAR = "FEEDBACK_NLP_RUN_DIR"
FINISHED_MARKER = "metrics.json"  # written last, by global rank 0, when the job completed
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class RunDirError(UserError, ValueError):
    """A run id or run directory that must not be used (bad name, or a finished run without resume)."""


@dataclass(frozen=True)
class RunIdentity:
    run_id: str
    source: str  # config | torchelastic | slurm | generated | inherited


def global_rank(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if env.get(var, "").isdigit():
            return int(env[var])
    return 0


def external_world_size(env: Mapping[str, str] | None = None) -> int:
    """Processes started by an outside launcher (torchrun, srun): each runs this job's main()."""
    env = os.environ if env is None else env
    for var in ("WORLD_SIZE", "SLURM_NTASKS"):
        if env.get(var, "").isdigit():
            return int(env[var])
    return 1


def new_run_id() -> str:
    """A fresh id: sortable by start time, unique by 48 random bits (two jobs may start in one second)."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(6)}"


def new_wandb_run_id() -> str:
    """A W&B run id from the standard library: lowercase letters and digits, as W&B's own ids."""
    return secrets.token_hex(8)


def check_run_id(run_id: str) -> str:
    if not _SAFE_ID.match(run_id) or run_id in (".", ".."):
        raise RunDirError(f"run_id={run_id!r}: use letters, digits, '.', '_' or '-' (it names a directory)")
    return run_id


def identity_from_env(explicit: str | None = None, env: Mapping[str, str] | None = None) -> RunIdentity | None:
    """The identity every rank can read without talking to the others, or None."""
    env = os.environ if env is None else env
    if explicit:
        return RunIdentity(check_run_id(str(explicit)), "config")
    elastic = env.get("TORCHELASTIC_RUN_ID", "")
    if elastic and elastic.lower() != "none":
        return RunIdentity(check_run_id(re.sub(r"[^A-Za-z0-9._-]", "_", elastic)), "torchelastic")
    job = env.get("SLURM_JOB_ID", "")
    if job:
        if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
            job = f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
        step = env.get("SLURM_STEP_ID") or "batch"
        return RunIdentity(check_run_id(f"slurm-{job}-{step}"), "slurm")
    return None


def _process_group_backend(accelerator: str | None) -> str:
    import torch

    gpu = str(accelerator or "auto") in ("gpu", "cuda") or (
        str(accelerator or "auto") == "auto" and torch.cuda.is_available()
    )
    return "nccl" if gpu and torch.cuda.is_available() else "gloo"


def broadcast_run_id(accelerator: str | None = None) -> RunIdentity:
    """Rank 0's new id on every rank of an externally launched job.

    Why the process group is started here rather than by Lightning: the run directory must be
    known before the Trainer (its loggers and checkpoint dirs) exists; Lightning's DDP strategy
    finds the group initialized and uses it as is. The backend is the one Lightning would pick.
    """
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = _process_group_backend(accelerator)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend, init_method="env://")
    box = [new_run_id() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return RunIdentity(str(box[0]), "generated")


def agree_run_identity(explicit: str | None = None, accelerator: str | None = None) -> RunIdentity:
    found = identity_from_env(explicit)
    if found is not None:
        return found
    if external_world_size() > 1 and os.environ.get("MASTER_ADDR") and os.environ.get("RANK", "").isdigit():
        return broadcast_run_id(accelerator)
    return RunIdentity(new_run_id(), "generated")


def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / FINISHED_MARKER).is_file()


def resolve_run_dir(
    output_dir: str | None,
    experiment: str,
    root: str = "outputs",
    *,
    run_id: str | None = None,
    resuming: bool = False,
    accelerator: str | None = None,
) -> tuple[Path, RunIdentity]:
    """The run directory for this job (not created here) and the identity that named it.

    A finished run directory (it has metrics.json) is reused only when `resuming`: rerunning a
    job id or run_id that already completed would otherwise overwrite its checkpoints and mix two
    trainings in one W&B run.
    """
    if os.environ.get(ENV_VAR):  # a rank Lightning spawned: rank 0 decided (and checked) already
        path = Path(os.environ[ENV_VAR])
        return path, RunIdentity(path.name, "inherited")
    if output_dir:
        path = Path(output_dir)
        identity = RunIdentity(path.name, "config")
    else:
        identity = agree_run_identity(run_id, accelerator)
        path = Path(root) / experiment / identity.run_id
    if not resuming and is_finished(path):
        raise RunDirError(
            f"run directory {path} holds a finished run ({FINISHED_MARKER} exists); pass "
            f"resume={path} to continue it, or another run_id/output_dir for a new run"
        )
    os.environ[ENV_VAR] = str(path)  # inherited by ranks Lightning spawns
    return path, identity


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest restart point of a run: Lightning's SLURM requeue checkpoint (`hpc_ckpt_<n>.ckpt`,
    written on SIGUSR1), the step checkpoint (`checkpoints/step.ckpt`) or `checkpoints/last.ckpt`."""
    run_dir = Path(run_dir)
    found = [p for p in run_dir.glob("hpc_ckpt_*.ckpt") if p.is_file()]
    found += [p for p in (run_dir / "checkpoints" / "last.ckpt", run_dir / "checkpoints" / "step.ckpt") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None
