"""`monitor`: KPIs of served models from the prediction log, per model version, window and language.

    feedback-nlp monitor --log DIR --out DIR [--outcomes labels.jsonl ...] [--export DIR ...]
            [--windows day,week,month] [--since 2026-03-01] [--until 2026-04-01]
            [--bound "week:precision>=0.6" ...] [--bounds bounds.yaml] [--min-support 20]
            [--reference-split test|traffic] [--min-drift-n 30] [--logger none|wandb]

Reads the prediction log (`serve`/`predict --prediction-log`), the outcome labels that arrive
later (id, label, labelled_at: JSONL or Parquet) and, for drift, each given export's reference
score sample (reference_scores.json, written when its run was tested). Writes monitor.json,
monitor.md and plots/*.png under --out (and W&B tables and images with --logger wandb).
Exit codes: 0 no bound crossed, 1 a bound crossed (one `alert:` line each on stderr), 2 bad
input (one `error:` line). Paper 001 §5; docs/operating.md.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Sequence

from feedback_nlp.cli.args import Parser
from feedback_nlp.core.errors import UserError


class UsageError(UserError, ValueError):
    pass


def parser() -> argparse.ArgumentParser:
    p = Parser("monitor", __doc__)
    p.add_argument("--log", required=True, help="the prediction log (folder or s3://...)")
    p.add_argument("--out", required=True, type=Path, help="folder for monitor.json, monitor.md and plots/")
    p.add_argument("--outcomes", nargs="*", type=Path, default=[], help="outcome labels: JSONL or Parquet files")
    p.add_argument("--export", nargs="*", type=Path, default=[], help="exports whose reference scores to compare with")
    p.add_argument("--reference-split", default="test", choices=("test", "traffic"))
    p.add_argument("--windows", default="day,week,month", help="comma-separated: day, week, month")
    p.add_argument("--since", default=None, help="first day (UTC, YYYY-MM-DD) of predictions to read")
    p.add_argument("--until", default=None, help="day (UTC) after the last one to read")
    p.add_argument("--bound", action="append", default=[], help="[WINDOW[/LANG]:]METRIC>=|<=VALUE (repeatable)")
    p.add_argument("--bounds", type=Path, default=None, help="YAML list of bounds (or METRIC: {min, max})")
    p.add_argument("--min-support", type=int, default=20, help="labelled records a precision/recall alert needs")
    p.add_argument("--min-drift-n", type=int, default=30, help="scores a window needs for PSI / KS")
    p.add_argument("--logger", default="none", choices=("none", "wandb"))
    p.add_argument("--wandb-project", default="feedback-nlp")
    return p


def _day(text: str | None, flag: str) -> str | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date().isoformat()
    except ValueError:
        raise UsageError(f"{flag} {text!r}: expected YYYY-MM-DD") from None


def main(argv: Sequence[str] | None = None) -> int:
    a = parser().parse_args(argv)
    from feedback_nlp.core.errors import DataValidationError

    try:
        prepared = prepare(a)
    except DataValidationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return run(a, *prepared)


def prepare(a: argparse.Namespace) -> tuple[Any, ...]:
    """Every check before the log is read: flags, bounds, outcome lines, exports' reference files."""
    from feedback_nlp.operations.monitor import METRICS, WINDOWS
    from feedback_nlp.operations.rules import load_rules, parse_rule

    windows = [w.strip() for w in a.windows.split(",") if w.strip()]
    bad = [w for w in windows if w not in WINDOWS]
    if bad or not windows:
        raise UsageError(f"--windows {a.windows!r}: expected a comma-separated subset of {', '.join(WINDOWS)}")
    since, until = _day(a.since, "--since"), _day(a.until, "--until")
    if a.min_support < 1 or a.min_drift_n < 2:
        raise UsageError("--min-support must be >= 1 and --min-drift-n >= 2")
    if a.out.exists() and not a.out.is_dir():
        raise UsageError(f"--out {a.out} exists and is not a folder")
    rules = [parse_rule(t, METRICS, WINDOWS) for t in a.bound]
    if a.bounds is not None:
        rules += load_rules(a.bounds, METRICS, WINDOWS)
    references = exports_references(a.export, a.reference_split)
    log = read(a.log, since, until)
    from feedback_nlp.operations.outcomes import read_outcomes

    outcomes = read_outcomes(a.outcomes, binary=log.task == "product_safety")
    return windows, rules, references, log, outcomes


def exports_references(exports: Sequence[Path], split: str) -> dict[str, Any]:
    """model_version -> language -> reference scores, from each export's reference_scores.json."""
    from feedback_nlp.operations.monitor import reference_arrays
    from feedback_nlp.serving.manifest import read_manifest
    from feedback_nlp.serving.reference_scores import read_reference

    out: dict[str, Any] = {}
    for export in exports:
        manifest = read_manifest(export)
        sample = read_reference(export)
        if sample is None:
            print(f"note: {export} has no reference_scores.json: no drift for model {manifest['model_version']}")
            continue
        arrays = reference_arrays(sample, split)
        if not arrays:
            print(f"note: {export}: its reference sample has no {split!r} split")
        out[str(manifest["model_version"])] = arrays
    return out


def read(root: str, since: str | None, until: str | None) -> Any:
    """The log (dead processes' segments compacted first) as monitor arrays, filtered by day."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from feedback_nlp.operations.monitor import LOG_COLUMNS, from_table
    from feedback_nlp.serving.prediction_log import check_root, compact, dataset

    if "://" not in root and not Path(root).is_dir():
        raise UsageError(f"--log {root}: no such folder")
    compact(check_root(root))
    flt = None
    if since:
        flt = ds.field("date") >= since
    if until:
        flt = (ds.field("date") < until) if flt is None else flt & (ds.field("date") < until)
    try:
        table = dataset(root).to_table(columns=LOG_COLUMNS, filter=flt)
    except pa.ArrowException as e:
        raise UsageError(f"--log {root}: not a readable prediction log ({e})") from None
    if table.num_rows == 0:
        raise UsageError(f"--log {root}: no predictions" + (" in the --since/--until range" if flt is not None else ""))
    try:
        return from_table(table)
    except ValueError as e:
        raise UsageError(f"--log {root}: {e}") from None


def run(a: argparse.Namespace, windows: list[str], rules: list[Any], references: Any, log: Any, outcomes: Any) -> int:
    from feedback_nlp.operations import monitor_report
    from feedback_nlp.operations.monitor import alerts, monitor

    rows = monitor(log, outcomes, references, windows, a.min_drift_n)
    crossed = alerts(rows, rules, a.min_support)
    header = {
        "log": str(a.log),
        "task": log.task,
        "predictions": int(len(log.ids)),
        "outcomes": len(outcomes),
        "reference_split": a.reference_split,
        "references": sorted(references),
        "rules": [r.text for r in rules],
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    a.out.mkdir(parents=True, exist_ok=True)
    images = monitor_report.write(a.out, rows, crossed, header, log, references)
    print(f"wrote {a.out / 'monitor.md'}, {a.out / 'monitor.json'} and {len(images)} plot(s): {len(rows)} rows")
    if a.logger == "wandb":
        from feedback_nlp.operations.wandb_log import log_job

        run_id = log_job(
            a.wandb_project,
            "monitor",
            a.out,
            header,
            monitor_report.wandb_tables(rows),
            {f"monitor/{k}": v for k, v in images.items()},
            {"monitor/alerts": len(crossed), "monitor/predictions": header["predictions"]},
        )
        print(f"logged to W&B run {run_id}")
    for line in crossed:
        print(f"alert: {line}", file=sys.stderr)
    return 1 if crossed else 0
