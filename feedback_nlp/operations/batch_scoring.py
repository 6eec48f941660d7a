"""Batch scoring on Ray Data: the same exports and predictors as `predict`, on one machine or a cluster.

Why Ray Data and not a home-made pool: millions of records need streaming reads from object
storage, one model load per worker (GPU or CPU), retries when a worker dies and the same code on
a laptop and a cluster; Ray Data does all of it, in Python, with Lightning-compatible workers.

The job, in order (nothing loads a model before step 4):
1. checks: flags, the export (manifest, task, every file's hash), the inputs (files exist, are
   listed), the output (absent, or --overwrite);
2. a cluster: started here or joined (batch_cluster.py);
3. a check pass (Ray read tasks, no model): every record decoded by core/records.py; with
   `--on-error stop` any bad record ends the run here, listed as predict lists them; with
   `skip` they go to --rejects; either way the valid records are counted;
4. the scoring pass: read tasks -> an actor pool of `Scorer`s (`map_batches` with a callable
   class: one export load per actor, `compute=ActorPoolStrategy`, fractional CPUs, GPUs when
   asked; an actor killed mid-run is restarted and its unfinished batches retried) -> Ray's
   writer, into a temp folder;
5. the rows written are counted against step 3's count (every record exactly once, checked, not
   assumed), then the folder is published (batch_outputs.py) and one log line gives records/s.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from feedback_nlp.core.errors import DataValidationError, Problem, UserError
from feedback_nlp.operations import batch_cluster, batch_inputs, batch_outputs
from feedback_nlp.operations.batch_actor import ExportChanged, Scorer, local_export

ROWS_PER_CALL = 1024  # records per actor call (the predictor still runs --batch-size at a time)
PROBLEMS_SHOWN = 20


@dataclass(frozen=True)
class ScoringJob:
    export: str
    inputs: tuple[str, ...]
    output: str
    format: str = "parquet"
    on_error: str = "stop"
    rejects: str | None = None
    field_map: dict[str, str] = field(default_factory=dict)
    batch_size: int = 32
    dtype: str = "fp32"
    backend: str = "torch"
    address: str = "local"
    actors: int = 1
    cpus_per_actor: float | None = None
    gpus_per_actor: float = 0.0
    max_restarts: int = 3
    rows_per_file: int = 100_000
    rows_per_call: int = ROWS_PER_CALL
    overwrite: bool = False


def _runtime_options(job: ScoringJob) -> Any:
    """predict's device/dtype/backend checks; the device is each actor's (CUDA when it has a GPU),
    not the driver's, which on a cluster often has none."""
    from feedback_nlp.serving.runtime import RuntimeOptionError, RuntimeOptions, resolve

    if not job.gpus_per_actor:
        return resolve("cpu", job.dtype, job.backend, job.batch_size)
    if job.backend == "onnx" and job.dtype != "fp32":
        raise RuntimeOptionError(f"--backend onnx runs the exported fp32 graph; --dtype {job.dtype} applies to torch")
    resolve("cpu", "fp32", job.backend, job.batch_size)  # the backend name and the batch size
    return RuntimeOptions("cuda", job.dtype, job.backend, job.batch_size)


@dataclass
class CheckResult:
    valid: int = 0  # records that decode
    chars: int = 0  # their payloads' characters (sizes the scoring pass's blocks)
    bad: int = 0
    rejects_temp: str | None = None  # --rejects, written next to it; renamed when the output is


def _check_pass(files: list[Any], job: ScoringJob, kind: str, rows: int, log: Callable[[str], None]) -> CheckResult:
    """Read every file once, in file and line order: count the valid records; bad ones stop the
    run (stop: DataValidationError, as predict lists them) or go to --rejects (skip)."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ordered = ctx.execution_options.preserve_order
    ctx.execution_options.preserve_order = True  # problems in file and line order, streamed
    out = CheckResult(rejects_temp=f"{job.rejects}.tmp-{os.getpid()}" if job.rejects else None)
    shown: list[Problem] = []
    rejects = open(out.rejects_temp, "w", encoding="utf-8") if out.rejects_temp else None
    try:
        ds = batch_inputs.dataset(files, kind, job.field_map, "check", rows, batch_cluster.TASK_CPUS)
        for block in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            columns = (block.column(c).to_pylist() for c in batch_inputs.CHECK_COLUMNS)
            for source, line, fld, message, count, chars in zip(*columns):
                if fld is None:
                    out.valid += count
                    out.chars += chars
                    continue
                out.bad += 1
                problem = Problem(source, line, fld, message)
                if len(shown) < PROBLEMS_SHOWN:
                    shown.append(problem)
                    if job.on_error == "skip":
                        log(f"skipped: {problem}")
                if rejects is not None:
                    rejects.write(f"{problem}\n")
        if rejects is not None:
            rejects.flush()
            os.fsync(rejects.fileno())
    except BaseException:
        discard_rejects(out)
        raise
    finally:
        ctx.execution_options.preserve_order = ordered
        if rejects is not None:
            rejects.close()
    if out.bad and job.on_error == "stop":
        discard_rejects(out)
        raise DataValidationError(shown, limit=PROBLEMS_SHOWN, total=out.bad)
    if out.bad > PROBLEMS_SHOWN and job.on_error == "skip":
        log(f"skipped: ... and {out.bad - PROBLEMS_SHOWN} more" + (f" (all in {job.rejects})" if job.rejects else ""))
    return out


def discard_rejects(check: CheckResult) -> None:
    if check.rejects_temp and os.path.exists(check.rejects_temp):
        os.unlink(check.rejects_temp)


def _scoring_pool(ds: Any, job: ScoringJob, kind: str, options: Any, res: Any, version: str, rows: int) -> Any:
    from ray.data import ActorPoolStrategy

    return ds.map_batches(
        Scorer,
        fn_constructor_kwargs=dict(
            export=job.export, kind=kind, options=options, threads=res.threads, fmt=job.format, model_version=version
        ),
        batch_size=rows,
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=res.actors),
        num_cpus=res.cpus,
        num_gpus=res.gpus or None,
        max_restarts=job.max_restarts,
        max_task_retries=job.max_restarts,
    )


def _score_into(
    out: Any, files: list[Any], job: ScoringJob, kind: str, options: Any, res: Any, version: str, rows: int, size: float
) -> None:
    """The scoring pass: read tasks -> the actor pool -> Ray's writer, into out.temp."""
    with batch_cluster.block_bytes(size):
        ds = batch_inputs.dataset(files, kind, job.field_map, "score", rows, batch_cluster.TASK_CPUS)
    with warnings.catch_warnings():
        # Ray 2.60 takes max_restarts / max_task_retries only as **ray_remote_args, which it marks
        # deprecated (removed in 2.64) but names as the way to set them for an actor pool
        # (actor_pool_map_operator.py); bounded here, so a record that kills every actor fails
        # the run instead of restarting actors forever. Revisit with the pin.
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        ds = _scoring_pool(ds, job, kind, options, res, version, rows)
    remote = {"num_cpus": batch_cluster.TASK_CPUS}
    if job.format == "parquet":
        ds.write_parquet(out.temp, filesystem=out.fs, min_rows_per_file=job.rows_per_file, ray_remote_args=remote)
    else:
        ds.write_datasink(batch_outputs.jsonl_sink(out.temp, out.fs, job.rows_per_file), ray_remote_args=remote)


def run(job: ScoringJob, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Score every record of the inputs into job.output; returns the run's summary."""
    from feedback_nlp.serving.registry import preflight

    started = time.perf_counter()
    options = _runtime_options(job)
    if job.rejects and not os.path.isdir(os.path.dirname(os.path.abspath(job.rejects))):
        raise UserError(f"--rejects {job.rejects}: folder {os.path.dirname(job.rejects)} does not exist")
    out = batch_outputs.plan_output(job.output, job.format, job.overwrite)
    manifest = preflight(local_export(job.export), replace(options, device="cpu"))  # hashes; no model yet
    kind, version = manifest["record_kind"], manifest["model_version"]
    files = batch_inputs.expand_inputs(job.inputs)
    rows = job.batch_size * max(1, job.rows_per_call // job.batch_size)  # whole model batches

    import ray

    started_here = batch_cluster.connect(job.address)
    try:
        batch_cluster.configure_data()
        res = batch_cluster.plan_resources(
            job.actors, job.cpus_per_actor, job.gpus_per_actor, started_here and job.address == "local", log
        )
        check = _check_pass(files, job, kind, rows, log)
        valid, bad = check.valid, check.bad
        scoring = time.perf_counter()
        try:
            if valid:  # nothing to score (every record skipped, empty files): no actor, an empty output
                _score_into(out, files, job, kind, options, res, version, rows, check.chars / valid * rows)
            written = batch_outputs.count_rows(out.fs, out.temp, job.format)
            if written != valid:
                raise RuntimeError(f"wrote {written} rows for {valid} valid records; the output was not published")
            scored_s = time.perf_counter() - scoring
            summary = {
                "records": written,
                "skipped": bad,
                "model_version": version,
                "task": manifest["task"],
                "format": job.format,
                "inputs": [f.shown for f in files],
                "actors": res.actors,
                "cpus_per_actor": res.cpus,
                "gpus_per_actor": res.gpus,
                "scoring_seconds": round(scored_s, 3),
            }
            batch_outputs.publish(out, summary)
            if check.rejects_temp and job.rejects:
                os.replace(check.rejects_temp, job.rejects)
        except BaseException as e:
            batch_outputs.discard(out)
            discard_rejects(check)
            cause = getattr(e, "cause", None)
            if isinstance(cause, ExportChanged) or isinstance(e, ExportChanged):
                raise UserError(f"--export {job.export}: {cause or e}; nothing was written") from None
            raise
    finally:
        if started_here:
            ray.shutdown()
    total_s = time.perf_counter() - started
    log(
        f"wrote {written} predictions to {out.shown} ({job.format}, model {version}"
        + (f", {bad} bad record(s) skipped" if bad else "")
        + f") in {total_s:.1f} s: {written / total_s:.1f} records/s end to end, "
        f"{written / max(scored_s, 1e-9):.1f} records/s in the scoring pass; "
        f"{res.actors} actor(s) x {res.cpus:g} CPU" + (f" + {res.gpus:g} GPU" if res.gpus else "")
    )
    return {**summary, "seconds": round(total_s, 3)}
