"""The HTTP edge of the server: validate /predict bodies, count and time requests.

Why here and not in LitAPI.decode_request: LitServe decodes in the inference worker, on a
dynamic batch of requests, and an exception there fails EVERY request of that batch. Checking
the body in the API-server process, before it is queued, lets a bad request get its own 422
(record index and field named) or 413 (over the configured limits: the body size is checked
before a byte is parsed) while the requests it would have been batched with are answered
normally. A pure ASGI middleware, so the validated body is replayed to LitServe unchanged.

The inference worker cannot answer one request of a batch with an error status (LitServe would
fail the batch), so a request that fails there comes back as a JSON object
`{"error": ..., "status": N}` (successful answers are lists); this edge turns it into status N.
Metrics are labelled by route from a fixed set (`routes`), never by the requested path, so a
client probing random URLs cannot grow the metrics' label set without bound.

With several exports (`traffic`, serving/routes.py) every `/predict/<name>` body is validated
with that export's own record kind, and `/predict` is the production route: the default
export, with the canary's share and the shadow's copy (serving/traffic.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from feedback_nlp.core.errors import REQUEST, DataValidationError, Problem
from feedback_nlp.core.records import Limits, decode_body, decode_request
from feedback_nlp.serving.routes import Traffic
from feedback_nlp.serving.traffic import TrafficRouter, error_status

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PREDICT_PATH = "/predict"
OTHER_ROUTE = "other"  # the metrics label of every path the server does not serve
ERROR_KEY = "error"


async def send_json(send: Send, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


def error_body(e: DataValidationError) -> dict[str, Any]:
    return {
        ERROR_KEY: "request too large" if e.status == 413 else "invalid records",
        "detail": [p.as_dict() for p in e.problems[:100]],
        "problems": len(e.problems),
        "status": e.status,
    }


def _too_large(message: str) -> DataValidationError:
    return DataValidationError([Problem(REQUEST, -1, "<body>", message, too_large=True)])


class ServingMiddleware:
    def __init__(
        self,
        app: Any,
        kind: str,
        limits: Limits,
        max_body_bytes: int,
        routes: Collection[str] = (PREDICT_PATH,),
        traffic: Traffic | None = None,
    ) -> None:
        self.app, self.kind, self.limits, self.max_body_bytes = app, kind, limits, max_body_bytes
        self.routes = routes  # filled by the server once its routes exist (a shared set)
        self.traffic = traffic  # None: one export, at /predict itself
        self.router = TrafficRouter(traffic) if traffic is not None else None

    def route(self, path: str) -> str:
        return path if path in self.routes else OTHER_ROUTE

    def kind_of(self, path: str) -> str | None:
        """The record kind a predict path's body is validated with (None: not a predict path)."""
        if self.traffic is None:
            return self.kind if path == PREDICT_PATH else None
        route = self.traffic.route_of(path)
        return None if route is None else route.kind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from feedback_nlp.serving.metrics import metrics

        m = metrics()
        path, status = scope["path"], [500]

        async def tracking_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        kind = self.kind_of(path)
        if not (kind is not None and scope["method"] == "POST"):
            await self.app(scope, receive, tracking_send)
            if path != "/metrics":
                m.requests.labels(self.route(path), str(status[0])).inc()
            return
        start = time.perf_counter()
        m.queue_depth.inc()
        try:
            await self._predict(scope, receive, tracking_send, kind)
        finally:
            m.queue_depth.dec()
            m.requests.labels(path, str(status[0])).inc()
            m.latency.observe(time.perf_counter() - start)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None when the client left; DataValidationError (413) over the limit,
        from the declared Content-Length before reading, else as soon as the bytes pass it."""
        for key, value in scope.get("headers", []):
            if key.lower() == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                raise _too_large(f"body of {int(value)} bytes, over the limit of {self.max_body_bytes}")
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _too_large(f"body over {self.max_body_bytes} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    async def _predict(self, scope: Scope, receive: Receive, send: Send, kind: str) -> None:
        try:
            body = await self._read_body(scope, receive)
            if body is None:
                return
            payload = decode_body(body)
            records = decode_request(payload, kind, self.limits)
        except DataValidationError as e:
            await send_json(send, e.status, error_body(e))
            return
        if self.traffic is not None:
            await self._route(scope, receive, send, body, payload, records)
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        # the body is JSON whatever the client declared (curl -d says form-urlencoded, which
        # LitServe would try to parse as a form)
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-type"]
        await self.app(
            {**scope, "headers": [*headers, (b"content-type", b"application/json")]}, replay, _ErrorStatus(send)
        )

    async def _route(self, scope: Scope, receive: Receive, send: Send, body: bytes, payload: Any, records: Any) -> None:
        """A validated body to its export(s): `/predict/<name>` to that export alone; `/predict`
        to the default export (or split with the canary), then a copy to the shadow."""
        from feedback_nlp.serving.traffic import call

        assert self.traffic is not None and self.router is not None
        t, path = self.traffic, scope["path"]
        if path == PREDICT_PATH and t.canary is not None:
            status, answer = await self.router.canary_split(self.app, scope, receive, payload, records)
        else:
            target = t.routes[t.default].path if path == PREDICT_PATH else path
            status, answer = await call(self.app, scope, target, body, receive)
        await _send_bytes(send, status, answer)
        if path == PREDICT_PATH and t.shadow is not None:
            self.router.shadow(self.app, scope, body)  # after the response: off the request path


async def _send_bytes(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _ErrorStatus:
    """Forward a response, giving an error object from the worker (`{"error", "status"}`) its status.

    A 200 response's body is held until complete (predict bodies are a few KB), then sent as it
    came or, when it is an error object, with that object's status."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.start: dict[str, Any] | None = None
        self.body = b""

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            if message["status"] != 200:
                await self.send(message)
                return
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.send(message)
            return
        self.body += message.get("body", b"")
        if message.get("more_body", False):
            return
        start, self.start = self.start, None
        status = _error_status(self.body)
        if status is not None:
            start = {**start, "status": status}
        await self.send(start)
        await self.send({"type": "http.response.body", "body": self.body})


def _error_status(body: bytes) -> int | None:
    return error_status(body)
