"""000 figures: per-level ROUGE and SimCSE P/R/F1 of the test set (Table 2's columns), and the
label-efficiency curve (Table 3: an issue's SimCSE F1 against its share of the training data).

Why: a bar per metric and level shows at a glance where a model loses (coarse vs granular,
lexical ROUGE vs semantic SimCSE); the curve shows how fast an issue's F1 falls with fewer
labels, which Table 3 gives only as numbers.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from feedback_nlp.callbacks.plots.figures import new_figure
from feedback_nlp.core.vocabulary import ISSUE_LEVELS

LEVELS = ISSUE_LEVELS
LEVEL_METRICS = ("rouge1", "rouge2", "rougeL", "simcse_precision", "simcse_recall", "simcse_f1")


def level_table(metrics: Mapping[str, float], stage: str = "test") -> dict[str, dict[str, float]]:
    """level -> metric -> value, for the `<stage>/<level>/<metric>` keys present."""
    return {
        lvl: {m: float(metrics[f"{stage}/{lvl}/{m}"]) for m in LEVEL_METRICS if f"{stage}/{lvl}/{m}" in metrics}
        for lvl in LEVELS
        if any(f"{stage}/{lvl}/{m}" in metrics for m in LEVEL_METRICS)
    }


def level_figure(table: Mapping[str, Mapping[str, float]]) -> Any:
    fig, ax = new_figure(7.0, 3.8)
    names = [m for m in LEVEL_METRICS if any(m in row for row in table.values())]
    x = np.arange(len(names))
    width = 0.8 / max(1, len(table))
    for k, (lvl, row) in enumerate(table.items()):
        vals = [row.get(m, np.nan) for m in names]
        bars = ax.bar(x + k * width, vals, width, label=lvl)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x + width * (len(table) - 1) / 2, names, fontsize=8)
    ax.set(ylim=(0, 1.05), ylabel="score", title="Multi-level issues on test: ROUGE and SimCSE P/R/F1 (000 Table 2)")
    ax.legend(fontsize=8)
    return fig


def label_efficiency_figure(results: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Any:
    """results: issue name -> fraction (as '%g' string) -> {relative_f1, ...} (scripts/label_efficiency.py)."""
    fig, ax = new_figure()
    for name, row in results.items():
        pts = sorted((float(f), v.get("relative_f1")) for f, v in row.items() if v.get("relative_f1") is not None)
        if pts:
            ax.plot([100 * f for f, _ in pts], [v for _, v in pts], marker="o", label=name)
    ax.set(
        xlabel="% of training samples with the issue kept",
        ylabel="SimCSE F1 relative to 100% (%)",
        title="Label efficiency (000 §5.2, Table 3)",
    )
    ax.legend(fontsize=7)
    return fig
