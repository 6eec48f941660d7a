"""Reload without downtime, on a real `serve` process (issue 23.4): client threads post to
/predict without pause while the export's `current` link is re-pointed (picked up by the
worker's poll) and then re-pointed back with `POST /admin/reload`; a damaged export is refused
while the old one keeps serving. Expectations: every request answered 200 with one row per
record, each request's rows under exactly one of the two exports' model versions (never a mix,
never another), the versions switch in the order the link was re-pointed, and the admin answer
names the version every worker serves. The versions come from the exports' own manifests."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from tests.serving_helpers import CLAIMS, http, running_server, safety_export

pytestmark = pytest.mark.slow


def _version(export: Path) -> str:
    return json.loads((export / "manifest.json").read_text())["model_version"]


def _repoint(link: Path, target: Path) -> None:
    tmp = link.with_name(link.name + ".tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)  # atomic: a reader sees the old target or the new one


class _Clients:
    """Threads posting 3 claims at a time until stopped; every answer kept in order."""

    def __init__(self, base: str, n: int = 3):
        self.base, self.stop = base, threading.Event()
        self.answers: list[tuple[float, int, list]] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._loop, args=(k,), daemon=True) for k in range(n)]

    def _loop(self, k: int) -> None:
        i = 0
        while not self.stop.is_set():
            body = [{"id": f"k{k}-{i}-{j}", "text": CLAIMS[(i + j) % len(CLAIMS)]} for j in range(3)]
            try:
                status, rows = http("POST", self.base + "/predict", body, timeout=60)
            except Exception as e:  # a refused or reset connection is a failure too
                status, rows = -1, repr(e)
            with self.lock:
                self.answers.append((time.monotonic(), status, rows))
            i += 1

    def __enter__(self) -> _Clients:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)

    def versions_since(self, t0: float) -> list[str]:
        with self.lock:
            return [rows[0]["model_version"] for t, s, rows in self.answers if t > t0 and s == 200 and rows]


def _wait_for(clients: _Clients, t0: float, version: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if version in clients.versions_since(t0)[-3:]:
            return
        time.sleep(0.1)
    raise AssertionError(f"no answer from {version} within {timeout} s")


def test_a_swap_under_load_loses_no_request_and_switches_versions(tmp_path):
    a = safety_export(tmp_path / "a")
    b = safety_export(tmp_path / "b", threshold=0.02)  # same weights, another threshold: another version
    va, vb = _version(a), _version(b)
    assert va != vb
    link = tmp_path / "current"
    _repoint(link, a)
    args = ["--reload-poll", "0.2", "--max-batch-size", "4", "--batch-timeout", "0.01"]
    with running_server(f"prod={link}", args, log=tmp_path / "serve.log") as (base, _):
        with _Clients(base) as clients:
            time.sleep(1.0)
            t_link = time.monotonic()
            _repoint(link, b)  # 1. the link, picked up by the worker's poll
            _wait_for(clients, t_link, vb)
            time.sleep(0.5)
            t_admin = time.monotonic()
            _repoint(link, a)  # 2. the operator's request: answered once every worker serves it
            status, answer = http("POST", base + "/admin/reload", timeout=120)
            assert status == 200 and answer["reloaded"], answer
            assert {w["model_version"] for w in answer["workers"]} == {va}
            _wait_for(clients, t_admin, va, timeout=30)
            # 3. a damaged export is refused; the previous one keeps serving
            bad = tmp_path / "bad"
            bad.mkdir()
            for p in b.iterdir():
                os.symlink(p, bad / p.name)
            (bad / "classifier.json").unlink()
            (bad / "classifier.json").write_text((b / "classifier.json").read_text().replace("0.02", "0.03"))
            _repoint(link, bad)
            status, answer = http("POST", base + "/admin/reload", timeout=120)
            assert status == 409 and not answer["reloaded"] and "sha256" in answer["error"], answer
            t_bad = time.monotonic()
            time.sleep(1.0)
            status, exports = http("GET", base + "/admin/exports")
            assert status == 200 and {s["model_version"] for s in exports["prod"]} == {va}
        answers = list(clients.answers)
    failures = [(s, rows) for _, s, rows in answers if s != 200 or not isinstance(rows, list) or len(rows) != 3]
    assert not failures, failures[:3]
    versions = [{r["model_version"] for r in rows} for _, _, rows in answers]
    assert all(len(v) == 1 for v in versions)  # a request is answered by one export, never a mix
    seq = [v.pop() for v in versions]
    assert set(seq) == {va, vb}
    runs = [x for i, x in enumerate(seq) if i == 0 or seq[i - 1] != x]
    # answers are appended by 3 threads, so the switch points may interleave briefly; the order holds
    assert runs[0] == va and vb in runs and runs[-1] == va
    assert {rows[0]["model_version"] for t, _, rows in answers if t > t_bad} == {va}
    assert len(answers) > 30
