"""Shared plumbing of the papers' figures: Agg backend, atomic PNG files, W&B images.

Why: every figure is written to `<run_dir>/plots/<name>.png` for users without W&B, and logged
as a W&B image when the job has a W&B run; the backend is Agg so plotting works on headless
cluster nodes and inside DDP workers.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from feedback_nlp.core.io import atomic_write_bytes, atomic_write_text  # noqa: E402,F401  (text siblings of the PNGs)

PLOT_DIR = "plots"


def new_figure(width: float = 6.0, height: float = 4.0) -> tuple[Any, Any]:
    return plt.subplots(figsize=(width, height), dpi=100)


def save_png(fig: Any, path: Path) -> Path:
    """Render to memory, then write temp + rename: a crash never leaves half a PNG."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def publish(trainer: Any, run_dir: Path, figures: dict[str, Any], prefix: str) -> dict[str, Path]:
    """Save each figure as <run_dir>/plots/<name>.png; log it to W&B as `<prefix>/<name>`."""
    paths = {name: save_png(fig, Path(run_dir) / PLOT_DIR / f"{name}.png") for name, fig in figures.items()}
    log_wandb(trainer, {f"{prefix}/{name}": path for name, path in paths.items()}, images=True)
    return paths


def log_wandb(trainer: Any, items: dict[str, Any], images: bool = False) -> None:
    """`items` as W&B images (paths) or objects (tables), on rank 0 of a job with a W&B run."""
    from feedback_nlp.training.logging_setup import wandb_run

    run = wandb_run(trainer) if trainer is not None else None
    if run is None or not items:
        return
    import wandb

    payload = {k: wandb.Image(str(v)) if images else v for k, v in items.items()}
    payload["trainer/global_step"] = int(getattr(trainer, "global_step", 0))
    run.log(payload)
