"""001 §4-5 figures: PR curves (dev, test) with the operating point, confusion matrix at the
threshold, recall and Volume(Model) against the threshold, and the per-language KPI table.

Why: the paper chooses its threshold for 95% dev recall and judges it by test recall and by the
volume of traffic forwarded to the PS team; these plots show that trade-off around the chosen
point, which one number per metric cannot. Inputs are plain arrays, so each figure can be
checked against numbers computed by hand.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from feedback_nlp.callbacks.plots.figures import new_figure
from feedback_nlp.metrics.product_safety import precision_recall_at


def pr_points(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) of `probs >= t` for every distinct score t, labeled entries only
    (scikit-learn's exact curve, O(n log n); its closing (recall 0, precision 1) point is dropped)."""
    from sklearn.metrics import precision_recall_curve

    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    p, y = p[y >= 0], y[y >= 0]
    if p.size == 0 or not np.any(y == 1):
        return np.zeros(0), np.zeros(0), np.zeros(0)
    prec, rec, ts = precision_recall_curve(y == 1, p)
    return prec[:-1], rec[:-1], ts


def confusion(probs: Any, labels: Any, threshold: float) -> np.ndarray:
    """[[TN, FP], [FN, TP]] of `probs >= threshold` over labeled entries."""
    pr = precision_recall_at(probs, labels, threshold)
    tn = pr["support"] - pr["tp"] - pr["fp"] - pr["fn"]
    return np.array([[tn, pr["fp"]], [pr["fn"], pr["tp"]]], dtype=np.int64)


def threshold_sweep(
    probs: Any, labels: Any, traffic_probs: Any, grid: Sequence[float] | np.ndarray
) -> dict[str, np.ndarray]:
    """Recall on the labeled set and Volume(Model) on traffic at each threshold of `grid`."""
    traffic = np.asarray(traffic_probs, dtype=np.float64)
    recall = [precision_recall_at(probs, labels, float(t))["recall"] for t in grid]
    return {
        "threshold": np.asarray(grid, dtype=np.float64),
        "recall": np.asarray([np.nan if r is None else r for r in recall], dtype=np.float64),
        "volume_model": np.asarray([int(np.sum(traffic >= t)) for t in grid], dtype=np.int64),
    }


def pr_figure(curves: Mapping[str, tuple[Any, Any, float]]) -> Any:
    """One PR curve per split name -> (probs, labels, threshold), the operating point marked."""
    fig, ax = new_figure()
    for name, (probs, labels, threshold) in curves.items():
        prec, rec, _ = pr_points(probs, labels)
        if not len(prec):
            continue
        (line,) = ax.step(rec, prec, where="post", label=name)
        at = precision_recall_at(probs, labels, threshold)
        if at["recall"] is not None:
            ax.plot(
                [at["recall"]],
                [at["precision"]],
                "o",
                color=line.get_color(),
                markersize=8,
                label=f"{name} @ threshold {threshold:.3f}: R {at['recall']:.2f} P {at['precision']:.2f}",
            )
    ax.set(
        xlabel="recall",
        ylabel="precision",
        xlim=(0, 1.02),
        ylim=(0, 1.02),
        title="Product safety: precision-recall (001 §4.2)",
    )
    ax.legend(loc="lower left", fontsize=8)
    return fig


def confusion_figure(matrix: np.ndarray, threshold: float, labels: Sequence[str]) -> Any:
    fig, ax = new_figure(4.5, 4.0)
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(
            j, i, str(int(v)), ha="center", va="center", fontsize=14, color="white" if v > matrix.max() / 2 else "black"
        )
    ax.set_xticks([0, 1], [f"pred {labels[0]}", f"pred {labels[1]}"], fontsize=8)
    ax.set_yticks([0, 1], [f"true {labels[0]}", f"true {labels[1]}"], fontsize=8)
    ax.set_title(f"Test confusion matrix at threshold {threshold:.3f}")
    return fig


def sweep_figure(sweep: Mapping[str, np.ndarray], threshold: float, target_recall: float | None) -> Any:
    fig, ax = new_figure()
    ax.plot(sweep["threshold"], sweep["recall"], color="tab:blue", label="test recall")
    if target_recall is not None:
        ax.axhline(target_recall, color="tab:blue", linestyle=":", linewidth=1, label=f"target {target_recall:.2f}")
    ax.set(xlabel="threshold", ylabel="recall", ylim=(0, 1.02))
    ax2 = ax.twinx()
    ax2.plot(sweep["threshold"], sweep["volume_model"], color="tab:orange", label="Volume(Model), traffic")
    ax2.set_ylabel("Volume(Model)")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"chosen {threshold:.3f}")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="center right", fontsize=8)
    ax.set_title("Recall and forwarded volume vs threshold (001 §4.2)")
    return fig


LANGUAGE_COLUMNS = ("precision", "recall", "n", "positives", "volume_model", "traffic")


def language_figure(rows: Mapping[str, Mapping[str, Any]]) -> Any:
    """001 §5 dashboard table: one row per language."""

    def cell(v: Any) -> str:
        return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    fig, ax = new_figure(6.5, 0.6 + 0.3 * max(1, len(rows)))
    ax.axis("off")
    data = [[code, *(cell(row.get(c)) for c in LANGUAGE_COLUMNS)] for code, row in rows.items()] or [["-"] * 7]
    table = ax.table(cellText=data, colLabels=["language", *LANGUAGE_COLUMNS], loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    ax.set_title("Per-language KPIs on test (001 §5)", fontsize=10)
    return fig


def figures(
    dev: tuple[Any, Any, float] | None, test: Mapping[str, Any], labels: Sequence[str], target_recall: float | None
) -> dict[str, Any]:
    """All 001 figures from the dev snapshot (probs, labels, threshold) and the test arrays."""
    t = float(test["threshold"])
    lab = np.asarray(test["in_test"], dtype=bool) & np.asarray(test["is_original"], dtype=bool)
    traf = np.asarray(test["in_traffic"], dtype=bool) & np.asarray(test["is_original"], dtype=bool)
    probs, y = np.asarray(test["probs"], dtype=np.float64), np.asarray(test["labels"]).astype(np.int64)
    curves = {"dev": dev} if dev is not None else {}
    curves["test"] = (probs[lab], y[lab], t)
    grid = np.unique(np.r_[np.linspace(0.0, 1.0, 201), t])  # the chosen threshold itself is on the curve
    return {
        "pr_curve": pr_figure(curves),
        "confusion_matrix": confusion_figure(confusion(probs[lab], y[lab], t), t, labels),
        "recall_volume_vs_threshold": sweep_figure(
            threshold_sweep(probs[lab], y[lab], probs[traf], grid), t, target_recall
        ),
        "per_language": language_figure(test.get("rows") or {}),
    }
