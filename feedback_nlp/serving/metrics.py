"""Prometheus metrics of the server, correct across its processes.

Why multiprocess mode: LitServe answers HTTP in several API-server processes and predicts in
separate inference workers, so a per-process registry would report whichever process answered
the scrape. prometheus_client's multiprocess mode writes every process's samples to files in
PROMETHEUS_MULTIPROC_DIR and sums them at scrape time; `enable()` must run before
prometheus_client is first imported, in the parent process (children inherit the variable).
"""

from __future__ import annotations

import os
from typing import Any

ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def enable(directory: str) -> str:
    """Point prometheus_client at `directory` (emptied of earlier samples) for this server's processes."""
    path = directory
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):  # stale samples of an earlier run would be summed in
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))
    os.environ[ENV] = path
    return path


class Metrics:
    """The server's metrics; created lazily so that `enable()` runs first."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter(
            "feedback_serve_requests", "HTTP requests by endpoint and status code", ["endpoint", "status"]
        )
        self.records = Counter("feedback_serve_records", "Records scored")
        self.latency = Histogram(
            "feedback_serve_request_latency_seconds",
            "POST /predict latency (receipt to response)",
            buckets=LATENCY_BUCKETS,
        )
        self.queue_depth = Gauge(
            "feedback_serve_queue_depth",
            "Predict requests received and not yet answered (queued or being predicted)",
            multiprocess_mode="livesum",
        )
        self.batch_records = Histogram("feedback_serve_batch_records", "Records per model batch", buckets=BATCH_BUCKETS)
        self.batch_requests = Histogram(
            "feedback_serve_batch_requests", "Requests merged into one model batch", buckets=BATCH_BUCKETS
        )
        # several exports behind one server (serving/traffic.py, serving/reload.py)
        self.production_records = Counter(
            "feedback_serve_production_records", "Records of POST /predict, by the export that answered", ["export"]
        )
        self.canary_fallbacks = Counter(
            "feedback_serve_canary_fallbacks", "Canary parts that failed and were answered by the default export"
        )
        self.shadow_requests = Counter(
            "feedback_serve_shadow_requests", "Copies of POST /predict sent to the shadow, by outcome", ["outcome"]
        )
        self.reloads = Counter("feedback_serve_reloads", "Export reload attempts per worker", ["export", "status"])


_METRICS: Metrics | None = None


def metrics() -> Metrics:
    global _METRICS
    if _METRICS is None:
        _METRICS = Metrics()
    return _METRICS


def exposition() -> tuple[bytes, str]:
    """(body, content type) of a scrape: the sum over every process of this server."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry: Any = CollectorRegistry()
    if os.environ.get(ENV):
        MultiProcessCollector(registry)
    else:  # single process (tests of the API object): the default registry
        from prometheus_client import REGISTRY

        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
