"""Batch prediction from a serving export, for every task, streamed.

    feedback-nlp predict --export DIR --input in.jsonl --output out.jsonl [--on-error skip|stop]
            [--rejects bad.txt] [--device auto|cpu|cuda] [--dtype fp32|bf16|fp16] [--backend torch|onnx]
            [--prediction-log DIR [--log-text] [--log-fsync]]

Why: offline scoring must use exactly the exported weights and the server's input contract
(feedback_nlp/core/records.py: a claim needs only `text`), and every output line must link back to the
model version that produced it (001 §5). Records are read, scored and written in chunks into a
temp file next to the output, renamed at the end: memory stays flat in the number of records,
and a failed run leaves no partial output. Everything that can be checked without the model
(arguments, paths, the export's manifest and hashes, every input line) is checked before the
model loads. Bad input lines are reported as file:line:field and either stop the run before
any prediction (default) or are skipped (listed, and written to --rejects). With
--prediction-log, every scored record is also kept in the prediction log (docs/operating.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

from feedback_nlp.cli.args import Parser, add_bad_input_args
from feedback_nlp.core.errors import Problem, UserError
from feedback_nlp.core.io import atomic_open
from feedback_nlp.core.records import iter_jsonl


class UsageError(UserError, ValueError):
    pass


def parse_field_map(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        dst, sep, src = item.partition("=")
        if not sep or not dst.strip() or not src.strip():
            raise UsageError(f"--field-map {item!r}: expected FIELD=SOURCE (for example text=narrative)")
        out[dst.strip()] = src.strip()
    return out


def _parser() -> argparse.ArgumentParser:
    from feedback_nlp.serving.runtime import BACKENDS, DEVICES, DTYPES

    p = Parser("predict", __doc__)
    p.add_argument("--export", required=True, help="export folder (manifest.json + weights)")
    p.add_argument("--input", required=True, help="JSONL records of the export's task")
    p.add_argument("--output", required=True, help="JSONL predictions, one line per valid input record")
    add_bad_input_args(p, "input lines", "stop before predicting")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto", help=f"one of {', '.join(DEVICES)} (default auto)")
    p.add_argument("--dtype", default="fp32", choices=DTYPES)
    p.add_argument("--backend", default="torch", choices=BACKENDS)
    p.add_argument(
        "--field-map",
        nargs="*",
        default=[],
        metavar="FIELD=SOURCE",
        help="read schema FIELD from the input's SOURCE field",
    )
    p.add_argument("--prediction-log", default=None, help="also keep every scored record here (folder or s3://...)")
    p.add_argument("--log-text", action="store_true", help="with --prediction-log: keep the input text too")
    p.add_argument("--log-fsync", action="store_true", help="with --prediction-log: fsync every batch")
    return p


def _check_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    inp, out = Path(args.input), Path(args.output)
    if not inp.is_file():
        raise UsageError(f"--input {inp}: no such file")
    if out.exists() and out.is_dir():
        raise UsageError(f"--output {out} is a directory")
    if not out.parent.is_dir():
        raise UsageError(f"--output {out}: folder {out.parent} does not exist")
    if out.exists() and out.resolve() == inp.resolve():
        raise UsageError("--output must not be the --input file")
    return inp, out


def score_stream(
    predictor: Any,
    manifest: dict[str, Any],
    items: Iterator[Any],
    out: IO[str],
    batch_size: int,
    on_problem: Any = None,
    prediction_log: Any = None,
) -> int:
    """Score records from `items` in chunks of `batch_size`, writing one JSON line per record
    (and appending each chunk to `prediction_log`, a serving.prediction_log.PredictionLog, if given)."""
    from feedback_nlp.serving.protocol import stamp_rows

    n = 0
    chunk: list[Any] = []

    def flush() -> int:
        # a file may repeat an id: the predictor sees unique keys, each row gets its record's id back
        keyed = [replace(r, id=f"{i}:{r.id}") for i, r in enumerate(chunk)]
        rows = [
            {**row, "id": rec.id}
            for rec, row in zip(chunk, stamp_rows(keyed, predictor.predict(keyed), manifest["model_version"]))
        ]
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        if prediction_log is not None:
            prediction_log.append(chunk, rows)
        chunk.clear()
        return len(rows)

    for item in items:
        if isinstance(item, Problem):
            if on_problem is not None:
                on_problem(item)
            continue
        chunk.append(item)
        if len(chunk) >= batch_size:
            n += flush()
    if chunk:
        n += flush()
    return n


def check_input(path: Path, kind: str, field_map: dict[str, str], limit: int = 20) -> None:
    """A streaming pass over every line: DataValidationError listing the bad ones (nothing scored)."""
    from feedback_nlp.core.errors import DataValidationError

    problems: list[Problem] = []
    total = 0
    for item in iter_jsonl(path, kind, field_map):
        if isinstance(item, Problem):
            total += 1
            if len(problems) < limit:
                problems.append(item)
    if total:
        raise DataValidationError(problems, limit=limit, total=total)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from feedback_nlp.core.errors import DataValidationError, UserError
    from feedback_nlp.serving.registry import load_export, preflight
    from feedback_nlp.serving.runtime import resolve

    try:
        field_map = parse_field_map(args.field_map)
        inp, out = _check_paths(args)
        rejects = Path(args.rejects) if args.rejects else None
        if rejects is not None and not rejects.parent.is_dir():
            raise UsageError(f"--rejects {rejects}: folder {rejects.parent} does not exist")
        if (args.log_text or args.log_fsync) and not args.prediction_log:
            raise UsageError("--log-text and --log-fsync need --prediction-log")
        log_root = None
        if args.prediction_log:
            from feedback_nlp.serving.prediction_log import check_root

            log_root = check_root(args.prediction_log)
        options = resolve(args.device, args.dtype, args.backend, args.batch_size)
        kind = preflight(args.export, options)["record_kind"]  # manifest, task, hashes: no model yet
        if args.on_error == "stop":  # a first streaming pass: nothing is scored when any line is bad
            check_input(inp, kind, field_map)
        predictor, manifest = load_export(args.export, options)
    except DataValidationError as e:
        print(f"error: {e}\n  fix them or pass --on-error skip", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    problems: list[Problem] = []

    def skipped(p: Problem) -> None:
        problems.append(p)
        print(f"skipped: {p}", flush=True)

    log = None
    if log_root is not None:
        from feedback_nlp.serving.prediction_log import PredictionLog

        log = PredictionLog(log_root, manifest["task"], args.log_text, args.log_fsync)
    try:
        with atomic_open(out) as f:
            n = score_stream(predictor, manifest, iter_jsonl(inp, kind, field_map), f, args.batch_size, skipped, log)
    finally:
        if log is not None:
            log.close()
    if rejects is not None:
        with atomic_open(rejects) as f:
            f.writelines(f"{p}\n" for p in problems)
    print(
        f"wrote {n} predictions to {out} (model {manifest['model_version']}"
        + (f", {len(problems)} bad line(s) skipped)" if problems else ")")
    )
    return 0
