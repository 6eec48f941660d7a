"""Batch prediction from a serving export, for every task.

    python predict.py --export DIR --input in.jsonl --output out.jsonl [--on-error skip|stop]

Why: serving and offline scoring must use exactly the exported weights, and every output line
must link back to the model version that produced it (001 §5). Bad input lines are reported
with file:line:field and either skipped (reported) or stop the run, never silently dropped.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import Sequence

from feedback_nlp.common.export import ExportError, load_predictor
from feedback_nlp.common.io import atomic_write_jsonl
from feedback_nlp.datamodules.records import read_records


def chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", required=True, help="export folder (manifest.json + weights)")
    parser.add_argument("--input", required=True, help="JSONL records of the export's task")
    parser.add_argument("--output", required=True, help="JSONL predictions, one line per valid input record")
    parser.add_argument("--on-error", choices=("skip", "stop"), default="stop",
                        help="bad input lines: stop before predicting (default) or skip them (reported)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--field-map", nargs="*", default=[], metavar="FIELD=SOURCE",
                        help="read schema FIELD from the input's SOURCE field")
    args = parser.parse_args(argv)

    try:
        predictor, manifest = load_predictor(args.export)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    field_map = dict(item.split("=", 1) for item in args.field_map)
    records, problems = read_records(args.input, manifest["record_kind"], field_map or None)
    for p in problems:
        print(f"{'skipped' if args.on_error == 'skip' else 'error'}: {p}", file=sys.stderr)
    if problems and args.on_error == "stop":
        print(f"error: {len(problems)} bad input line(s); fix them or pass --on-error skip", file=sys.stderr)
        return 2

    from rich.progress import Progress
    rows: list[dict] = []
    with Progress(transient=True) as progress:
        bar = progress.add_task(f"predict {manifest['task']}", total=len(records))
        for batch in chunks(records, args.batch_size):
            stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
            for row in predictor.predict(batch):
                rows.append({**row, "model_version": manifest["model_version"], "predicted_at": stamp})
            progress.advance(bar, len(batch))
    atomic_write_jsonl(args.output, rows)
    print(f"wrote {len(rows)} predictions to {args.output} (model {manifest['model_version']}, "
          f"{len(problems)} bad line(s) {'skipped' if problems else ''})".rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
