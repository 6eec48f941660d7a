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

import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from feedback_nlp.core.errors import DataValidationError, Problem, UserError
from feedback_nlp.operations import batch_cluster, batch_inputs, batch_outputs

ROWS_PER_CALL = 1024  # records per actor call (the predictor still runs --batch-size at a time)
PROBLEMS_SHOWN = 20


class ExportChanged(RuntimeError):
    """The export's model_version differs from the one checked at the start (a repository updated mid-run)."""


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


def local_export(export: str) -> str:
    """A local folder holding the export: itself, or this node's cached copy of an object-store
    export (one copy per node and model version, shared by its actors and later runs; its file
    hashes are checked on load, as for any export)."""
    if not batch_inputs.is_uri(export):
        return export
    import hashlib
    import tempfile

    from pyarrow import fs as pafs

    fs, path = batch_inputs.filesystem(export)
    try:
        with fs.open_input_stream(f"{path}/manifest.json") as f:
            version = json.loads(f.read()).get("model_version", "unversioned")
    except (OSError, ValueError):
        raise UserError(f"--export {export}: no manifest.json there (not an export folder)") from None
    root = os.environ.get("FEEDBACK_NLP_EXPORT_CACHE") or os.path.join(tempfile.gettempdir(), "feedback-nlp-exports")
    key = hashlib.sha256(f"{export}\n{version}".encode()).hexdigest()[:16]
    target = os.path.join(root, key)
    if os.path.isfile(os.path.join(target, "manifest.json")):
        return target
    os.makedirs(root, exist_ok=True)
    partial = tempfile.mkdtemp(prefix=f".{key}.", dir=root)
    pafs.copy_files(path, partial, source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
    try:
        os.rename(partial, target)  # atomic: another actor of this node may have won the race
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    return target


class Scorer:
    """One actor: loads the export once, then scores the batches Ray Data hands it."""

    def __init__(self, export: str, kind: str, options: Any, threads: int, fmt: str, model_version: str):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch

        from feedback_nlp.serving.registry import load_export

        torch.set_num_threads(threads)
        self.kind, self.fmt, self.batch_size = kind, fmt, options.batch_size
        self.predictor, manifest = load_export(local_export(export), options)
        self.model_version = manifest["model_version"]
        if self.model_version != model_version:
            raise ExportChanged(f"the export is now model {self.model_version}, the run started with {model_version}")

    def __call__(self, batch: Any) -> Any:
        from feedback_nlp.core.records import decode_row
        from feedback_nlp.serving.protocol import stamp_rows

        records = []
        for i, text in enumerate(batch.column("payload").to_pylist()):
            record = decode_row(json.loads(text), "<payload>", i + 1, self.kind)  # decoded once already
            if isinstance(record, Problem):
                raise RuntimeError(f"a checked record no longer decodes: {record}")
            records.append(record)
        rows: list[dict[str, Any]] = []
        for start in range(0, len(records), self.batch_size):  # predict's chunks (cli/predict.py score_stream)
            chunk = records[start : start + self.batch_size]
            keyed = [replace(r, id=f"{i}:{r.id}") for i, r in enumerate(chunk)]
            predicted = self.predictor.predict(keyed)
            changed = {row["model_version"] for row in predicted if "model_version" in row} - {self.model_version}
            if changed:  # a repository updated (repo add/delete) while the job ran: one model per output
                raise ExportChanged(
                    f"the export is now model {changed.pop()}, the run started with {self.model_version}"
                )
            stamped = stamp_rows(keyed, predicted, self.model_version)
            rows += [{**row, "id": rec.id} for rec, row in zip(chunk, stamped)]
        return batch_outputs.rows_to_table(rows, self.fmt)


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


def _check_pass(
    files: list[Any], job: ScoringJob, kind: str, rows: int, log: Callable[[str], None]
) -> tuple[int, int, int]:
    """(valid records, their payload characters, bad records), reading every file once in file
    order; bad records stop the run (stop) or go to --rejects (skip)."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ordered = ctx.execution_options.preserve_order
    ctx.execution_options.preserve_order = True  # problems in file and line order, streamed
    valid, size, shown, bad = 0, 0, [], 0
    rejects = open(f"{job.rejects}.tmp-check", "w", encoding="utf-8") if job.rejects else None
    try:
        ds = batch_inputs.dataset(files, kind, job.field_map, "check", rows, batch_cluster.TASK_CPUS)
        for block in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            for source, line, fld, message, count, chars in zip(
                *(block.column(c).to_pylist() for c in batch_inputs.CHECK_COLUMNS)
            ):
                if fld is None:
                    valid += count
                    size += chars
                    continue
                bad += 1
                problem = Problem(source, line, fld, message)
                if len(shown) < PROBLEMS_SHOWN:
                    shown.append(problem)
                    if job.on_error == "skip":
                        log(f"skipped: {problem}")
                if rejects is not None:
                    rejects.write(f"{problem}\n")
        if bad and job.on_error == "stop":
            raise DataValidationError(shown, limit=PROBLEMS_SHOWN, total=bad)
        if rejects is not None:
            rejects.flush()
            os.fsync(rejects.fileno())
            rejects.close()
            os.replace(f"{job.rejects}.tmp-check", job.rejects)
        if bad > PROBLEMS_SHOWN and job.on_error == "skip":
            log(f"skipped: ... and {bad - PROBLEMS_SHOWN} more" + (f" (all in {job.rejects})" if job.rejects else ""))
    finally:
        ctx.execution_options.preserve_order = ordered
        if rejects is not None and not rejects.closed:
            rejects.close()
        if rejects is not None and os.path.exists(f"{job.rejects}.tmp-check"):
            os.unlink(f"{job.rejects}.tmp-check")
    return valid, size, bad


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
        valid, size, bad = _check_pass(files, job, kind, rows, log)
        scoring = time.perf_counter()
        try:
            with batch_cluster.block_bytes(size / max(valid, 1) * rows):
                ds = batch_inputs.dataset(files, kind, job.field_map, "score", rows, batch_cluster.TASK_CPUS)
            with warnings.catch_warnings():
                # Ray 2.60 takes max_restarts / max_task_retries only as **ray_remote_args, which it
                # marks deprecated (removed in 2.64) but names as the way to set them for an actor
                # pool (actor_pool_map_operator.py); bounded here, so a record that kills every
                # actor fails the run instead of restarting actors forever. Revisit with the pin.
                warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
                ds = _scoring_pool(ds, job, kind, options, res, version, rows)
            write_args = dict(
                min_rows_per_file=job.rows_per_file, ray_remote_args={"num_cpus": batch_cluster.TASK_CPUS}
            )
            if job.format == "parquet":
                ds.write_parquet(out.temp, filesystem=out.fs, **write_args)
            else:
                ds.write_datasink(
                    batch_outputs.jsonl_sink(out.temp, out.fs, job.rows_per_file),
                    ray_remote_args={"num_cpus": batch_cluster.TASK_CPUS},
                )
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
        except BaseException as e:
            batch_outputs.discard(out)
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
