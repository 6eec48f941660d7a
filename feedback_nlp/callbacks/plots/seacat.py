"""002 §2.4 figure: sentence-attention heatmap of example transcripts, with the predicted
(rule 2) and the annotated main question marked.

Why: SeaCat's main-question tagging is read off the attention weights; seeing where the weight
sits relative to the annotated question shows why a tag is right or wrong (002 Fig. 4).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from feedback_nlp.callbacks.plots.figures import new_figure


def heatmap_data(
    examples: Sequence[Mapping[str, Any]], max_transcripts: int = 6
) -> tuple[list[str], np.ndarray, list[int | None], list[list[int]]]:
    """(transcript ids, weights [T x S] NaN-padded, predicted index per row, annotated indices per row)
    from per-sentence example rows (transcript, sentence, weight, rule2, annotated)."""
    ids: list[str] = []
    for row in examples:
        if row["transcript"] not in ids:
            ids.append(row["transcript"])
    ids = ids[:max_transcripts]
    width = max((int(r["sentence"]) + 1 for r in examples if r["transcript"] in ids), default=1)
    grid = np.full((len(ids), width), np.nan)
    predicted: list[int | None] = [None] * len(ids)
    annotated: list[list[int]] = [[] for _ in ids]
    for r in examples:
        if r["transcript"] not in ids:
            continue
        i, j = ids.index(r["transcript"]), int(r["sentence"])
        grid[i, j] = float(r["weight"])
        if r.get("rule2"):
            predicted[i] = j
        if r.get("annotated"):
            annotated[i].append(j)
    return ids, grid, predicted, annotated


def heatmap_figure(examples: Sequence[Mapping[str, Any]], max_transcripts: int = 6) -> Any:
    from matplotlib.patches import Rectangle

    ids, grid, predicted, annotated = heatmap_data(examples, max_transcripts)
    fig, ax = new_figure(max(5.0, 0.35 * grid.shape[1] + 2), 1.0 + 0.5 * len(ids))
    im = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="viridis", vmin=0.0)
    for i, (p, anns) in enumerate(zip(predicted, annotated)):
        for j in anns:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
        if p is not None:
            ax.plot([p], [i], marker="^", color="white", markeredgecolor="black", markersize=9)
    ax.set_yticks(range(len(ids)), [str(x)[:18] for x in ids], fontsize=7)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("sentence")
    ax.set_title("SeaCat sentence attention (002 §2.4): ▲ predicted main question (rule 2), □ annotated", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.03, label="attention weight")
    return fig
