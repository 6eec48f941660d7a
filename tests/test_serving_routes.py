"""Several exports behind one real `serve` process (issue 23.4): three product-safety exports
(production, canary, shadow: one model at three thresholds, so three model versions) and a
SeaCat export, each at its own route and validated with its own record kind; /predict split
by id between production and canary; the shadow's rows only in the prediction log; every
route in /openapi.json. Expectations come from the exports themselves, loaded offline, and
from sha256 of the ids computed here."""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
import urllib.request

import pytest

from tests.serving_helpers import CLAIMS, http, running_server, safety_export, seacat_export

pytestmark = pytest.mark.slow
FRACTION = 0.3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from feedback_nlp.demo_data.seacat import generate_transcripts

    folder = tmp_path_factory.mktemp("routes")
    exports = {
        "prod": safety_export(folder / "prod"),
        "cand": safety_export(folder / "cand", threshold=0.02),
        "shadow": safety_export(folder / "shadow", threshold=0.98),
    }
    transcripts = generate_transcripts(random.Random(1), 6)
    exports["seacat"] = seacat_export(folder / "seacat", transcripts)
    log = folder / "log"
    args = [
        *(f"--export={n}={p}" for n, p in exports.items() if n != "prod"),
        *("--canary", "cand", "--canary-fraction", str(FRACTION), "--shadow", "shadow"),
        *("--prediction-log", str(log), "--max-batch-size", "4", "--batch-timeout", "0.02", "--max-records", "50"),
    ]
    with running_server(f"prod={exports['prod']}", args, log=folder / "serve.log") as (base, _):
        yield base, exports, transcripts, log


def _manifest(export) -> dict:
    return json.loads((export / "manifest.json").read_text())


def _offline(export, records, kind):
    from feedback_nlp.core.records import decode_request
    from feedback_nlp.serving.registry import load_export

    return load_export(export)[0].predict(decode_request(records, kind))


def _expected(record_id: str) -> str:
    return "cand" if int(hashlib.sha256(record_id.encode()).hexdigest()[:16], 16) / 2**64 < FRACTION else "prod"


def test_each_route_answers_with_its_own_export_and_record_kind(server):
    base, exports, transcripts, _ = server
    claims = [{"id": f"direct-{i}", "text": t} for i, t in enumerate(CLAIMS[:3])]
    want = _offline(exports["prod"], claims, "claim")
    for name in ("prod", "cand", "shadow"):
        status, rows = http("POST", f"{base}/predict/{name}", claims)
        m = _manifest(exports[name])
        threshold = json.loads((exports[name] / "classifier.json").read_text())["threshold"]
        assert status == 200 and [r["id"] for r in rows] == [c["id"] for c in claims]
        assert {r["model_version"] for r in rows} == {m["model_version"]}
        for row, w in zip(rows, want):  # one model, three thresholds
            assert row["probability"] == pytest.approx(w["probability"], abs=1e-6)
            assert row["threshold"] == pytest.approx(threshold) and row["decision"] == int(
                row["probability"] >= threshold
            )
    calls = [{"id": f"t{i}", "turns": t["turns"]} for i, t in enumerate(transcripts[:2])]
    status, rows = http("POST", f"{base}/predict/seacat", calls)
    assert status == 200 and {r["model_version"] for r in rows} == {_manifest(exports["seacat"])["model_version"]}
    for row, w in zip(rows, _offline(exports["seacat"], calls, "transcript")):
        assert (row["id"], row["label"], row["main_question"]) == (w["id"], w["label"], w["main_question"])
    # each route validates with its own export's record kind, before any model sees the body
    status, body = http("POST", f"{base}/predict/seacat", claims)
    assert status == 422 and body["detail"][0]["field"] == "turns"
    for path in ("/predict/prod", "/predict"):
        status, body = http("POST", base + path, calls)
        assert status == 422 and body["detail"][0]["field"] == "text"
    assert http("POST", f"{base}/predict/nope", claims)[0] == 404
    assert http("GET", f"{base}/metadata/seacat") == (200, _manifest(exports["seacat"]))
    assert http("GET", f"{base}/metadata") == (200, _manifest(exports["prod"]))


def test_openapi_describes_every_route_with_its_own_records(server):
    base, *_ = server
    status, doc = http("GET", base + "/openapi.json")
    assert status == 200
    paths = {"/predict", "/predict/prod", "/predict/cand", "/predict/shadow", "/predict/seacat"}
    assert paths <= set(doc["paths"])

    def record(path):
        return doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["anyOf"][0]["items"]

    assert record("/predict")["required"] == record("/predict/prod")["required"] == ["text"]
    assert record("/predict/seacat")["required"] == ["turns"]
    row = doc["paths"]["/predict/seacat"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "label" in row["items"]["properties"]
    assert "'cand'" in doc["paths"]["/predict"]["post"]["description"]


def test_the_canary_answers_a_stable_id_hashed_share_of_records(server):
    base, exports, _, _ = server
    version = {n: _manifest(exports[n])["model_version"] for n in ("prod", "cand")}
    ids = [f"c-{i}" for i in range(120)]
    seen: dict[str, list[str]] = {}
    for shuffle in (0, 1):  # the same ids again, in other requests, other positions, other neighbours
        order = ids if not shuffle else random.Random(5).sample(ids, len(ids))
        for lo in range(0, len(order), 30 - 7 * shuffle):
            chunk = order[lo : lo + 30 - 7 * shuffle]
            body = [{"id": i, "text": CLAIMS[int(i[2:]) % len(CLAIMS)]} for i in chunk]
            status, rows = http("POST", base + "/predict", body)
            assert status == 200 and [r["id"] for r in rows] == chunk  # reassembled in request order
            for r in rows:
                seen.setdefault(r["id"], []).append(r["model_version"])
    assert seen == {i: [version[_expected(i)]] * 2 for i in ids}
    share = sum(_expected(i) == "cand" for i in ids) / len(ids)
    assert 0.15 < share < 0.45  # the hash rule's share on these ids (a sanity bound, not a test of chance)


def test_the_shadow_scores_every_production_request_into_the_log_only(server):
    from feedback_nlp.serving.prediction_log import read_log

    base, exports, _, log = server
    shadow = _manifest(exports["shadow"])["model_version"]
    threshold = json.loads((exports["shadow"] / "classifier.json").read_text())["threshold"]
    sent = []
    for k in range(6):
        body = [{"id": f"s-{k}-{j}", "text": CLAIMS[(k + j) % len(CLAIMS)], "language": "en"} for j in range(3)]
        status, rows = http("POST", base + "/predict", body)
        assert status == 200 and shadow not in {r["model_version"] for r in rows}
        sent += rows
    deadline, mine = time.monotonic() + 90, []
    while time.monotonic() < deadline:  # each worker turns its log segment into Parquet every 5 s
        table = read_log(log).to_pylist()
        mine = [r for r in table if r["id"].startswith("s-")]
        if len(mine) >= 2 * len(sent):  # production's and the shadow's workers flush on their own
            break
        time.sleep(1)
    production = {r["id"]: r for r in mine if r["model_version"] != shadow}
    copies = {r["id"]: r for r in mine if r["model_version"] == shadow}
    assert len(mine) == 2 * len(sent) and set(production) == set(copies) == {r["id"] for r in sent}
    for row in sent:  # the log names the version that answered each production row
        assert production[row["id"]]["model_version"] == row["model_version"]
        assert production[row["id"]]["score"] == pytest.approx(row["probability"])
        copy = copies[row["id"]]
        assert copy["text_sha256"] == production[row["id"]]["text_sha256"] and copy["language"] == "en"
        assert copy["score"] == pytest.approx(row["probability"], abs=1e-6)  # the same weights...
        assert copy["decision"] == int(copy["score"] >= threshold)  # ...at the shadow's own threshold

    def value(text: str, name: str) -> float:
        return sum(float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)} (\S+)$", text, re.M))

    with urllib.request.urlopen(base + "/metrics", timeout=30) as r:
        metrics = r.read().decode()
    assert value(metrics, 'feedback_serve_shadow_requests_total{outcome="scored"}') >= 6
    assert value(metrics, 'feedback_serve_shadow_requests_total{outcome="dropped"}') == 0
    assert value(metrics, 'feedback_serve_production_records_total{export="cand"}') > 0
