"""`serve` end to end on a free loopback port: health, rows vs predict.py, concurrency, 4xx, metrics."""

from __future__ import annotations

import json
import re
import threading

import pytest

from tests.serving_helpers import CLAIMS, http, running_server, safety_export

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    export = safety_export(folder)
    args = [
        "--workers-per-device",
        "2",
        "--max-batch-size",
        "4",
        "--batch-timeout",
        "0.02",
        "--max-records",
        "20",
        "--max-chars",
        "200",
    ]
    with running_server(export, args, log=folder / "serve.log") as (base, codes):
        yield base, codes, export, folder


def _claims(prefix: str, n: int) -> list[dict]:
    return [{"id": f"{prefix}-{i}", "text": CLAIMS[(i * 7 + len(prefix)) % len(CLAIMS)]} for i in range(n)]


def test_health_is_503_until_every_worker_is_loaded_then_200(server):
    _, codes, _, _ = server
    assert codes[-1] == 200
    assert 503 in codes and set(codes) <= {503, 200} and codes.index(200) == len(codes) - 1


def test_rows_equal_predict_py_on_the_same_records(server, tmp_path):
    from feedback_nlp.cli import predict

    base, _, export, _ = server
    records = [
        {"id": "x1", "text": CLAIMS[0], "language": "en"},
        {"text": CLAIMS[1]},  # no id: its position
        {"id": 7, "text": CLAIMS[2], "label": None, "created_at": "2024-01-01"},
    ]  # extra fields ignored
    status, rows = http("POST", base + "/predict", records)
    assert status == 200
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert (
        predict.main(
            ["--export", str(export), "--input", str(inp), "--output", str(tmp_path / "out.jsonl"), "--device", "cpu"]
        )
        == 0
    )
    offline = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["x1", "1", "7"]
    assert [r["id"] for r in offline] == ["x1", "2", "7"]  # predict.py: a missing id is the line number
    manifest = json.loads((export / "manifest.json").read_text())
    for got, want in zip(rows, offline):
        assert got["probability"] == pytest.approx(want["probability"], abs=1e-6)
        assert (got["label"], got["decision"], got["threshold"]) == (want["label"], want["decision"], want["threshold"])
        assert got["model_version"] == want["model_version"] == manifest["model_version"]
        assert got["decision"] == int(got["probability"] >= got["threshold"])
        assert re.match(r"\d{4}-\d\d-\d\dT", got["predicted_at"])


def test_concurrent_clients_each_get_exactly_their_own_rows(server):
    base, _, _, _ = server
    _, reference = http("POST", base + "/predict", [{"id": str(i), "text": t} for i, t in enumerate(CLAIMS)])
    prob = {r["id"]: r["probability"] for r in reference}
    results: dict[int, tuple[int, list]] = {}

    def client(k: int) -> None:
        # every client reuses the same ids ("0", "1", ...) with different texts: only per-request matching works
        texts = [(i, CLAIMS[(i + k) % len(CLAIMS)]) for i in range(1 + k % 5)]
        results[k] = (texts, http("POST", base + "/predict", [{"id": str(i), "text": t} for i, t in texts]))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _k, (texts, (status, rows)) in results.items():
        assert status == 200, rows
        assert [r["id"] for r in rows] == [str(i) for i, _ in texts]
        for (_i, text), row in zip(texts, rows):
            assert row["probability"] == pytest.approx(prob[str(CLAIMS.index(text))], abs=1e-6)


@pytest.mark.parametrize(
    "body, status, index, field",
    [
        ([{"id": "a", "text": "fine"}, {"id": "b", "text": ""}], 422, 1, "text"),
        ([{"id": "a", "text": "fine"}, {"id": "b"}], 422, 1, "text"),
        ([{"text": "fine", "language": 3}], 422, 0, "language"),
        ([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], 422, 1, "id"),
        (["just a string"], 422, 0, "<record>"),
        ({"text": "not a list"}, 422, -1, "<body>"),
        ([], 422, -1, "<body>"),
        ([{"text": "x"}] * 21, 413, -1, "<body>"),
        ([{"text": "fine"}, {"text": "y" * 201}], 413, 1, "text"),
    ],
)
def test_bad_requests_get_their_4xx_with_index_and_field(server, body, status, index, field):
    base, _, _, _ = server
    got, detail = http("POST", base + "/predict", body)
    assert got == status
    assert {"index": index, "field": field} == {k: detail["detail"][0][k] for k in ("index", "field")}


def test_invalid_json_and_form_encoded_bodies_are_not_500(server):
    base, _, _, _ = server
    assert http("POST", base + "/predict", raw=b"[{not json")[0] == 422
    import urllib.request

    req = urllib.request.Request(
        base + "/predict",
        data=json.dumps([{"text": "too small"}]).encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # what curl -d sends
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200 and json.loads(r.read())[0]["id"] == "0"


def test_metadata_is_the_manifest_and_metrics_count_across_processes(server):
    base, _, export, _ = server
    assert http("GET", base + "/metadata") == (200, json.loads((export / "manifest.json").read_text()))

    def value(text: str, name: str) -> float:
        return sum(float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)} (\S+)$", text, re.M))

    def scrape() -> str:
        import urllib.request

        with urllib.request.urlopen(base + "/metrics", timeout=30) as r:
            return r.read().decode()

    before = scrape()
    n = 12
    threads = [
        threading.Thread(target=http, args=("POST", base + "/predict", [{"text": "too small"}] * 1)) for _ in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = scrape()
    key = 'feedback_serve_requests_total{endpoint="/predict",status="200"}'
    assert value(after, key) - value(before, key) == n  # whichever of the 2 API processes answered
    assert (
        value(after, "feedback_serve_request_latency_seconds_count")
        - value(before, "feedback_serve_request_latency_seconds_count")
        == n
    )
    assert value(after, "feedback_serve_batch_records_sum") - value(before, "feedback_serve_batch_records_sum") == n
    assert value(after, "feedback_serve_queue_depth") == 0
    assert "feedback_serve_batch_requests_bucket" in after
