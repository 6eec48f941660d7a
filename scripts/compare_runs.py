"""One table comparing issue models by their test metrics, relative to a reference (000 Table 2).

    python scripts/compare_runs.py --reference t5=outputs/t5/RUN --run bart=outputs/bart/RUN \
        --run mcml-bert=outputs/mcml/RUN --out outputs/table2.md

Why: 000 Table 2 shows MCML-BERT, BART and Pegasus "as the difference from the T5 performance"
for ROUGE-1/2 and SimCSE P/R per level. Every run of this repo writes `metrics.json` with the
same `test/<level>/<metric>` keys (the MCML baseline only `coarse`), so one table is a join; a
metric a run lacks shows as "-", as in the paper.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent

from feedback_nlp.common.io import atomic_write_json, atomic_write_text

COLUMNS = [(lvl, m) for lvl in ("coarse", "granular")
           for m in ("rouge1", "rouge2", "simcse_precision", "simcse_recall", "simcse_f1")]


def load_metrics(path: str | Path) -> dict[str, float]:
    path = Path(path)
    path = path / "metrics.json" if path.is_dir() else path
    return json.loads(path.read_text(encoding="utf-8"))


def relative_rows(reference: Mapping[str, float], runs: Mapping[str, Mapping[str, float]]
                  ) -> dict[str, dict[str, float | None]]:
    """name -> {test/level/metric: relative difference in % from the reference (None if missing)}."""
    out: dict[str, dict[str, float | None]] = {}
    for name, metrics in runs.items():
        row: dict[str, float | None] = {}
        for lvl, m in COLUMNS:
            key = f"test/{lvl}/{m}"
            ref, val = reference.get(key), metrics.get(key)
            row[key] = None if ref in (None, 0) or val is None else 100.0 * (val - ref) / ref
        out[name] = row
    return out


def to_markdown(ref_name: str, reference: Mapping[str, float], rows: Mapping[str, Mapping[str, float | None]]
                ) -> str:
    short = {"rouge1": "R-1", "rouge2": "R-2", "simcse_precision": "P", "simcse_recall": "R", "simcse_f1": "F1"}
    head = "| model | " + " | ".join(f"{lvl} {short[m]}" for lvl, m in COLUMNS) + " |"
    lines = [head, "|---|" + "---|" * len(COLUMNS)]
    ref_cells = [f"{reference[k]:.3f}" if (k := f"test/{lvl}/{m}") in reference else "-" for lvl, m in COLUMNS]
    lines.append(f"| {ref_name} (absolute) | " + " | ".join(ref_cells) + " |")
    for name, row in rows.items():
        cells = ["-" if (v := row[f"test/{lvl}/{m}"]) is None else f"{v:+.1f}%" for lvl, m in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _named(spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    if not sep:
        raise SystemExit(f"error: {spec!r} must look like NAME=RUN_DIR_OR_METRICS_JSON")
    return name, path


def main(argv: Sequence[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", required=True, help="NAME=run dir or metrics.json (000 uses T5)")
    p.add_argument("--run", action="append", default=[], help="NAME=run dir or metrics.json, repeatable")
    p.add_argument("--out", default=None, help="markdown path; a .json with the numbers is written next to it")
    a = p.parse_args(argv)
    ref_name, ref_path = _named(a.reference)
    reference = load_metrics(ref_path)
    runs = {name: load_metrics(path) for name, path in map(_named, a.run)}
    rows = relative_rows(reference, runs)
    table = to_markdown(ref_name, reference, rows)
    if a.out:
        atomic_write_text(Path(a.out), table)
        atomic_write_json(Path(a.out).with_suffix(".json"), {"reference": ref_name, "relative_percent": rows})
    print(table)
    return table


if __name__ == "__main__":
    main()
