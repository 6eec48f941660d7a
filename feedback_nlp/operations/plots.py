"""Figures of the operating jobs: KPIs over time per language, score histograms against the reference.

Why matplotlib directly (Agg, no display) and not callbacks/plots: operations/ sits below the
Trainer callbacks in the layers (tests/test_architecture.py) and needs none of their W&B-trainer
plumbing; the PNG is written to a temp file and renamed, as every other file of the project.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from feedback_nlp.core.io import atomic_write_bytes


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def kpi_figure(rows: Sequence[Mapping[str, Any]], version: str, window: str, metrics: Sequence[str]) -> Any:
    """One panel per metric, one line per language (ALL dashed black), windows on the x axis."""
    plt = _pyplot()
    mine = [r for r in rows if r["model_version"] == version and r["window"] == window]
    starts = sorted({r["start"] for r in mine})
    languages = sorted({r["language"] for r in mine}, key=lambda x: (x != "all", x))
    cols = min(3, len(metrics))
    rows_n = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.2 * rows_n), squeeze=False)
    for ax in axes.flat[len(metrics) :]:
        ax.set_visible(False)
    for ax, metric in zip(axes.flat, metrics):
        for lang in languages:
            by_start = {r["start"]: r.get(metric) for r in mine if r["language"] == lang}
            values = [by_start.get(s) for s in starts]
            ys = [np.nan if v is None else float(v) for v in values]
            style = {"color": "black", "linestyle": "--"} if lang == "all" else {}
            ax.plot(range(len(starts)), ys, marker="o", label=lang, **style)
        ax.set_title(metric)
        ax.set_xticks(range(len(starts)))
        ax.set_xticklabels(starts, rotation=45, ha="right", fontsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"model {version}: KPIs per {window}")
    return fig


def score_figure(scores: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], version: str) -> Any:
    """Per language: the logged scores' histogram (bars) over the reference sample's (step line)."""
    plt = _pyplot()
    languages = sorted(scores)
    fig, axes = plt.subplots(1, len(languages), figsize=(3.4 * len(languages), 3.0), squeeze=False)
    bins = np.linspace(0, 1, 21)
    for ax, lang in zip(axes[0], languages):
        ax.hist(scores[lang], bins=bins, density=True, alpha=0.6, label=f"served (n={len(scores[lang])})")
        ref = reference.get(lang)
        if ref is not None and ref.size:
            ax.hist(
                ref,
                bins=bins,
                density=True,
                histtype="step",
                linewidth=1.5,
                color="black",
                label=f"tested (n={ref.size})",
            )
        ax.set_title(lang)
        ax.set_xlabel("score")
        ax.legend(fontsize=7)
    fig.suptitle(f"model {version}: score distribution vs the export's tested scores")
    return fig
