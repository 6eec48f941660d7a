"""The production route's traffic at the HTTP edge: the canary's share and the shadow's copy.

Why at the edge (in the API-server process, after validation): every export is its own LitAPI
with its own queue and workers (serving/routes.py), so sending records to an export is one
in-process ASGI call to its `/predict/<name>` route -- no extra hop, no second HTTP server.

- Canary: the request's records are split by id (routes.goes_to_canary), each part is sent to
  its export at the same time, and the rows are put back in the request's order. Each row
  keeps the `model_version` of the export that scored it, and each export's worker logs its
  own rows. Should the canary fail on its part (5xx), that part is scored by the default
  export instead (counted): a canary never costs a caller an answer.
- Shadow: after the response has been sent, the same body goes to the shadow route as a
  background task; its rows reach only the prediction log (its worker logs them) and its
  answer is dropped. At most `shadow_max_inflight` shadow requests run per API-server process;
  beyond that a copy is dropped and counted, so a slow shadow never queues up memory or delays
  production. A shadow failure is logged and counted, never seen by the caller.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from feedback_nlp.serving.routes import Traffic, goes_to_canary

LOG = logging.getLogger(__name__)
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
App = Callable[[Scope, Receive, Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]


def error_status(body: bytes) -> int | None:
    """The status of a worker's error object (`{"error": ..., "status": N}`), else None."""
    if not body.startswith(b"{"):
        return None
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    status = obj.get("status") if isinstance(obj, dict) and "error" in obj else None
    return status if isinstance(status, int) and 400 <= status <= 599 else None


async def call(app: App, scope: Scope, path: str, body: bytes, receive: Receive | None = None) -> tuple[int, bytes]:
    """POST `body` to `path` of the inner app (LitServe's routes), in process: (status, body).

    `receive`: the client's, so that a client leaving is seen as it would be; None for a
    background call (no client to leave)."""
    headers = [
        (k, v)
        for k, v in scope.get("headers", [])
        if k.lower() not in (b"content-type", b"content-length", b"accept-encoding")
    ]
    headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    inner = {**scope, "path": path, "raw_path": path.encode(), "query_string": b"", "headers": headers}
    sent = False

    async def rx() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if receive is not None:
            return await receive()
        await asyncio.Event().wait()  # never set: a background call has no client to leave
        raise AssertionError("unreachable")

    status, chunks = [500], []

    async def tx(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(inner, rx, tx)
    out = b"".join(chunks)
    if status[0] == 200:
        status[0] = error_status(out) or 200
    return status[0], out


class TrafficRouter:
    """One per API-server process (it counts that process's shadow requests in flight)."""

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        self._shadows: set[asyncio.Task[None]] = set()

    async def canary_split(
        self, app: App, scope: Scope, receive: Receive, payload: Any, records: Sequence[Any]
    ) -> tuple[int, bytes]:
        """(status, body) of the production route with a canary: each record answered by the
        export its id hashes to, the rows in the request's order."""
        from feedback_nlp.serving.metrics import metrics

        t = self.traffic
        assert t.canary is not None
        raw = payload["records"] if isinstance(payload, dict) else payload
        order = [t.canary if goes_to_canary(r.id, t.canary_fraction) else t.default for r in records]
        parts: dict[str, list[Any]] = {t.default: [], t.canary: []}
        for item, rec, name in zip(raw, records, order):
            parts[name].append({**item, "id": rec.id})  # the id it has in this request, explicit
        names = [n for n in parts if parts[n]]
        answers = await asyncio.gather(
            *(call(app, scope, t.routes[n].path, json.dumps(parts[n]).encode(), receive) for n in names)
        )
        got = dict(zip(names, answers))
        if t.canary in got and got[t.canary][0] >= 500:  # the canary failed: production answers its part
            failed, count = got[t.canary][0], len(parts[t.canary])
            LOG.error("canary %s failed (%d) on %d records; the default export answers them", t.canary, failed, count)
            metrics().canary_fallbacks.inc()
            body = json.dumps(parts[t.canary]).encode()
            got[t.canary] = await call(app, scope, t.routes[t.default].path, body, receive)
        for n in names:
            if got[n][0] != 200:
                return got[n]
        rows = {n: iter(json.loads(got[n][1])) for n in names}
        merged = [next(rows[n]) for n in order]
        m = metrics()
        for name in names:
            m.production_records.labels(name).inc(len(parts[name]))
        return 200, json.dumps(merged).encode()

    def shadow(self, app: App, scope: Scope, body: bytes) -> None:
        """Send a copy of a production request to the shadow export, in the background."""
        from feedback_nlp.serving.metrics import metrics

        t = self.traffic
        if t.shadow is None:
            return
        if len(self._shadows) >= t.shadow_max_inflight:
            metrics().shadow_requests.labels("dropped").inc()
            return
        task = asyncio.get_running_loop().create_task(self._shadow(app, scope, body, t.routes[t.shadow].path))
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    async def _shadow(self, app: App, scope: Scope, body: bytes, path: str) -> None:
        from feedback_nlp.serving.metrics import metrics

        outcome = "failed"
        try:
            status, answer = await call(app, scope, path, body)
            if status == 200:
                outcome = "scored"
            else:
                LOG.error("shadow %s answered %d: %s", path, status, answer[:300])
        except Exception:
            LOG.exception("shadow request to %s failed", path)
        metrics().shadow_requests.labels(outcome).inc()
