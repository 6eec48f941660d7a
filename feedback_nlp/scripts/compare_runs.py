"""One table comparing runs, from local run directories or from W&B runs (by group or tag).

    # 000 Table 2: each model relative to a reference (T5), in %
    python -m feedback_nlp.scripts.compare_runs --reference t5=outputs/t5/RUN --run bart=outputs/bart/RUN \
        --run mcml-bert=outputs/mcml/RUN --out outputs/table2.md
    # every run dir under a folder (a sweep's trials, an experiment's runs), absolute values
    python -m feedback_nlp.scripts.compare_runs --runs-under outputs/sweeps/product_safety_ablation/trials
    # the same from W&B (needs the W&B API: a login and a reachable server)
    python -m feedback_nlp.scripts.compare_runs --wandb entity/feedback-nlp --group ablation [--tag paper] \
        [--reference NAME] [--metrics test/recall,test/precision]

Why: 000 Table 2 shows MCML-BERT, BART and Pegasus "as the difference from the T5 performance"
for ROUGE-1/2 and SimCSE P/R per level, and the 001 ablations compare variants on recall and
volume. A run is its metrics: `metrics.json` (+ `best_metrics.json` as `best/<metric>`) in a run
dir, or the W&B run summary, which finish_wandb and BestMetrics fill with the same keys. So both
sources give the same table; a metric a run lacks shows as "-", as in the paper.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from feedback_nlp.core.io import atomic_write_json, atomic_write_text
from feedback_nlp.core.vocabulary import ISSUE_LEVELS

COLUMNS = [
    (lvl, m) for lvl in ISSUE_LEVELS for m in ("rouge1", "rouge2", "simcse_precision", "simcse_recall", "simcse_f1")
]
TABLE2_KEYS = [f"test/{lvl}/{m}" for lvl, m in COLUMNS]


class CompareError(ValueError):
    """A run or source that cannot be read; the message names it."""


def load_metrics(path: str | Path) -> dict[str, float]:
    """metrics.json of a run dir (or the file itself), plus best_metrics.json as best/<metric>."""
    path = Path(path)
    file = path / "metrics.json" if path.is_dir() else path
    if not file.is_file():
        raise CompareError(f"{file}: no such metrics file")
    try:
        metrics = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CompareError(f"{file}:{e.lineno}: invalid JSON: {e.msg}") from None
    best = file.parent / "best_metrics.json"
    if best.is_file():
        for key, row in json.loads(best.read_text(encoding="utf-8")).items():
            metrics[f"best/{key}"] = row["value"]
    return metrics


def local_runs(root: str | Path) -> dict[str, dict[str, float]]:
    """name (path under root) -> metrics, for every finished run dir below `root`."""
    root = Path(root)
    found = sorted(p.parent for p in root.rglob("metrics.json"))
    if not found:
        raise CompareError(f"{root}: no run directory with a metrics.json below it")
    return {str(p.relative_to(root)) or p.name: load_metrics(p) for p in found}


def summary_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a W&B run summary; `{"min": v}` / `{"max": v}` entries give that value."""
    out: dict[str, float] = {}
    for key, value in summary.items():
        if isinstance(value, Mapping):
            value = next((value[k] for k in ("max", "min", "last") if k in value), None)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not key.startswith("_"):
            out[key] = float(value)
    return out


def wandb_runs(
    project: str, group: str | None = None, tag: str | None = None, api: Any = None
) -> dict[str, dict[str, float]]:
    """run name -> summary metrics of the project's runs in `group` and/or with `tag` (public wandb.Api)."""
    if not group and not tag:
        raise CompareError("--wandb needs --group and/or --tag (which runs to compare)")
    if api is None:
        import wandb

        api = wandb.Api()
    filters: dict[str, Any] = {}
    if group:
        filters["group"] = group
    if tag:
        filters["tags"] = {"$in": [tag]}
    runs = list(api.runs(project, filters=filters))
    if not runs:
        raise CompareError(f"W&B project {project}: no run with {filters}")
    out: dict[str, dict[str, float]] = {}
    for run in runs:
        name = run.name if run.name not in out else f"{run.name}-{run.id}"
        out[name] = summary_metrics(dict(run.summary))
    return out


def relative_rows(
    reference: Mapping[str, float], runs: Mapping[str, Mapping[str, float]], keys: Sequence[str] = TABLE2_KEYS
) -> dict[str, dict[str, float | None]]:
    """name -> {key: relative difference in % from the reference (None if missing)}."""
    out: dict[str, dict[str, float | None]] = {}
    for name, metrics in runs.items():
        row: dict[str, float | None] = {}
        for key in keys:
            ref, val = reference.get(key), metrics.get(key)
            row[key] = None if ref in (None, 0) or val is None else 100.0 * (val - ref) / ref
        out[name] = row
    return out


SHORT = {"rouge1": "R-1", "rouge2": "R-2", "simcse_precision": "P", "simcse_recall": "R", "simcse_f1": "F1"}


def _title(key: str) -> str:
    parts = key.split("/")
    if key in TABLE2_KEYS:
        return f"{parts[1]} {SHORT[parts[2]]}"
    return key


def to_markdown(
    ref_name: str,
    reference: Mapping[str, float],
    rows: Mapping[str, Mapping[str, float | None]],
    keys: Sequence[str] = TABLE2_KEYS,
) -> str:
    head = "| model | " + " | ".join(_title(k) for k in keys) + " |"
    lines = [head, "|---|" + "---|" * len(keys)]
    ref_cells = [f"{reference[k]:.3f}" if k in reference else "-" for k in keys]
    lines.append(f"| {ref_name} (absolute) | " + " | ".join(ref_cells) + " |")
    for name, row in rows.items():
        cells = ["-" if (v := row[k]) is None else f"{v:+.1f}%" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def absolute_markdown(runs: Mapping[str, Mapping[str, float]], keys: Sequence[str]) -> str:
    lines = ["| run | " + " | ".join(_title(k) for k in keys) + " |", "|---|" + "---|" * len(keys)]
    for name, metrics in runs.items():
        cells = ["-" if (v := metrics.get(k)) is None or math.isnan(v) else f"{v:.4f}" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def pick_keys(runs: Iterable[Mapping[str, float]], wanted: Sequence[str] | None) -> list[str]:
    """The requested metrics; by default 000 Table 2's when present, else the sweep's headline ones."""
    if wanted:
        return list(wanted)
    from feedback_nlp.cli.sweep import DEFAULT_COLUMNS

    present = {k for m in runs for k in m}
    return [k for k in TABLE2_KEYS if k in present] or [k for k in DEFAULT_COLUMNS if k in present]


def _named(spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    if not sep:
        raise CompareError(f"{spec!r} must look like NAME=RUN_DIR_OR_METRICS_JSON")
    return name, path


def main(argv: Sequence[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--reference",
        default=None,
        help="NAME=run dir or metrics.json, or the NAME of a compared run: a relative table (000)",
    )
    p.add_argument("--run", action="append", default=[], help="NAME=run dir or metrics.json, repeatable")
    p.add_argument("--runs-under", default=None, help="every run dir (with metrics.json) below this folder")
    p.add_argument("--wandb", default=None, metavar="ENTITY/PROJECT", help="compare W&B runs of this project")
    p.add_argument("--group", default=None, help="with --wandb: the runs of this group")
    p.add_argument("--tag", default=None, help="with --wandb: the runs with this tag")
    p.add_argument("--metrics", default=None, help="comma-separated metric keys (default: Table 2's or headline)")
    p.add_argument("--out", default=None, help="markdown path; a .json with the numbers is written next to it")
    a = p.parse_args(argv)
    try:
        runs: dict[str, dict[str, float]] = {name: load_metrics(path) for name, path in map(_named, a.run)}
        if a.runs_under:
            runs.update(local_runs(a.runs_under))
        if a.wandb:
            runs.update(wandb_runs(a.wandb, a.group, a.tag))
        ref_name, reference = None, None
        if a.reference:
            if "=" in a.reference:
                ref_name, ref_path = _named(a.reference)
                reference = load_metrics(ref_path)
            elif a.reference in runs:
                ref_name, reference = a.reference, runs.pop(a.reference)
            else:
                raise CompareError(
                    f"--reference {a.reference!r}: not NAME=PATH and not one of the runs ({', '.join(runs) or 'none'})"
                )
        if not runs:
            raise CompareError("nothing to compare: give --run, --runs-under or --wandb")
        metrics = [k for k in (a.metrics or "").split(",") if k]
        if reference is not None:
            keys = metrics or TABLE2_KEYS
            rows = relative_rows(reference, runs, keys)
            table = to_markdown(ref_name or "reference", reference, rows, keys)
            payload: dict[str, Any] = {"reference": ref_name, "relative_percent": rows}
        else:
            keys = pick_keys(runs.values(), metrics)
            table = absolute_markdown(runs, keys)
            payload = {"runs": {n: {k: m.get(k) for k in keys} for n, m in runs.items()}}
    except CompareError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    if a.out:
        atomic_write_text(Path(a.out), table)
        atomic_write_json(Path(a.out).with_suffix(".json"), payload)
    print(table)
    return table


if __name__ == "__main__":
    main()
