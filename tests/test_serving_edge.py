"""The serving edge cannot be poisoned: a bad request costs only itself.

Against a real `serve` process (free loopback port): a mixed load where 1 request in 5 carries
a lone surrogate, a 1,000-deep body or a 5,000-digit id gets 0 failures among the good requests
and a 422 for each bad one; metrics are labelled by route, never by the requested path; the
records counter counts scored records; /openapi.json describes /predict. In-process: a model
failure on one request of a dynamic batch fails that request only.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request

import pytest

from tests.serving_helpers import CLAIMS, http, running_server, safety_export

pytestmark = pytest.mark.slow

BAD = {
    "surrogate": lambda i: json.dumps([{"id": f"s{i}", "text": "hot \ud800 plate"}]).encode(),
    "deep": lambda i: b"[" * 1000 + b"]" * 1000,
    "digits": lambda i: b'[{"id": ' + b"9" * 5000 + b', "text": "ok"}]',
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("edge")
    export = safety_export(folder)
    args = ["--max-batch-size", "8", "--batch-timeout", "0.05", "--max-records", "20", "--workers-per-device", "1"]
    with running_server(export, args, log=folder / "serve.log") as (base, _):
        yield base


def test_mixed_load_fails_only_the_bad_requests(server):
    results: list[tuple[str, int, object]] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        for j in range(16):
            n = c * 16 + j
            if n % 5 == 4:  # 1 in 5: a poisoned request
                kind = list(BAD)[n % 3]
                status, body = http("POST", server + "/predict", raw=BAD[kind](n))
            else:
                kind = "good"
                recs = [{"id": f"{n}-{k}", "text": CLAIMS[(n + k) % len(CLAIMS)]} for k in range(3)]
                status, body = http("POST", server + "/predict", recs)
            with lock:
                results.append((kind, status, body))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    good = [(s, b) for k, s, b in results if k == "good"]
    bad = [(k, s, b) for k, s, b in results if k != "good"]
    assert len(results) == 128 and len(bad) == 25
    assert [s for s, _ in good if s != 200] == []
    assert all(len(b) == 3 and all(r["model_version"] for r in b) for _, b in good)
    assert {(k, s) for k, s, _ in bad} == {("surrogate", 422), ("deep", 422), ("digits", 422)}
    by_kind = {k: b for k, _, b in bad}
    assert by_kind["surrogate"]["detail"] == [
        {"index": 0, "field": "text", "message": "character 4 is a lone UTF-16 surrogate (not encodable as UTF-8)"}
    ]
    assert "nested deeper than 32" in by_kind["deep"]["detail"][0]["message"]
    assert "more than 4300 digits" in by_kind["digits"]["detail"][0]["message"]


def test_body_over_the_limit_is_413_before_parsing(server):
    status, body = http("POST", server + "/predict", [{"text": "x"}] * 21)
    assert status == 413 and "over the limit of 20" in body["detail"][0]["message"]


def test_metrics_label_routes_not_paths_and_count_scored_records(server):
    def scrape() -> str:
        with urllib.request.urlopen(server + "/metrics", timeout=30) as r:
            return r.read().decode()

    before = float(re.search(r"^feedback_serve_records_total (\S+)$", scrape(), re.M).group(1))
    for i in range(3):
        assert http("GET", f"{server}/no-such-path-{i}")[0] == 404
    assert http("POST", server + "/predict", [{"text": "ok"}, {"text": 5}])[0] == 422  # refused: not scored
    assert http("POST", server + "/predict", [{"text": "ok"}, {"text": "fine"}])[0] == 200
    text = scrape()
    assert "no-such-path" not in text
    assert re.search(r'feedback_serve_requests_total\{endpoint="other",status="404"\} ([3-9]|\d\d)', text)
    after = float(re.search(r"^feedback_serve_records_total (\S+)$", text, re.M).group(1))
    assert after - before == 2


def test_openapi_describes_predict_records_and_rows(server):
    status, doc = http("GET", server + "/openapi.json")
    assert status == 200
    op = doc["paths"]["/predict"]["post"]
    records = op["requestBody"]["content"]["application/json"]["schema"]["anyOf"][0]
    assert records["maxItems"] == 20 and records["items"]["required"] == ["text"]
    row = op["responses"]["200"]["content"]["application/json"]["schema"]["items"]
    assert {"id", "model_version", "predicted_at"} <= set(row["required"]) and "probability" in row["properties"]
    assert {"413", "422"} <= set(op["responses"])


class _Flaky:
    """A predictor that cannot score one text (as a model bug or an unforeseen input would)."""

    def predict(self, records):
        if any(r.text == "BOOM" for r in records):
            raise RuntimeError("cannot score BOOM")
        return [{"id": r.id, "probability": 0.5} for r in records]


def test_a_model_failure_fails_only_its_own_request_of_the_batch():
    from feedback_nlp.core.records import TextRecord
    from feedback_nlp.serving.api import RecordsAPI

    api = RecordsAPI("unused", "claim", "v1", max_batch_size=8)
    api.predictor = _Flaky()
    good1, bad, good2 = [TextRecord("a", "fine")], [TextRecord("a", "BOOM")], [TextRecord("b", "ok")]
    out = api.predict([good1, bad, good2])
    assert [r["id"] for r in out[0]] == ["a"] and [r["id"] for r in out[2]] == ["b"]
    assert out[1]["status"] == 500 and "cannot score BOOM" in out[1]["detail"]
    assert all(r["model_version"] == "v1" for r in out[0] + out[2])


def test_the_edge_gives_a_worker_error_object_its_status():
    import asyncio

    from feedback_nlp.core.records import Limits
    from feedback_nlp.serving.middleware import ServingMiddleware

    async def app(scope, receive, send):  # LitServe answering one request of a batch with an error object
        body = json.dumps({"error": "the model failed on this request", "status": 500}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b'[{"text": "ok"}]', "more_body": False}

    async def send(message):
        sent.append(message)

    edge = ServingMiddleware(app, "claim", Limits(), 1 << 20)
    asyncio.run(edge({"type": "http", "path": "/predict", "method": "POST", "headers": []}, receive, send))
    assert sent[0]["status"] == 500 and json.loads(sent[1]["body"])["error"].startswith("the model failed")
