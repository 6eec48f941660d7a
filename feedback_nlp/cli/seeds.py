"""Run one experiment over N seeds and report each metric as mean / std / min / max.

    feedback-nlp sweep --config configs/experiment/multilevel_issues_demo.yaml --seeds 3 [--out DIR] [key=value ...]
    feedback-nlp sweep --config ... --seeds 0,4,7 --metrics 'test/*/simcse_f1'

Why (issue 26): one run is one draw. The granular level of the multi-level issue model reached
copy + 0.09 on two seeds and collapsed to the copy baseline on the third; a figure quoted from one
run hides that, and so does a mean alone. The minimum over seeds is what a user who runs the
recipe once can count on.

Each seed is an ordinary run directory, `<out>/seed_<n>` (the config with `seed=<n>` and
`output_dir=` set), trained in this process one after another. A seed whose `metrics.json`
exists is not trained again: rerun the same command to finish an interrupted sweep. After every
seed `<out>/seeds.json` and `<out>/seeds.md` are rewritten (atomically) with the per-seed values
and their summary. `std` is the sample standard deviation (n - 1 in the denominator, numpy's
`ddof=1`); with one seed it is 0.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import statistics
from pathlib import Path
from typing import Any, Sequence

from feedback_nlp.core.config import ConfigError

DEFAULT_METRICS = ("test/*",)
SUMMARY = ("mean", "std", "min", "max")


def parse_seeds(text: str) -> list[int]:
    """'3' -> [0, 1, 2]; '0,4,7' -> [0, 4, 7]; ConfigError otherwise."""
    try:
        if "," not in text:
            n = int(text)
            if n < 1:
                raise ValueError
            return list(range(n))
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds must be a count (3) or a comma list of seeds (0,4,7), got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds must list distinct seeds, got {text!r}")
    return seeds


def summarize(per_seed: dict[int, dict[str, float]], patterns: Sequence[str] = DEFAULT_METRICS) -> dict[str, Any]:
    """metric -> {mean, std, min, max, n, values: {seed: value}} over the seeds that have it."""
    names = sorted({k for m in per_seed.values() for k in m if any(fnmatch.fnmatchcase(k, p) for p in patterns)})
    out: dict[str, Any] = {}
    for name in names:
        values = {s: float(m[name]) for s, m in per_seed.items() if name in m and not math.isnan(float(m[name]))}
        if not values:
            continue
        v = list(values.values())
        out[name] = {
            "mean": statistics.fmean(v),
            "std": statistics.stdev(v) if len(v) > 1 else 0.0,
            "min": min(v),
            "max": max(v),
            "n": len(v),
            "values": {str(s): x for s, x in values.items()},
        }
    return out


def table(summary: dict[str, Any], seeds: Sequence[int]) -> str:
    """Markdown: one row per metric, its value per seed, then mean / std / min / max."""
    head = ["metric", *(f"seed {s}" for s in seeds), *SUMMARY]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in summary.items():
        cells = [row["values"].get(str(s)) for s in seeds]
        lines.append(
            "| "
            + " | ".join(
                [name, *("-" if c is None else f"{c:.4f}" for c in cells), *(f"{row[k]:.4f}" for k in SUMMARY)]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def _train(config: str, overrides: Sequence[str], seed: int, run_dir: Path) -> dict[str, float]:
    from feedback_nlp.cli import train
    from feedback_nlp.training.run_dir import ENV_VAR as RUN_DIR_ENV

    os.environ.pop(RUN_DIR_ENV, None)  # each seed is its own run dir
    try:
        return train.main(["--config", config, *overrides, f"seed={seed}", f"output_dir={run_dir}"])
    finally:
        os.environ.pop(RUN_DIR_ENV, None)


def run_seeds(
    config: str,
    seeds: Sequence[int],
    out: str | Path,
    overrides: Sequence[str] = (),
    patterns: Sequence[str] = DEFAULT_METRICS,
) -> dict[str, Any]:
    """Train `config` once per seed (skipping finished ones), summarize, write and print the table."""
    from feedback_nlp.core.io import atomic_write_json, atomic_write_text

    bad = [o for o in overrides if o.split("=", 1)[0].lstrip("+") in ("seed", "output_dir")]
    if bad:
        raise ConfigError(f"{bad[0]}: the seed sweep sets seed= and output_dir= itself (use --seeds and --out)")
    from feedback_nlp.core.config import load_config

    load_config(config, list(overrides))  # a bad file or key stops here, before any seed trains
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    per_seed: dict[int, dict[str, float]] = {}
    report: dict[str, Any] = {}
    for seed in seeds:
        run_dir = out / f"seed_{seed}"
        done = run_dir / "metrics.json"
        if not done.is_file():
            print(f"# seed {seed}: training in {run_dir}", flush=True)
            _train(config, overrides, seed, run_dir)
        per_seed[seed] = json.loads(done.read_text(encoding="utf-8"))
        summary = summarize(per_seed, patterns)
        report = {
            "config": config,
            "overrides": list(overrides),
            "seeds": list(per_seed),
            "runs": {str(s): str(out / f"seed_{s}") for s in per_seed},
            "std": "sample (n-1)",
            "metrics": summary,
        }
        title = f"### {config} over seeds {', '.join(map(str, per_seed))} ({' '.join(overrides) or 'no overrides'})\n\n"
        atomic_write_json(out / "seeds.json", report)
        atomic_write_text(out / "seeds.md", title + table(summary, list(per_seed)))
    print((out / "seeds.md").read_text(encoding="utf-8") + f"\nseeds: {out / 'seeds.json'}", flush=True)
    return report
