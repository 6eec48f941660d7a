"""002 Table 1 figures: Top-k accuracy against k, and against the repository size.

    python -m feedback_nlp.callbacks.plots.universal_model RUN_DIR   # metrics.json and/or scaling.json

Why: the universal model's case is that more neighbours and a bigger repository of past
questions keep improving Top-k accuracy over the Random Forest baseline; a curve shows the trend
Table 1 lists. Reads only the files feedback_nlp/cli/repo.py writes, so it works on any run.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from feedback_nlp.callbacks.plots.figures import PLOT_DIR, new_figure, save_png

TOPK = re.compile(r"^(?P<model>[^/]+)/top(?P<k>\d+)$")


def topk_series(metrics: Mapping[str, float]) -> dict[str, list[tuple[int, float]]]:
    """model prefix (test = universal model, rf = baseline) -> sorted (k, accuracy)."""
    out: dict[str, list[tuple[int, float]]] = {}
    for key, value in metrics.items():
        if m := TOPK.match(key):
            out.setdefault(m["model"], []).append((int(m["k"]), float(value)))
    return {k: sorted(v) for k, v in out.items()}


NAMES = {"test": "universal model", "rf": "Random Forest"}


def topk_figure(metrics: Mapping[str, float]) -> Any:
    fig, ax = new_figure()
    for model, pts in topk_series(metrics).items():
        ax.plot([k for k, _ in pts], [100 * v for _, v in pts], marker="o", label=NAMES.get(model, model))
    ax.set(xlabel="k", ylabel="Top-k accuracy (%)", title="Top-k accuracy vs k (002 Table 1)")
    ax.legend(fontsize=8)
    return fig


def scaling_figure(results: Sequence[Mapping[str, Any]]) -> Any:
    """results: [{model: UM|RF, size, metrics: {test/topK | rf/topK: v}}] (scaling.json)."""
    fig, ax = new_figure()
    series: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for r in results:
        for key, value in r["metrics"].items():
            if m := TOPK.match(key):
                series.setdefault((r["model"], int(m["k"])), []).append((int(r["size"]), float(value)))
    ks = sorted({k for _, k in series})
    colors = {k: f"C{i % 10}" for i, k in enumerate(ks)}  # one colour per k; solid UM, dashed RF
    for (model, k), pts in sorted(series.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        pts.sort()
        ax.plot(
            [s for s, _ in pts],
            [100 * v for _, v in pts],
            marker="o",
            label=f"{model} Top-{k}",
            linestyle="-" if model == "UM" else "--",
            color=colors[k],
        )
    ax.set(
        xlabel="repository size (questions)",
        ylabel="Top-k accuracy (%)",
        xscale="log",
        title="Top-k accuracy vs repository size (002 Table 1)",
    )
    ax.legend(fontsize=7, ncol=2)
    return fig


def plot_run(run_dir: str | Path) -> list[Path]:
    """Write plots/topk_vs_k.png (metrics.json) and plots/topk_vs_repository_size.png (scaling.json)."""
    run_dir, out = Path(run_dir), []
    if (run_dir / "metrics.json").is_file():
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        if topk_series(metrics):
            out.append(save_png(topk_figure(metrics), run_dir / PLOT_DIR / "topk_vs_k.png"))
    if (run_dir / "scaling.json").is_file():
        results = json.loads((run_dir / "scaling.json").read_text(encoding="utf-8"))
        out.append(save_png(scaling_figure(results), run_dir / PLOT_DIR / "topk_vs_repository_size.png"))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m feedback_nlp.callbacks.plots.universal_model RUN_DIR", file=sys.stderr)
        return 2
    paths = plot_run(args[0])
    if not paths:
        print(f"error: {args[0]}: no metrics.json with top-k keys and no scaling.json", file=sys.stderr)
        return 2
    print("\n".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
