"""`monitor`'s outputs: monitor.json, monitor.md, PNG plots, and the same as W&B tables and images.

Why one writer: the Markdown table a person reads, the JSON a pipeline reads and the W&B table
a dashboard shows are the same rows, so they are built from one list and cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from feedback_nlp.core.io import atomic_write_json, atomic_write_text
from feedback_nlp.operations.monitor import ALL, METRICS, Log

KEYS = ("model_version", "window", "start", "language")


def columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metric columns that have a value in some row (a task without decisions has no volume)."""
    return [m for m in METRICS if any(r.get(m) is not None for r in rows)]


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def markdown(rows: Sequence[Mapping[str, Any]], alerts: Sequence[str], header: Mapping[str, Any]) -> str:
    cols = columns(rows)
    out = ["# Prediction-log monitor", ""]
    out += [f"- {k}: {v}" for k, v in header.items()]
    out += ["", "## Alerts", ""]
    out += [f"- {a}" for a in alerts] or ["none"]
    for version in sorted({r["model_version"] for r in rows}):
        for window in dict.fromkeys(r["window"] for r in rows):
            mine = [r for r in rows if r["model_version"] == version and r["window"] == window]
            if not mine:
                continue
            out += ["", f"## model {version}, per {window}", ""]
            out.append("| " + " | ".join([window, "language", *cols]) + " |")
            out.append("|" + "---|" * (len(cols) + 2))
            out += [
                "| " + " | ".join([r["start"], r["language"], *(_cell(r.get(c)) for c in cols)]) + " |" for r in mine
            ]
    return "\n".join(out) + "\n"


def plots(
    rows: Sequence[Mapping[str, Any]], log: Log, references: Mapping[str, Mapping[str, np.ndarray]], folder: Path
) -> dict[str, Path]:
    """kpis_<version>_<window>.png and scores_<version>.png; name -> path."""
    from feedback_nlp.operations.plots import kpi_figure, save_png, score_figure

    wanted: list[str] = [
        m
        for m in ("precision", "recall", "volume_model", "volume_model_or_fcc", "accuracy", "psi")
        if m in columns(rows)
    ]
    wanted = wanted or ["records"]
    out: dict[str, Path] = {}
    for version in sorted({r["model_version"] for r in rows}):
        for window in dict.fromkeys(r["window"] for r in rows):
            name = f"kpis_{version}_{window}"
            out[name] = save_png(kpi_figure(rows, version, window, wanted), folder / f"{name}.png")
        mask = (log.versions == version) & ~np.isnan(log.score)
        scores = {str(lang): log.score[mask & (log.language == lang)] for lang in np.unique(log.language[mask])}
        if scores:
            name = f"scores_{version}"
            ref = {k: v for k, v in (references.get(version) or {}).items() if k != ALL}
            out[name] = save_png(score_figure(scores, ref, version), folder / f"{name}.png")
    return out


def write(
    out_dir: Path,
    rows: Sequence[Mapping[str, Any]],
    alerts: Sequence[str],
    header: Mapping[str, Any],
    log: Log,
    references: Mapping[str, Mapping[str, np.ndarray]],
) -> dict[str, Path]:
    """Every file of a monitor run; returns the plots (name -> path)."""
    atomic_write_json(out_dir / "monitor.json", {**header, "alerts": list(alerts), "rows": list(rows)})
    atomic_write_text(out_dir / "monitor.md", markdown(rows, alerts, header))
    return plots(rows, log, references, out_dir / "plots")


def wandb_tables(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[list[str], list[list[Any]]]]:
    cols = [*KEYS, *columns(rows)]
    return {"monitor/kpis": (cols, [[r.get(c) for c in cols] for r in rows])}
