"""`serve`: export folders behind HTTP (LitServe), with dynamic batching and Prometheus metrics.

    feedback-nlp serve --export DIR [--device auto|cpu|cuda] [--dtype fp32|bf16|fp16] [--backend torch|onnx]
          [--max-batch-size 8] [--batch-timeout 0.01] [--workers-per-device 1]
          [--host 127.0.0.1] [--port 8000] [--max-records 256] [--max-chars 20000]
          [--prediction-log DIR [--log-text] [--log-fsync]]
    feedback-nlp serve --export prod=DIR --export cand=DIR2 [--default prod]
          [--canary cand --canary-fraction 0.1 | --shadow cand --prediction-log LOG] [--reload-poll 1]

Endpoints: POST /predict (a JSON list of records -> one row per record, matched by `id`),
POST /predict/NAME (export NAME alone), GET /health (503 until every export is loaded and
warmed up, then 200), GET /metadata[/NAME] (the manifest), GET /metrics (Prometheus), POST
/admin/reload and GET /admin/exports (loopback only). POST /predict is answered by the default
export; with --canary a stable, id-hashed share of its records by the canary; with --shadow a
copy of every request is scored by the shadow export into the prediction log only. An export
given as a symlink (`current`) is reloaded without downtime when the link is re-pointed.
Everything that can be checked before the workers start (flags, manifests, tasks, file hashes,
backend files) is, with a clear error and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
from typing import Any, Sequence

from feedback_nlp.cli.args import Parser
from feedback_nlp.core.errors import UserError
from feedback_nlp.serving.runtime import BACKENDS, DEVICES, DTYPES

DEFAULT_MAX_BODY = 16 * 1024 * 1024


def parser() -> argparse.ArgumentParser:
    p = Parser("serve", __doc__)
    p.add_argument(
        "--export",
        required=True,
        action="append",
        metavar="[NAME=]DIR",
        help="export folder; repeat as NAME=DIR to serve several (POST /predict/NAME)",
    )
    p.add_argument("--default", default=None, help="the export POST /predict answers with (default: the first)")
    p.add_argument("--canary", default=None, help="export answering an id-hashed share of POST /predict's records")
    p.add_argument("--canary-fraction", type=float, default=None, help="the canary's share of records (default 0.1)")
    p.add_argument("--shadow", default=None, help="export scoring a copy of every POST /predict (log only)")
    p.add_argument("--shadow-max-inflight", type=int, default=64, help="shadow copies in flight per API process")
    p.add_argument("--reload-poll", type=float, default=1.0, help="seconds between reload checks (0: no reload)")
    p.add_argument("--reload-timeout", type=float, default=300.0, help="seconds POST /admin/reload waits")
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
    if a.canary_fraction is not None and a.canary is None:
        raise UsageError("--canary-fraction needs --canary NAME")
    if a.shadow is not None and not a.prediction_log:
        raise UsageError("--shadow needs --prediction-log: the shadow's rows go only to the log")
    if a.reload_poll < 0 or a.reload_timeout <= 0:
        raise UsageError(f"need --reload-poll >= 0 and --reload-timeout > 0, got {a.reload_poll}, {a.reload_timeout}")
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
    check_socket_dir()


def check_socket_dir() -> None:
    """The worker processes talk over Unix sockets made under the temp folder
    (`<tmp>/pymp-XXXXXXXX/listener-XXXXXXXX`), and a socket path is limited to 107 bytes: a
    long TMPDIR made a worker die at start with `OSError: AF_UNIX path too long`."""
    import tempfile

    tmp = tempfile.gettempdir()
    longest = len(os.fsencode(os.path.join(tmp, "pymp-XXXXXXXX", "listener-XXXXXXXX")))
    if longest > 107:
        raise UsageError(
            f"the temp folder {tmp} is too long for the worker processes' Unix sockets "
            f"({longest} of at most 107 bytes): set TMPDIR to a shorter folder, e.g. TMPDIR=/tmp"
        )


def traffic_of(a: argparse.Namespace, manifests: dict[str, dict[str, Any]]) -> Any:
    """The routing of the flags (serving/routes.py), checked against the exports' tasks."""
    from feedback_nlp.serving.routes import Route, Traffic

    routes = {n: Route(n, m["record_kind"], m["task"], m["model_version"]) for n, m in manifests.items()}
    fraction = 0.1 if a.canary_fraction is None else a.canary_fraction
    default = a.default or next(iter(manifests))
    return Traffic(routes, default, a.canary, fraction, a.shadow, a.shadow_max_inflight)


def build(a: argparse.Namespace, temp_dirs: list[str]) -> tuple[Any, Any]:
    """The LitServer for the flags, after every check that needs no model. Temp folders it makes
    are appended to `temp_dirs` (the caller removes them when the server stops or fails)."""
    from feedback_nlp.serving.registry import preflight
    from feedback_nlp.serving.routes import parse_exports
    from feedback_nlp.serving.runtime import resolve

    options = resolve(a.device, a.dtype, a.backend, a.batch_size)
    exports = parse_exports(a.export)
    if a.default is not None and a.default not in exports:
        raise UsageError(f"--default {a.default!r} is not an --export name ({', '.join(exports)})")
    manifests = {name: preflight(path, options) for name, path in exports.items()}
    traffic = traffic_of(a, manifests)
    root = None
    if a.prediction_log:
        from feedback_nlp.serving.prediction_log import check_root, compact

        root = check_root(a.prediction_log)
        compact(root)  # segments a killed server left: into Parquet before new ones start

    import tempfile

    from feedback_nlp.serving import metrics as metrics_mod

    if a.metrics_dir is None:
        temp_dirs.append(tempfile.mkdtemp(prefix="feedback-serve-metrics-"))
    metrics_mod.enable(a.metrics_dir or temp_dirs[-1])  # before prometheus_client is imported anywhere

    import litserve as ls
    from fastapi import Response

    from feedback_nlp.core.records import Limits
    from feedback_nlp.serving import admin, openapi
    from feedback_nlp.serving.api import RecordsAPI, worker_threads
    from feedback_nlp.serving.middleware import ServingMiddleware

    device = options.device.split(":")[0]
    ready_dir = tempfile.mkdtemp(prefix="feedback-serve-ready-")  # also the reload control folder
    temp_dirs.append(ready_dir)
    n_devices = torch_device_count() if device == "cuda" else 1
    workers = a.workers_per_device * n_devices
    apis = [
        RecordsAPI(
            exports[name],  # as given: a `current` link is watched (serving/reload.py)
            route.kind,
            route.model_version,
            device,
            a.dtype,
            a.backend,
            a.batch_size,
            a.max_batch_size,
            a.batch_timeout,
            worker_threads(device, a.workers_per_device * len(exports)),
            ready_dir,
            workers,
            None if root is None else {"root": root, "task": route.task, "log_text": a.log_text, "fsync": a.log_fsync},
            name=name,
            api_path=route.path,
            reload_poll=a.reload_poll,
        )
        for name, route in traffic.routes.items()
    ]
    limits = Limits(a.max_records, a.max_chars)
    devices: Any = "auto" if device == "cuda" else 1  # every visible GPU; one CPU "device"
    routes: set[str] = set()  # the metrics' route labels, filled below once every route exists
    default = traffic.routes[traffic.default]
    edge = {
        "kind": default.kind,
        "limits": limits,
        "max_body_bytes": a.max_body_bytes,
        "routes": routes,
        "traffic": traffic,
    }
    server = ls.LitServer(
        apis,
        accelerator=device,
        devices=devices,
        workers_per_device=a.workers_per_device,
        timeout=a.timeout,
        model_metadata={
            "task": default.task,
            "model_version": default.model_version,
            "routing": traffic.describe(),
            "exports": {n: {"task": r.task, "model_version": r.model_version} for n, r in traffic.routes.items()},
        },
        middlewares=[(ServingMiddleware, edge)],
    )

    # no return annotations: FastAPI would resolve them as response models
    async def prometheus():  # type: ignore[no-untyped-def]
        body, content_type = metrics_mod.exposition()
        return Response(content=body, media_type=content_type)

    server.app.add_api_route("/metrics", prometheus, methods=["GET"])
    admin.install(
        server.app,
        ready_dir,
        manifests,
        traffic.default,
        dict.fromkeys(manifests, workers),
        a.reload_poll,
        a.reload_timeout,
    )
    openapi.install(server.app, default.kind, default.task, limits, traffic)
    routes.update(r.path for r in server.app.routes if hasattr(r, "path"))
    routes.add("/predict")
    return server, traffic


def torch_device_count() -> int:
    import torch

    return max(1, torch.cuda.device_count())


_SERVER_PID = os.getpid()
_SERVER: Any = None


def _sigterm(signum: int, frame: Any) -> None:
    """SIGTERM from a process manager: LitServe's own graceful shutdown. Once the server runs,
    its shutdown event is set (what LitServe's shutdown endpoint does) from a new thread: the
    main thread may be inside a call on the same manager connection. Setting the event also
    stops LitServe's worker monitor, which otherwise sees the first stopped worker as a crash
    and starts a second shutdown (several exports: several workers). Before that point, the
    KeyboardInterrupt path. The API-server and worker processes LitServe forks inherit this
    handler; when the shutdown stops them with SIGTERM they just exit."""
    if os.getpid() != _SERVER_PID:
        raise SystemExit(0)
    event = getattr(_SERVER, "_shutdown_event", None)
    if event is None:
        raise KeyboardInterrupt
    import threading

    threading.Thread(target=event.set, name="sigterm-shutdown", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    a = parser().parse_args(argv)
    from feedback_nlp.core.errors import UserError

    temp_dirs: list[str] = []
    try:
        try:
            check_args(a)
            server, traffic = build(a, temp_dirs)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for r in traffic.routes.values():
            role = {traffic.default: "default", traffic.canary: "canary", traffic.shadow: "shadow"}.get(r.name)
            print(f"export {r.name}: {r.task} model {r.model_version} at POST {r.path}" + (f" ({role})" * bool(role)))
        print(
            f"serving on http://{a.host}:{a.port} (POST /predict, GET /health /metadata /metrics /openapi.json)",
            flush=True,
        )
        global _SERVER_PID, _SERVER
        _SERVER_PID, _SERVER = os.getpid(), server
        signal.signal(signal.SIGTERM, _sigterm)
        with contextlib.suppress(KeyboardInterrupt):
            server.run(host=a.host, port=a.port, generate_client_file=False, log_level=a.log_level)
        return 0
    finally:  # the ready markers and metrics samples of this server only
        for path in temp_dirs:
            shutil.rmtree(path, ignore_errors=True)
