"""The LitServe API: an export's predictor behind setup / decode / predict / encode.

Why LitServe: it mirrors a LightningModule's shape (setup, then per-request hooks), runs the
model in its own worker processes and batches concurrent requests dynamically (up to
`max_batch_size` requests or `batch_timeout` seconds), which is where the CPU throughput comes
from. A request is a list of records; a dynamic batch merges several requests' records into
one model call and gives every request back exactly its own rows, matched by id.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import litserve as ls

from feedback_nlp.core.errors import DataValidationError
from feedback_nlp.core.records import QuestionRecord, TextRecord, TranscriptRecord, Turn, decode_request
from feedback_nlp.serving.middleware import ERROR_KEY, error_body
from feedback_nlp.serving.protocol import stamp_rows
from feedback_nlp.serving.reload import Active, Reloader

WARMUP = {
    "claim": [TextRecord("warmup-0", "The heel broke off and I fell.", "en"), TextRecord("warmup-1", "ok")],
    "feedback": [TextRecord("warmup-0", "The zipper broke after one week.")],
    "transcript": [
        TranscriptRecord("warmup-0", (Turn("customer", "Hi. Where is my package?"), Turn("agent", "Let me check.")))
    ],
    "question": [QuestionRecord("warmup-0", "Where is my package?")],
}


class RecordsAPI(ls.LitAPI):
    def __init__(
        self,
        export_dir: str | Path,
        kind: str,
        model_version: str,
        device: str = "cpu",
        dtype: str = "fp32",
        backend: str = "torch",
        batch_size: int = 32,
        max_batch_size: int = 8,
        batch_timeout: float = 0.01,
        threads: int | None = None,
        ready_dir: str | Path = "",
        workers: int = 1,
        prediction_log: dict[str, Any] | None = None,
        name: str = "default",
        api_path: str = "/predict",
        reload_poll: float = 0.0,
    ):
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout, api_path=api_path)
        self.export_dir, self.kind, self.model_version = str(export_dir), kind, model_version
        self.dtype, self.backend, self.batch_size, self.threads = dtype, backend, batch_size, threads
        self.requested_device, self.ready_dir, self.workers = device, str(ready_dir), workers
        # `export_dir` as given (a `current` link stays a link); reload_poll > 0: watched (serving/reload.py)
        self.name, self.reload_poll = name, reload_poll
        self._active: Active | None = None  # swapped as one reference by a reload
        self.log_options = prediction_log  # PredictionLog arguments; the log itself is per worker
        self.prediction_log: Any = None
        self._loaded: threading.Event | None = None
        self._failure: BaseException | None = None
        self._device = "cpu"

    @property
    def predictor(self) -> Any:
        """The predictor serving now (None until loaded)."""
        return None if self._active is None else self._active.predictor

    @predictor.setter
    def predictor(self, value: Any) -> None:
        self._active = Active(value, self.model_version, self.export_dir)

    def setup(self, device: str) -> None:
        """Start loading the export on the worker's device, in the background.

        Why not load here: LitServe opens the HTTP port only after a worker's setup returns, so a
        load balancer would see a refused connection, not the 503 it understands. The worker
        writes a ready marker after loading AND a warm-up prediction; /health (`health`, in the
        API-server processes) answers 200 once every worker has one. Requests that arrive
        earlier wait for the load instead of failing.
        """
        self._loaded = threading.Event()
        if self.log_options is not None:
            self._open_log()
        threading.Thread(target=self._load, args=(device,), name="load-export", daemon=True).start()

    def _open_log(self) -> None:
        """This worker's prediction log (serving/prediction_log.py), flushed to Parquet when the
        worker stops: LitServe stops workers with SIGTERM, which by default ends a process
        without cleanup, so SIGTERM exits through Python and the finalizer closes the log."""
        import multiprocessing.util
        import signal

        from feedback_nlp.serving.prediction_log import PredictionLog

        assert self.log_options is not None
        self.prediction_log = PredictionLog(**self.log_options)
        multiprocessing.util.Finalize(self, self.prediction_log.close, exitpriority=100)
        with contextlib.suppress(ValueError):  # not the main thread (in-process tests)
            signal.signal(signal.SIGTERM, _exit_on_sigterm)

    def _load(self, device: str) -> None:
        assert self._loaded is not None
        try:
            import torch

            if self.threads:
                torch.set_num_threads(self.threads)
            self._device = device if self.requested_device != "cpu" else "cpu"
            self._active = self._load_active(os.path.realpath(self.export_dir))
            if self.ready_dir:
                Path(self.ready_dir, f"ready-{self.name}@{os.getpid()}").touch()
        except BaseException as e:  # reported on every request; /health stays 503
            self._failure = e
            logging.getLogger(__name__).exception("loading %s failed", self.export_dir)
        finally:
            self._loaded.set()
        if self.ready_dir and self.reload_poll > 0:
            reloader = Reloader(
                self.name,
                self.export_dir,
                self.ready_dir,
                self._load_active,
                self._swap,
                lambda: self._active,
                self.reload_poll,
            )
            failure = None if self._failure is None else repr(self._failure)
            reloader.write_state("loaded" if self._active is not None else "failed", failure)
            reloader.start()

    def _load_active(self, folder: str) -> Active:
        """An export loaded from `folder` (hashes checked by load_export), of this route's record
        kind, after a warm-up prediction: ready to take the next batch."""
        from feedback_nlp.serving.manifest import ExportError
        from feedback_nlp.serving.registry import load_export
        from feedback_nlp.serving.runtime import resolve

        options = resolve(self._device, self.dtype, self.backend, self.batch_size)
        predictor, manifest = load_export(folder, options)
        if manifest["record_kind"] != self.kind:
            raise ExportError(
                f"{folder}: a {manifest['task']} export reads {manifest['record_kind']} records; "
                f"route {self.name!r} serves {self.kind} records"
            )
        serving = None if self._active is None else self._active.task
        if serving is not None and manifest["task"] != serving:
            raise ExportError(f"{folder}: a {manifest['task']} export; route {self.name!r} serves {serving}")
        predictor.predict(WARMUP[self.kind])
        return Active(predictor, manifest["model_version"], folder, manifest["task"])

    def _swap(self, active: Active) -> None:
        self._active = active  # one reference: a running batch keeps the one it took

    def health(self) -> bool:
        if not self.ready_dir:
            return True
        return len(list(Path(self.ready_dir).glob(f"ready-{self.name}@*"))) >= self.workers

    # no annotations on `request` and the return of encode_response: LitServe reads them as the
    # HTTP request/response types of the endpoint
    def decode_request(self, request):  # type: ignore[no-untyped-def]
        """Records of one request. Already validated at the HTTP edge (middleware.py); should it
        fail here, the request gets its error object instead of failing its whole batch."""
        try:
            return decode_request(request, self.kind)
        except DataValidationError as e:
            return error_body(e)

    def batch(self, inputs: list[Any]) -> list[Any]:
        return inputs

    def predict(self, x: Any) -> Any:
        """Score a dynamic batch: every request's records in one model call. Should that call
        fail, each request is scored alone, so only the request whose records the model cannot
        score gets an error (500, logged) and the others their rows."""
        if self._loaded is not None:
            self._loaded.wait()
        active = self._active  # this batch's export, whatever a reload swaps in meanwhile
        if active is None:  # the load failed (logged): unavailable, not a bad request
            from fastapi import HTTPException

            raise HTTPException(503, f"the model failed to load: {self._failure!r}")
        groups: list[Any] = list(x) if self.max_batch_size > 1 else [x]
        live = [i for i, g in enumerate(groups) if not isinstance(g, dict)]  # dicts: errors from decode
        out: list[Any] = list(groups)
        try:
            for i, rows in zip(live, self._score([groups[i] for i in live], active)):
                out[i] = rows
        except Exception:
            for i in live:
                try:
                    out[i] = self._score([groups[i]], active)[0]
                except Exception as e:
                    logging.getLogger(__name__).exception("a request failed in the model")
                    out[i] = {ERROR_KEY: "the model failed on this request", "detail": repr(e)[:500], "status": 500}
        return out if self.max_batch_size > 1 else out[0]

    def _score(self, groups: Sequence[list[Any]], active: Active) -> list[list[dict[str, Any]]]:
        """One model call for every group's records; each group's rows, under their own ids."""
        from feedback_nlp.serving.metrics import metrics

        if not groups:
            return []
        # ids are unique within a request, not across the requests of a dynamic batch: the model
        # sees "<request>:<id>" and every row goes back to its request under its own id
        flat = [replace(r, id=f"{g}:{r.id}") for g, group in enumerate(groups) for r in group]
        m = metrics()
        m.batch_records.observe(len(flat))
        m.batch_requests.observe(len(groups))
        raw = active.predictor.predict(flat)
        # a question repository updated in place names the generation that answered in its rows
        version = str((raw[0] if raw else {}).get("model_version") or active.model_version)
        rows = stamp_rows(flat, raw, version)
        m.records.inc(len(flat))
        out, start = [], 0
        for group in groups:
            out.append([{**row, "id": rec.id} for rec, row in zip(group, rows[start : start + len(group)])])
            start += len(group)
        if self.prediction_log is not None:  # in the log before any response is sent
            self.prediction_log.append([r for g in groups for r in g], [row for g in out for row in g])
        return out

    def unbatch(self, output: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        return output

    def encode_response(self, output):  # type: ignore[no-untyped-def]
        return output


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def worker_threads(device: str, workers_per_device: int) -> int | None:
    """CPU threads per inference worker, so N workers do not each take every core."""
    if device != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, (os.cpu_count() or 1) // max(1, workers_per_device))
