"""Batch prediction from a serving export, for every task, streamed.

    predict --export DIR --input in.jsonl --output out.jsonl [--on-error skip|stop]
            [--device auto|cpu|cuda] [--dtype fp32|bf16|fp16] [--backend torch|onnx]

Why: offline scoring must use exactly the exported weights and the server's input contract
(feedback_nlp/serving/records.py: a claim needs only `text`), and every output line must link back to the
model version that produced it (001 §5). Records are read, scored and written in chunks into a
temp file next to the output, renamed at the end: memory stays flat in the number of records,
and a failed run leaves no partial output. Bad input lines are reported as file:line:field and
either stop the run before any prediction (default) or are skipped (reported).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

from feedback_nlp.serving.records import LineProblem, iter_jsonl


class UsageError(ValueError):
    pass


def parse_field_map(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        dst, sep, src = item.partition("=")
        if not sep or not dst.strip() or not src.strip():
            raise UsageError(f"--field-map {item!r}: expected FIELD=SOURCE (for example text=narrative)")
        out[dst.strip()] = src.strip()
    return out


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[IO[str]]:
    """A temp file next to `path`, fsynced and renamed over it only when the block succeeds."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _parser() -> argparse.ArgumentParser:
    from feedback_nlp.serving.runtime import BACKENDS, DEVICES, DTYPES

    p = argparse.ArgumentParser(
        prog="feedback-nlp predict", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--export", required=True, help="export folder (manifest.json + weights)")
    p.add_argument("--input", required=True, help="JSONL records of the export's task")
    p.add_argument("--output", required=True, help="JSONL predictions, one line per valid input record")
    p.add_argument(
        "--on-error",
        choices=("skip", "stop"),
        default="stop",
        help="bad input lines: stop before predicting (default) or skip them (reported)",
    )
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
) -> int:
    """Score records from `items` in chunks of `batch_size`, writing one JSON line per record."""
    from feedback_nlp.serving.protocol import stamp_rows

    n = 0
    chunk: list[Any] = []

    def flush() -> int:
        # a file may repeat an id: the predictor sees unique keys, each row gets its record's id back
        keyed = [replace(r, id=f"{i}:{r.id}") for i, r in enumerate(chunk)]
        rows = stamp_rows(keyed, predictor.predict(keyed), manifest["model_version"])
        out.writelines(json.dumps({**row, "id": rec.id}, ensure_ascii=False) + "\n" for rec, row in zip(chunk, rows))
        chunk.clear()
        return len(rows)

    for item in items:
        if isinstance(item, LineProblem):
            if on_problem is not None:
                on_problem(item)
            continue
        chunk.append(item)
        if len(chunk) >= batch_size:
            n += flush()
    if chunk:
        n += flush()
    return n


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from feedback_nlp.core.model_factory import ModelNotAvailableError
    from feedback_nlp.serving.manifest import ExportError
    from feedback_nlp.serving.registry import load_export
    from feedback_nlp.serving.runtime import RuntimeOptionError, resolve

    try:
        field_map = parse_field_map(args.field_map)
        inp, out = _check_paths(args)
        options = resolve(args.device, args.dtype, args.backend, args.batch_size)
        predictor, manifest = load_export(args.export, options)
    except (UsageError, RuntimeOptionError, ExportError, ModelNotAvailableError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    kind = manifest["record_kind"]
    problems = 0
    if args.on_error == "stop":  # a first streaming pass: nothing is scored when any line is bad
        for item in iter_jsonl(inp, kind, field_map):
            if isinstance(item, LineProblem):
                problems += 1
                if problems <= 50:
                    print(f"error: {item}", file=sys.stderr)
        if problems:
            print(f"error: {problems} bad input line(s); fix them or pass --on-error skip", file=sys.stderr)
            return 2

    def skipped(p: LineProblem) -> None:
        nonlocal problems
        problems += 1
        print(f"skipped: {p}", file=sys.stderr)

    with atomic_output(out) as f:
        n = score_stream(predictor, manifest, iter_jsonl(inp, kind, field_map), f, args.batch_size, skipped)
    print(
        f"wrote {n} predictions to {out} (model {manifest['model_version']}"
        + (f", {problems} bad line(s) skipped)" if problems else ")")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
