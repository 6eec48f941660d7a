"""`serve`: an export folder behind HTTP (LitServe), with dynamic batching and Prometheus metrics.

    feedback-nlp serve --export DIR [--device auto|cpu|cuda] [--dtype fp32|bf16|fp16] [--backend torch|onnx]
          [--max-batch-size 8] [--batch-timeout 0.01] [--workers-per-device 1]
          [--host 127.0.0.1] [--port 8000] [--max-records 256] [--max-chars 20000]
          [--prediction-log DIR [--log-text] [--log-fsync]]

Endpoints: POST /predict (a JSON list of records -> one row per record, matched by `id`),
GET /health (503 until the model is loaded and warmed up, then 200), GET /metadata (the
manifest), GET /metrics (Prometheus). Everything that can be checked before the workers start
(flags, manifest, task, weight hashes, backend files) is, with a clear error and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from feedback_nlp.cli.args import Parser
from feedback_nlp.core.errors import UserError
from feedback_nlp.serving.runtime import BACKENDS, DEVICES, DTYPES

DEFAULT_MAX_BODY = 16 * 1024 * 1024


def parser() -> argparse.ArgumentParser:
    p = Parser("serve", __doc__)
    p.add_argument("--export", required=True, type=Path, help="export folder (manifest.json + weights)")
    p.add_argument("--device", default="auto", help=f"one of {', '.join(DEVICES)} (default auto)")
    p.add_argument("--dtype", default="fp32", choices=DTYPES)
    p.add_argument("--backend", default="torch", choices=BACKENDS)
    p.add_argument("--max-batch-size", type=int, default=8, help="requests merged into one model call (1: off)")
    p.add_argument("--batch-timeout", type=float, default=0.01, help="seconds to wait to fill a batch")
    p.add_argument("--batch-size", type=int, default=64, help="records per forward pass inside a model call")
    p.add_argument("--workers-per-device", type=int, default=1)
    p.add_argument("--host", default="127.0.0.1", choices=("127.0.0.1", "0.0.0.0", "::"))
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-records", type=int, default=256, help="records per request (over: 413)")
    p.add_argument("--max-chars", type=int, default=20000, help="characters per text (over: 413)")
    p.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds a request may wait (then 504)")
    p.add_argument("--metrics-dir", default=None, help="prometheus multiprocess directory (default: a temp dir)")
    p.add_argument("--log-level", default="warning")
    p.add_argument("--prediction-log", default=None, help="keep every scored record here (folder or s3://...)")
    p.add_argument("--log-text", action="store_true", help="with --prediction-log: keep the input text too")
    p.add_argument("--log-fsync", action="store_true", help="with --prediction-log: fsync every batch")
    return p


class UsageError(UserError, ValueError):
    pass


def check_args(a: argparse.Namespace) -> None:
    positive = {
        "--max-batch-size": a.max_batch_size,
        "--batch-size": a.batch_size,
        "--workers-per-device": a.workers_per_device,
        "--max-records": a.max_records,
        "--max-chars": a.max_chars,
        "--max-body-bytes": a.max_body_bytes,
    }
    for flag, v in positive.items():
        if v < 1:
            raise UsageError(f"{flag} must be >= 1, got {v}")
    if a.batch_timeout < 0 or a.timeout <= 0 or a.batch_timeout >= a.timeout:
        raise UsageError(f"need 0 <= --batch-timeout < --timeout, got {a.batch_timeout} and {a.timeout}")
    if (a.log_text or a.log_fsync) and not a.prediction_log:
        raise UsageError("--log-text and --log-fsync need --prediction-log")
    if not 1024 <= a.port <= 65535:
        raise UsageError(f"--port must be in 1024..65535, got {a.port}")
    import socket

    family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:  # a taken port fails here, before any model work
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((a.host, a.port))
        except OSError as e:
            raise UsageError(f"--port {a.port}: cannot listen on {a.host}:{a.port} ({e.strerror})") from None


def build(a: argparse.Namespace, temp_dirs: list[str]) -> tuple[Any, dict[str, Any]]:
    """The LitServer for the flags, after every check that needs no model. Temp folders it makes
    are appended to `temp_dirs` (the caller removes them when the server stops or fails)."""
    from feedback_nlp.serving.registry import preflight
    from feedback_nlp.serving.runtime import resolve

    options = resolve(a.device, a.dtype, a.backend, a.batch_size)
    manifest = preflight(a.export, options)
    log_options = None
    if a.prediction_log:
        from feedback_nlp.serving.prediction_log import check_root, compact

        root = check_root(a.prediction_log)
        compact(root)  # segments a killed server left: into Parquet before new ones start
        log_options = {"root": root, "task": manifest["task"], "log_text": a.log_text, "fsync": a.log_fsync}

    import tempfile

    from feedback_nlp.serving import metrics as metrics_mod

    if a.metrics_dir is None:
        temp_dirs.append(tempfile.mkdtemp(prefix="feedback-serve-metrics-"))
    metrics_mod.enable(a.metrics_dir or temp_dirs[-1])  # before prometheus_client is imported anywhere

    import litserve as ls
    from fastapi import Response
    from fastapi.responses import JSONResponse

    from feedback_nlp.core.records import Limits
    from feedback_nlp.serving import openapi
    from feedback_nlp.serving.api import RecordsAPI, worker_threads
    from feedback_nlp.serving.middleware import ServingMiddleware

    device = options.device.split(":")[0]
    ready_dir = tempfile.mkdtemp(prefix="feedback-serve-ready-")
    temp_dirs.append(ready_dir)
    n_devices = torch_device_count() if device == "cuda" else 1
    api = RecordsAPI(
        a.export.resolve(),
        manifest["record_kind"],
        manifest["model_version"],
        device,
        a.dtype,
        a.backend,
        a.batch_size,
        a.max_batch_size,
        a.batch_timeout,
        worker_threads(device, a.workers_per_device),
        ready_dir,
        a.workers_per_device * n_devices,
        log_options,
    )
    limits = Limits(a.max_records, a.max_chars)
    devices: Any = "auto" if device == "cuda" else 1  # every visible GPU; one CPU "device"
    routes: set[str] = set()  # the metrics' route labels, filled below once every route exists
    edge = {"kind": manifest["record_kind"], "limits": limits, "max_body_bytes": a.max_body_bytes, "routes": routes}
    server = ls.LitServer(
        api,
        accelerator=device,
        devices=devices,
        workers_per_device=a.workers_per_device,
        timeout=a.timeout,
        model_metadata={"task": manifest["task"], "model_version": manifest["model_version"]},
        middlewares=[(ServingMiddleware, edge)],
    )

    # no return annotations: FastAPI would resolve them as response models
    async def metadata():  # type: ignore[no-untyped-def]
        return JSONResponse(manifest)

    async def prometheus():  # type: ignore[no-untyped-def]
        body, content_type = metrics_mod.exposition()
        return Response(content=body, media_type=content_type)

    server.app.add_api_route("/metadata", metadata, methods=["GET"])
    server.app.add_api_route("/metrics", prometheus, methods=["GET"])
    openapi.install(server.app, manifest["record_kind"], manifest["task"], limits)
    routes.update(r.path for r in server.app.routes if hasattr(r, "path"))
    return server, manifest


def torch_device_count() -> int:
    import torch

    return max(1, torch.cuda.device_count())


_SERVER_PID = os.getpid()


def _sigterm(signum: int, frame: Any) -> None:
    """SIGTERM from a process manager: LitServe's graceful shutdown (its KeyboardInterrupt path).
    The API-server and worker processes LitServe forks inherit this handler; when the shutdown
    stops them with SIGTERM they just exit."""
    if os.getpid() != _SERVER_PID:
        raise SystemExit(0)
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    a = parser().parse_args(argv)
    from feedback_nlp.core.errors import UserError

    temp_dirs: list[str] = []
    try:
        try:
            check_args(a)
            server, manifest = build(a, temp_dirs)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(
            f"serving {manifest['task']} model {manifest['model_version']} from {a.export} on "
            f"http://{a.host}:{a.port} (POST /predict, GET /health /metadata /metrics /openapi.json)",
            flush=True,
        )
        global _SERVER_PID
        _SERVER_PID = os.getpid()
        signal.signal(signal.SIGTERM, _sigterm)
        with contextlib.suppress(KeyboardInterrupt):
            server.run(host=a.host, port=a.port, generate_client_file=False, log_level=a.log_level)
        return 0
    finally:  # the ready markers and metrics samples of this server only
        for path in temp_dirs:
            shutil.rmtree(path, ignore_errors=True)
