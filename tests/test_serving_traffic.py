"""Several exports behind one server, in process (no model, no HTTP server): the export flags,
the routing rules, the canary split and its reassembly, the shadow copy that never touches
the response, the admin routes' loopback rule, and a worker's export swap (serving/routes.py,
traffic.py, reload.py, admin.py, api.py). The real server: tests/test_serving_routes.py and
tests/test_serving_reload.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from pathlib import Path

import pytest

from feedback_nlp.core.records import Limits, TextRecord
from feedback_nlp.serving.middleware import ServingMiddleware
from feedback_nlp.serving.routes import Route, RouteError, Traffic, canary_unit, parse_exports


def test_export_flags_name_each_export_and_keep_links_and_equals_in_paths(tmp_path):
    assert parse_exports([str(tmp_path / "a")]) == {"default": tmp_path / "a"}
    got = parse_exports([f"prod={tmp_path}/current", f"cand={tmp_path}/run=3/export"])
    assert got == {"prod": tmp_path / "current", "cand": tmp_path / "run=3" / "export"}  # not resolved
    assert parse_exports([f"{tmp_path}/run=3/export"]) == {"default": tmp_path / "run=3" / "export"}
    with pytest.raises(RouteError, match="given twice"):
        parse_exports([f"a={tmp_path}", f"a={tmp_path}/x"])
    with pytest.raises(RouteError, match="given twice"):
        parse_exports([str(tmp_path), f"{tmp_path}/x"])
    with pytest.raises(RouteError, match="NAME=DIR"):
        parse_exports(["a="])


def test_canary_unit_is_the_first_8_bytes_of_sha256_and_the_share_is_the_fraction():
    digest = hashlib.sha256(b"claim-17").hexdigest()
    assert canary_unit("claim-17") == int(digest[:16], 16) / 2**64
    ids = [f"c-{i}" for i in range(20000)]
    share = sum(canary_unit(i) < 0.1 for i in ids) / len(ids)
    assert abs(share - 0.1) < 4 * (0.1 * 0.9 / len(ids)) ** 0.5  # 4 sigma of a binomial


def _routes(**tasks: str) -> dict[str, Route]:
    kinds = {"product_safety": "claim", "seacat": "transcript"}
    return {n: Route(n, kinds[t], t, f"v-{n}") for n, t in tasks.items()}


def test_the_routing_flags_are_checked_against_the_exports():
    routes = _routes(prod="product_safety", cand="product_safety", sea="seacat")
    Traffic(routes, "prod", canary="cand", canary_fraction=0.1)
    for kwargs, message in [
        ({"default": "nope"}, "--default 'nope' is not an --export name"),
        ({"default": "prod", "canary": "prod", "canary_fraction": 0.1}, "is the default export"),
        ({"default": "prod", "shadow": "sea"}, "must be of the default export's task"),
        ({"default": "prod", "canary": "cand", "canary_fraction": 1.0}, r"must be in \(0, 1\)"),
        ({"default": "prod", "canary": "cand", "shadow": "cand", "canary_fraction": 0.5}, "the same export"),
        ({"default": "prod", "shadow": "x"}, "--shadow 'x' is not an --export name"),
    ]:
        with pytest.raises(RouteError, match=message):
            Traffic(routes, **kwargs)
    t = Traffic(routes, "prod")
    assert t.route_of("/predict").name == "prod" and t.route_of("/predict/sea").kind == "transcript"
    assert t.route_of("/predict/nope") is None and t.route_of("/other") is None


class _Inner:
    """LitServe's routes as the edge sees them: each /predict/<name> answers one row per record
    with that export's version (or fails, or is slow)."""

    def __init__(self, fail: set[str] = frozenset(), delay: dict[str, float] | None = None):
        self.calls: list[tuple[str, list]] = []
        self.fail, self.delay = fail, delay or {}

    async def __call__(self, scope, receive, send):
        name = scope["path"].rsplit("/", 1)[-1]
        msg = await receive()
        records = json.loads(msg["body"])
        self.calls.append((name, records))
        await asyncio.sleep(self.delay.get(name, 0))
        if name in self.fail:
            body = json.dumps({"error": "the model failed on this request", "status": 500}).encode()
        else:
            rows = [{"id": str(r.get("id", i)), "model_version": f"v-{name}"} for i, r in enumerate(records)]
            body = json.dumps(rows).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def _post(edge, path: str, body) -> tuple[int, object, float]:
    """(status, body, seconds until the response was complete) of one POST through the edge."""
    sent: list[dict] = []
    done: list[float] = []
    start = time.perf_counter()

    async def receive():
        return {"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body":
            done.append(time.perf_counter() - start)

    async def run():
        await edge({"type": "http", "path": path, "method": "POST", "headers": []}, receive, send)
        await asyncio.sleep(0.3)  # let background shadow copies finish inside this loop

    asyncio.run(run())
    return sent[0]["status"], json.loads(sent[1]["body"]), done[0]


def _edge(inner, **traffic) -> ServingMiddleware:
    t = Traffic(_routes(prod="product_safety", cand="product_safety", shad="product_safety"), "prod", **traffic)
    return ServingMiddleware(inner, "claim", Limits(20, 200), 1 << 20, traffic=t)


def test_canary_split_answers_by_id_hash_and_reassembles_in_request_order():
    inner = _Inner()
    edge = _edge(inner, canary="cand", canary_fraction=0.5)
    records = [{"id": f"r{i}", "text": "ok"} for i in range(12)] + [{"text": "no id"}]
    status, rows, _ = _post(edge, "/predict", records)
    assert status == 200
    ids = [f"r{i}" for i in range(12)] + ["12"]  # a record without id: its position in the request
    assert [r["id"] for r in rows] == ids
    want = ["v-cand" if int(hashlib.sha256(i.encode()).hexdigest()[:16], 16) / 2**64 < 0.5 else "v-prod" for i in ids]
    assert [r["model_version"] for r in rows] == want and {"v-cand", "v-prod"} == set(want)
    sent = {name: [r["id"] for r in recs] for name, recs in inner.calls}
    assert sent == {n: [i for i, w in zip(ids, want) if w == f"v-{n}"] for n in ("prod", "cand")}
    # an export's own route is that export alone, and other kinds are refused at the edge
    assert {r["model_version"] for r in _post(edge, "/predict/cand", records)[1]} == {"v-cand"}
    status, body, _ = _post(edge, "/predict/prod", [{"id": "t", "turns": []}])
    assert status == 422 and body["detail"][0]["field"] == "text"


def test_a_failing_canary_part_is_answered_by_the_default_export():
    edge = _edge(_Inner(fail={"cand"}), canary="cand", canary_fraction=0.5)
    status, rows, _ = _post(edge, "/predict", [{"id": f"r{i}", "text": "ok"} for i in range(8)])
    assert status == 200 and [r["id"] for r in rows] == [f"r{i}" for i in range(8)]
    assert {r["model_version"] for r in rows} == {"v-prod"}


def test_the_shadow_scores_a_copy_after_the_response_and_its_failure_never_reaches_the_caller():
    records = [{"id": "a", "text": "ok"}, {"text": "no id"}]
    slow = _Inner(delay={"shad": 0.25})
    status, rows, seconds = _post(_edge(slow, shadow="shad"), "/predict", records)
    assert status == 200 and {r["model_version"] for r in rows} == {"v-prod"}
    assert seconds < 0.2  # the response did not wait for the 0.25 s shadow
    assert [(n, [r.get("id") for r in recs]) for n, recs in slow.calls] == [
        ("prod", ["a", None]),
        ("shad", ["a", None]),
    ]
    for failing in (_Inner(fail={"shad"}), _Inner(delay={"shad": "not a number"})):  # 500, and an exception
        status, rows, _ = _post(_edge(failing, shadow="shad"), "/predict", records)
        assert status == 200 and [r["model_version"] for r in rows] == ["v-prod", "v-prod"]
    # only the production route is copied
    direct = _Inner()
    _post(_edge(direct, shadow="shad"), "/predict/prod", records)
    assert [n for n, _ in direct.calls] == ["prod"]


def test_shadow_copies_beyond_the_in_flight_bound_are_dropped_not_queued():
    inner = _Inner(delay={"shad": 0.5})
    edge = _edge(inner, shadow="shad", shadow_max_inflight=2)

    async def run():
        async def post():
            async def receive():
                return {"type": "http.request", "body": b'[{"text": "ok"}]', "more_body": False}

            async def send(message):
                pass

            await edge({"type": "http", "path": "/predict", "method": "POST", "headers": []}, receive, send)

        for _ in range(5):
            await post()
        await asyncio.sleep(0.7)

    asyncio.run(run())
    assert [n for n, _ in inner.calls].count("shad") == 2 and [n for n, _ in inner.calls].count("prod") == 5


def test_admin_routes_answer_loopback_clients_only(tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from feedback_nlp.serving import admin
    from feedback_nlp.serving.admin import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("127.8.0.3") and is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1") and not is_loopback("10.0.0.7") and not is_loopback("testclient")
    assert not is_loopback(None) and not is_loopback("::ffff:10.0.0.7")
    app = FastAPI()
    admin.install(app, str(tmp_path), {"prod": {"task": "t", "model_version": "v"}}, "prod", {"prod": 1}, 1.0, 0.2)
    remote = TestClient(app, client=("10.1.2.3", 5000))
    assert remote.post("/admin/reload").status_code == 403 and remote.get("/admin/exports").status_code == 403
    assert remote.get("/metadata").json() == {"task": "t", "model_version": "v"}  # not an admin route
    local = TestClient(app, client=("127.0.0.1", 5000))
    assert local.post("/admin/reload?export=nope").status_code == 404
    answer = local.post("/admin/reload")  # no worker answers within 0.2 s
    assert answer.status_code == 504 and "not every worker" in answer.json()["error"]


class _Slow:
    def __init__(self, tag: str, seconds: float = 0.0):
        self.tag, self.seconds, self.started = tag, seconds, threading.Event()

    def predict(self, records):
        self.started.set()
        time.sleep(self.seconds)
        return [{"id": r.id, "probability": 0.5, "tag": self.tag} for r in records]


def test_a_batch_in_flight_finishes_on_the_export_it_started_with():
    from feedback_nlp.serving.api import RecordsAPI
    from feedback_nlp.serving.reload import Active

    api = RecordsAPI("unused", "claim", "v-old", max_batch_size=4)
    old = _Slow("old", 0.5)
    api.predictor = old
    out: list = []
    worker = threading.Thread(target=lambda: out.append(api.predict([[TextRecord("a", "fine")]])))
    worker.start()
    assert old.started.wait(10)
    api._swap(Active(_Slow("new"), "v-new", "/new"))  # what a reload does while the batch runs
    worker.join()
    assert [(r["tag"], r["model_version"]) for r in out[0][0]] == [("old", "v-old")]
    rows = api.predict([[TextRecord("b", "fine")]])[0]
    assert [(r["tag"], r["model_version"]) for r in rows] == [("new", "v-new")]


def _export(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"task": "product_safety", "model_version": version}))
    return folder


def test_the_reloader_follows_a_repointed_link_refuses_a_bad_export_and_answers_requests(tmp_path):
    from feedback_nlp.serving.reload import Active, Reloader, request_reload, states, wait_for

    a, b, bad = _export(tmp_path / "a", "va"), _export(tmp_path / "b", "vb"), _export(tmp_path / "bad", "vx")
    link = tmp_path / "current"
    link.symlink_to(a)
    served: list[Active] = [Active("pa", "va", os.path.realpath(a))]
    loads: list[str] = []

    def load(folder: str) -> Active:
        loads.append(Path(folder).name)
        if Path(folder).name == "bad":
            raise RuntimeError("sha256 differs")
        return Active(
            f"p{Path(folder).name}", json.loads(Path(folder, "manifest.json").read_text())["model_version"], folder
        )

    control = tmp_path / "control"
    control.mkdir()
    r = Reloader("prod", link, control, load, served.append, lambda: served[-1], poll=0.05)
    assert r.check() is None and loads == []  # nothing changed
    tmp = tmp_path / "current.tmp"
    tmp.symlink_to(b)
    os.replace(tmp, link)  # the atomic re-point
    assert r.check() == "reloaded" and served[-1].model_version == "vb" and loads == ["b"]
    tmp.symlink_to(bad)
    os.replace(tmp, link)
    assert r.check() == "failed" and served[-1].model_version == "vb"
    assert r.check() is None and loads == ["b", "bad"]  # a refused folder is not retried by polling...
    r.start()
    seq = request_reload(control, ["prod"])  # ... but an operator's request tries it again
    complete, done = wait_for(control, seq, {"prod": 1}, 10)
    r.stop()
    assert complete and done[0]["status"] == "failed" and "sha256 differs" in done[0]["error"]
    assert done[0]["model_version"] == "vb" and loads == ["b", "bad", "bad"]
    assert states(control, "prod")[0]["pid"] == os.getpid()


def test_serve_refuses_every_bad_routing_flag_with_one_error_line_before_loading_a_model(tmp_path, capsys):
    from feedback_nlp.cli import serve
    from tests.serving_helpers import free_port, safety_export

    export = safety_export(tmp_path / "prod")
    two = ["--export", f"prod={export}", "--export", f"cand={export}", "--device", "cpu"]
    for flags, message in [
        (["--shadow", "cand"], "--shadow needs --prediction-log"),
        (["--canary-fraction", "0.2"], "--canary-fraction needs --canary NAME"),
        (["--canary", "nope"], "--canary 'nope' is not an --export name (prod, cand)"),
        (["--canary", "cand", "--canary-fraction", "1.5"], "--canary-fraction must be in (0, 1), got 1.5"),
        (["--canary", "prod"], "--canary 'prod' is the default export"),
        (["--canary", "cand", "--shadow", "cand", "--prediction-log", str(tmp_path / "log")], "the same export"),
        (["--default", "other"], "--default 'other' is not an --export name"),
        (["--export", f"prod={export}"], "the name 'prod' is given twice"),
        (["--export", f"new={tmp_path / 'missing'}"], "missing"),
        (["--reload-poll", "-1"], "--reload-poll >= 0"),
    ]:
        capsys.readouterr()
        code = serve.main([*two, *flags, "--port", str(free_port())])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "log").exists()  # refused before the log was created
