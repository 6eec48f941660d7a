"""The HTTP edge of the server: validate /predict bodies, count and time requests.

Why here and not in LitAPI.decode_request: LitServe decodes in the inference worker, on a
dynamic batch of requests, and an exception there fails EVERY request of that batch. Checking
the body in the API-server process, before it is queued, lets a bad request get its own 422
(record index and field named) or 413 (over the configured limits) while the requests it would
have been batched with are answered normally. A pure ASGI middleware, so the validated body is
replayed to LitServe unchanged.
"""

from __future__ import annotations

import json
import time
from typing import Any, Awaitable, Callable

from feedback_nlp.serving.records import Limits, RecordProblem, RequestError, decode_request

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PREDICT_PATH = "/predict"


async def _json(send: Send, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


def _error(e: RequestError) -> dict[str, Any]:
    return {
        "error": "request too large" if e.status == 413 else "invalid records",
        "detail": [p.as_dict() for p in e.problems[:100]],
        "problems": len(e.problems),
    }


class ServingMiddleware:
    def __init__(self, app: Any, kind: str, limits: Limits, max_body_bytes: int) -> None:
        self.app, self.kind, self.limits, self.max_body_bytes = app, kind, limits, max_body_bytes

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

        if not (path == PREDICT_PATH and scope["method"] == "POST"):
            await self.app(scope, receive, tracking_send)
            if path != "/metrics":
                m.requests.labels(path, str(status[0])).inc()
            return
        start = time.perf_counter()
        m.queue_depth.inc()
        try:
            await self._predict(scope, receive, tracking_send)
        finally:
            m.queue_depth.dec()
            m.requests.labels(path, str(status[0])).inc()
            m.latency.observe(time.perf_counter() - start)

    async def _predict(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await _json(
                    send,
                    413,
                    _error(RequestError([RecordProblem(-1, "<body>", f"body over {self.max_body_bytes} bytes", True)])),
                )
                return
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            await _json(send, 422, _error(RequestError([RecordProblem(-1, "<body>", f"not valid JSON: {e}")])))
            return
        try:
            records = decode_request(payload, self.kind, self.limits)
        except RequestError as e:
            await _json(send, e.status, _error(e))
            return
        from feedback_nlp.serving.metrics import metrics

        metrics().records.inc(len(records))
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
        await self.app({**scope, "headers": [*headers, (b"content-type", b"application/json")]}, replay, send)
