"""Run train.py as a subprocess for DDP / resume / W&B tests.

Why: Lightning's DDP launcher re-runs the current command for rank 1; started inside pytest it
would re-run pytest. A subprocess of train.py with a free port is a real multi-process job.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FEEDBACK_NLP_", "LOCAL_RANK", "RANK", "WORLD_SIZE", "MASTER_", "PL_"))
    }
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "WANDB_MODE": "offline",
            "WANDB_SILENT": "true",
            "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(free_port()),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def train_cmd(config: str, overrides: Sequence[str]) -> list[str]:
    return [sys.executable, str(REPO / "train.py"), "--config", str(REPO / config), *overrides]


def run_train(config: str, overrides: Sequence[str], timeout: int = 400, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        train_cmd(config, overrides), cwd=REPO, env=job_env(**env), capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise AssertionError(f"train.py failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def only_run_dir(root: Path, experiment: str) -> Path:
    dirs = [p for p in (root / experiment).iterdir() if p.is_dir()]
    assert len(dirs) == 1, f"expected exactly one run dir under {root / experiment}, got {dirs}"
    return dirs[0]


def metrics(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "metrics.json").read_text())
