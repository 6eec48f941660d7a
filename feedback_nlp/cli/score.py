"""Batch scoring on Ray Data: predict's rows for millions of records, on one machine or a cluster.

    feedback-nlp score --export DIR|URI --input PATH|URI|GLOB [...] --output FOLDER|URI
            [--format parquet|jsonl] [--on-error stop|skip] [--rejects bad.txt]
            [--address local|auto|HOST:PORT|ray://HOST:10001] [--actors N] [--cpus-per-actor C]
            [--gpus-per-actor G] [--batch-size B] [--dtype ...] [--backend ...]

Why next to `predict`: predict is one process on one device; this runs the same export and the
same predictor in a pool of Ray actors (one model load each, on CPUs or GPUs), reading JSONL or
Parquet files, folders or globs, local or in object storage, and writing a folder of Parquet (or
JSONL) part files that appears complete or not at all. Records go through predict's decoder and
errors (file:line:field; Parquet rows as file:row:field) and every record is checked before any
model loads; rows are predict's rows (id, prediction, model_version, predicted_at).
Needs the `batch` extra: pip install -e '.[batch]'. Guide: docs/batch_scoring.md.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from feedback_nlp.cli.args import Parser, add_bad_input_args


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = Parser("score", __doc__)
    p.add_argument("--export", required=True, help="export folder, local or a URI (s3://, gs://, ...)")
    p.add_argument("--input", required=True, nargs="+", help="JSONL/Parquet files, folders or globs, local or URIs")
    p.add_argument("--output", required=True, help="folder to create (local, shared, or a URI)")
    p.add_argument("--format", choices=("parquet", "jsonl"), default="parquet", help="part files (default parquet)")
    add_bad_input_args(p, "records", "stop before any model loads")
    p.add_argument("--field-map", nargs="*", default=[], metavar="FIELD=SOURCE", help="as for predict")
    p.add_argument("--batch-size", type=int, default=32, help="records per model call, as for predict (default 32)")
    p.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--backend", default="torch", choices=("torch", "onnx"))
    p.add_argument(
        "--address",
        default="local",
        help="`local` (default): start a Ray cluster on this machine; `auto`: the cluster this node joined "
        "(`ray start`); HOST:PORT: a running cluster's head (`ray start --head` prints it); "
        "ray://HOST:10001: a remote cluster through Ray Client",
    )
    p.add_argument("--actors", type=_positive_int, default=1, help="scoring actors, one model each (default 1)")
    p.add_argument(
        "--cpus-per-actor",
        type=_positive_float,
        default=None,
        help="CPUs per actor, fractions allowed (default: the CPUs left after 0.5 for reads and writes, "
        "shared; 1 with a GPU); torch threads = this, rounded up",
    )
    p.add_argument(
        "--gpus-per-actor", "--num-gpus", type=float, default=0.0, help="GPUs per actor (default 0: score on CPU)"
    )
    p.add_argument(
        "--max-restarts",
        type=int,
        default=3,
        help="times a dead actor is restarted and its batch retried before the run fails (default 3)",
    )
    p.add_argument("--rows-per-file", type=_positive_int, default=100_000, help="rows per part file (at least)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output when the run succeeds")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from feedback_nlp.cli.predict import parse_field_map
    from feedback_nlp.core.errors import DataValidationError, UserError

    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        print(
            f"error: feedback-nlp score needs Ray Data ({e.name} is not installed): pip install -e '.[batch]'",
            file=sys.stderr,
        )
        return 2
    from feedback_nlp.operations.batch_cluster import stderr_into_stdout
    from feedback_nlp.operations.batch_scoring import ScoringJob, run

    try:
        if args.gpus_per_actor < 0:
            raise UserError(f"--gpus-per-actor must be >= 0, got {args.gpus_per_actor:g}")
        if args.max_restarts < 0:
            raise UserError(f"--max-restarts must be >= 0, got {args.max_restarts}")
        job = ScoringJob(
            export=args.export,
            inputs=tuple(args.input),
            output=args.output,
            format=args.format,
            on_error=args.on_error,
            rejects=args.rejects,
            field_map=parse_field_map(args.field_map),
            batch_size=args.batch_size,
            dtype=args.dtype,
            backend=args.backend,
            address=args.address,
            actors=args.actors,
            cpus_per_actor=args.cpus_per_actor,
            gpus_per_actor=args.gpus_per_actor,
            max_restarts=args.max_restarts,
            rows_per_file=args.rows_per_file,
            overwrite=args.overwrite,
        )
        with stderr_into_stdout():
            run(job, log=lambda line: print(line, flush=True))
    except DataValidationError as e:
        print(f"error: {e}\n  fix them or pass --on-error skip", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ray.exceptions.RayError as e:  # the cluster failed the job (an actor died past --max-restarts, ...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: batch scoring failed, nothing was written: {first}", file=sys.stderr)
        return 1
    return 0
