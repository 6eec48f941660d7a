"""Sync an offline W&B run and draw its input edges: `wandb sync`, then mark its datasets as used.

    python -m feedback_nlp.scripts.sync_lineage outputs/product_safety/<run id> [--entity E] [--project P]

Why: an offline run cannot `use_artifact` (wandb refuses it without a server), so offline the
train/dev/test files are logged by the run as dataset artifacts and listed in its config as
`lineage/inputs` (feedback_nlp/training/lineage.py). Once a server is reachable this command uploads the
offline run (`wandb sync`, the documented path) and then declares each listed artifact as an
input of that run through the public API (`wandb.Api().run(...).use_artifact`), so the lineage
graph reads data -> run -> model exactly as for a run that was online from the start.
Online it needs a login (`wandb login` or WANDB_API_KEY); it never runs in the offline tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from feedback_nlp.training.logging_setup import WANDB_ID_FILE

DEFAULT_PROJECT = "feedback-nlp"  # configs/logger/wandb.yaml


def run_wandb_settings(run_dir: Path) -> dict[str, Any]:
    """The `logger.wandb` section the run was started with (its config.yaml), so the sync goes to
    the project and entity the run named, not to a default."""
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return ((cfg.get("logger") or {}).get("wandb") or {}) if isinstance(cfg, dict) else {}


def offline_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def declare_inputs(api: Any, path: str) -> list[str]:  # pragma: no cover - needs a W&B server (see the test)
    """Mark every `lineage/inputs` artifact of run `entity/project/id` as its input; returns the refs."""
    run = api.run(path)
    entity, project = run.entity, run.project
    refs = list(run.config.get("lineage/inputs") or [])
    for ref in refs:
        run.use_artifact(api.artifact(f"{entity}/{project}/{ref}", type="dataset"))
    return refs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="a run directory with wandb/offline-run-* inside")
    p.add_argument(
        "--entity", default=None, help="W&B entity (default: the run's logger.wandb.entity, else the login's)"
    )
    p.add_argument("--project", default=None, help="W&B project (default: the run's logger.wandb.project)")
    a = p.parse_args(argv)
    runs = offline_runs(a.run_dir)
    id_file = a.run_dir / WANDB_ID_FILE
    if not runs or not id_file.is_file():
        print(f"error: {a.run_dir}: no offline W&B run (wandb/offline-run-*) and {WANDB_ID_FILE}", file=sys.stderr)
        return 2
    wb = run_wandb_settings(a.run_dir)
    project, entity = a.project or wb.get("project") or DEFAULT_PROJECT, a.entity or wb.get("entity")
    import wandb

    if not wandb.login(prompt=False, verify=False):
        print("error: no W&B login: run `wandb login` or set WANDB_API_KEY, then sync", file=sys.stderr)
        return 2
    return sync_and_declare(a.run_dir, runs, project, entity, id_file.read_text().strip())


def sync_and_declare(
    run_dir: Path, runs: list[Path], project: str, entity: str | None, run_id: str
) -> int:  # pragma: no cover - needs a W&B server: tests/test_wandb_setup.py runs it where WANDB_API_KEY is set
    import wandb

    sync = [sys.executable, "-m", "wandb", "sync", "--project", project]
    if entity:
        sync += ["--entity", entity]
    result = subprocess.run([*sync, *map(str, runs)], check=False)
    if result.returncode:
        print(f"error: wandb sync exited with {result.returncode}", file=sys.stderr)
        return result.returncode
    api = wandb.Api()
    refs = declare_inputs(api, f"{entity or api.default_entity}/{project}/{run_id}")
    print(f"{run_dir}: synced; inputs declared: {', '.join(refs) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
