"""The prediction log (feedback_nlp/serving/prediction_log.py): rows read back exactly as scored,
partitioned by date and model_version; a torn last line dropped; a conversion redone after a
crash adds nothing twice; a live process's segment left alone; and a server killed with SIGKILL
while clients are answered loses no answered row (each in the log exactly once after restart).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from feedback_nlp.core.records import TextRecord, TranscriptRecord, Turn
from feedback_nlp.serving import prediction_log as plog
from feedback_nlp.serving.prediction_log import PredictionLog, read_log
from tests.serving_helpers import CLAIMS, free_port, http, safety_export


def safety_rows(records, version="v1", at="2026-03-01T10:00:00.000+00:00", p=0.75):
    return [
        {
            "id": r.id,
            "label": "product_safety",
            "probability": p,
            "decision": 1,
            "threshold": 0.5,
            "model_version": version,
            "predicted_at": at,
        }
        for r in records
    ]


def test_rows_read_back_exactly_partitioned_by_date_and_version(tmp_path):
    log = PredictionLog(tmp_path / "log", "product_safety", rotate_seconds=60)
    a = [TextRecord("a1", "The heel broke", "de", True), TextRecord("a2", "too small", None)]
    b = [TextRecord("b1", "a needle cut me", "en")]
    log.append(a, safety_rows(a, "v1", "2026-03-01T23:59:59.999+00:00"))
    log.append(b, safety_rows(b, "v2", "2026-03-02T00:00:00.000+00:00", p=0.25))
    log.close()
    table = read_log(tmp_path / "log").sort_by("id")
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == ["a1", "a2", "b1"]
    assert [(r["date"], r["model_version"]) for r in rows] == [
        ("2026-03-01", "v1"),
        ("2026-03-01", "v1"),
        ("2026-03-02", "v2"),
    ]
    assert rows[0]["text_sha256"] == hashlib.sha256(b"The heel broke").hexdigest()
    assert rows[0]["text"] is None and rows[0]["language"] == "de" and rows[0]["escalated"] is True
    assert rows[1]["language"] is None and rows[1]["escalated"] is None
    assert [r["score"] for r in rows] == [0.75, 0.75, 0.25] and rows[0]["decision"] == 1
    assert json.loads(rows[0]["details"]) == {"threshold": 0.5}
    assert rows[0]["predicted_at"].isoformat() == "2026-03-01T23:59:59.999000+00:00"
    parts = sorted(p.relative_to(tmp_path / "log").as_posix() for p in (tmp_path / "log").rglob("*.parquet"))
    assert [p.rsplit("/", 1)[0] for p in parts] == [
        "date=2026-03-01/model_version=v1",
        "date=2026-03-02/model_version=v2",
    ]
    assert all(f"-{os.getpid()}-" in p for p in parts)  # the writing process in the name
    assert list((tmp_path / "log" / "_wal").iterdir()) == []  # every segment converted and removed
    # the documented query: a filter on the partition columns reads only their folders
    dataset = plog.dataset(tmp_path / "log")
    assert dataset.to_table(filter=ds.field("model_version") == "v2").column("id").to_pylist() == ["b1"]


def test_text_only_when_configured_and_task_columns(tmp_path):
    log = PredictionLog(tmp_path / "log", "seacat", log_text=True, rotate_seconds=60)
    rec = TranscriptRecord("t1", (Turn("customer", "Where is my parcel?"), Turn("agent", "Let me check.")))
    row = {
        "id": "t1",
        "label": "delivery",
        "label_distribution": {"delivery": 0.8, "refund": 0.2},
        "main_question": {"rule1": "Where is my parcel?", "rule2": None},
        "main_question_index": {"rule1": 0, "rule2": None},
        "sentences": ["Where is my parcel?", "Let me check."],
        "model_version": "s1",
        "predicted_at": "2026-03-01T10:00:00.000+00:00",
    }
    log.append([rec], [row])
    log.close()
    (got,) = read_log(tmp_path / "log").to_pylist()
    assert got["text"] == "customer: Where is my parcel?\nagent: Let me check."
    assert (got["label"], got["score"]) == ("delivery", 0.8)
    assert json.loads(got["details"])["main_question"]["rule1"] == "Where is my parcel?"
    # without log_text: neither the text nor the sentences it contains
    log = PredictionLog(tmp_path / "log2", "seacat", rotate_seconds=60)
    log.append([rec], [row])
    log.close()
    (got,) = read_log(tmp_path / "log2").to_pylist()
    assert got["text"] is None and "parcel" not in json.dumps(got, default=str)


def test_torn_line_dropped_and_a_redone_conversion_adds_nothing_twice(tmp_path):
    root = tmp_path / "log"
    loc = plog.locate(root)
    loc.spool.mkdir(parents=True)
    recs = [TextRecord(f"r{i}", f"text {i}") for i in range(3)]
    lines = [json.dumps(plog.entry("product_safety", r, row)) for r, row in zip(recs, safety_rows(recs))]
    dead = 2**22 + 12345  # above the usual pid_max: no such process
    segment = loc.spool / f"seg-{plog.HOST}-{dead}-{1:020d}.jsonl"
    segment.write_text("\n".join(lines) + "\n" + lines[0][:17])  # killed in the middle of a write
    copy = tmp_path / "segment.copy"
    shutil.copy(segment, copy)
    assert plog.compact(root) == 3
    shutil.copy(copy, segment)  # as if the process died after renaming the parts, before deleting it
    assert plog.compact(root) == 3
    assert sorted(read_log(root).column("id").to_pylist()) == ["r0", "r1", "r2"]
    # a live process's segment is its own: left alone
    live = loc.spool / f"seg-{plog.HOST}-{os.getppid()}-{2:020d}.jsonl"
    live.write_text(lines[0] + "\n")
    assert plog.compact(root) == 0 and live.exists()


def test_a_log_root_that_cannot_be_created_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(plog.PredictionLogError, match="cannot create"):
        plog.check_root(tmp_path / "file" / "log")


# --- a served model killed with SIGKILL --------------------------------------------------------


@contextlib.contextmanager
def server(export: Path, log_dir: Path, out: Path):
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "feedback_nlp", "serve", "--export", str(export), "--device", "cpu"]
    cmd += ["--port", str(port), "--prediction-log", str(log_dir), "--max-batch-size", "4"]
    with open(out, "ab") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()[-3000:]
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(base + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            time.sleep(0.1)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def client_loop(base: str, name: str, stop: threading.Event, answered: list[str]) -> None:
    """POST two claims at a time until stopped or the server is gone; keep the ids answered 200."""
    i = 0
    while not stop.is_set():
        ids = [f"{name}-{i}-{j}" for j in range(2)]
        body = [{"id": rid, "text": CLAIMS[(i + j) % len(CLAIMS)], "language": "en"} for j, rid in enumerate(ids)]
        try:
            status, rows = http("POST", base + "/predict", body, timeout=30)
        except OSError:
            return
        if status == 200 and sorted(r["id"] for r in rows) == ids:
            answered.extend(ids)
        i += 1


@pytest.mark.slow
def test_kill_9_loses_no_answered_row_and_sigterm_flushes(tmp_path):
    export = safety_export(tmp_path)
    log_dir, out = tmp_path / "log", tmp_path / "serve.log"
    answered: list[str] = []
    with server(export, log_dir, out) as (base, proc):
        stop = threading.Event()
        clients = [threading.Thread(target=client_loop, args=(base, f"c{k}", stop, answered)) for k in range(3)]
        for c in clients:
            c.start()
        time.sleep(7)  # past the first segment rotation (5 s): both parts and a live segment exist
        os.killpg(proc.pid, signal.SIGKILL)  # server, API process and model worker, mid-traffic
        proc.wait(timeout=30)
        for c in clients:
            c.join(timeout=60)
    assert len(answered) > 20, out.read_text()[-3000:]
    assert list((log_dir / "_wal").glob("seg-*.jsonl")), "the kill should leave a segment to compact"
    # restart: compaction at start, then traffic, then SIGTERM: the shutdown flushes its own rows
    with server(export, log_dir, out) as (base, proc):
        status, rows = http("POST", base + "/predict", [{"id": "after-restart", "text": CLAIMS[0]}])
        assert status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert list((log_dir / "_wal").glob("seg-*.jsonl")) == []
    logged = read_log(log_dir, compact_first=False).column("id").to_pylist()
    missing = sorted(set(answered) - set(logged))
    assert not missing, f"{len(missing)} answered rows not in the log: {missing[:5]}"
    assert len(logged) == len(set(logged)), "a row is in the log twice"
    assert "after-restart" in logged


def test_predict_logs_every_scored_line_with_its_export_version(tmp_path, capsys):
    from feedback_nlp.cli import predict

    export = safety_export(tmp_path)
    inp = tmp_path / "claims.jsonl"
    inp.write_text(
        "".join(json.dumps({"id": f"c{i}", "text": t, "language": "en"}) + "\n" for i, t in enumerate(CLAIMS))
    )
    args = ["--export", str(export), "--input", str(inp), "--output", str(tmp_path / "out.jsonl")]
    assert predict.main([*args, "--log-text"]) == 2
    assert "--log-text and --log-fsync need --prediction-log" in capsys.readouterr().err
    assert predict.main([*args, "--prediction-log", str(tmp_path / "log"), "--log-text", "--batch-size", "4"]) == 0
    scored = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    logged = read_log(tmp_path / "log").sort_by("id").to_pylist()
    assert [r["id"] for r in logged] == sorted(r["id"] for r in scored)
    by_id = {r["id"]: r for r in scored}
    for row in logged:
        assert row["model_version"] == by_id[row["id"]]["model_version"]
        assert row["score"] == pytest.approx(by_id[row["id"]]["probability"])
        assert row["decision"] == by_id[row["id"]]["decision"] and row["text"] == CLAIMS[int(row["id"][1:])]


def test_each_task_fills_its_columns():
    from feedback_nlp.serving.prediction_rows import summarize

    issues = summarize("multilevel_issues", {"coarse": ["delivery"], "granular": ["late delivery"]})
    assert (issues["coarse"], issues["granular"], json.loads(issues["details"])) == (
        ["delivery"],
        ["late delivery"],
        {},
    )
    mcml = summarize("mcml_bert", {"coarse": ["size"], "probabilities": {"size": 0.9, "colour": 0.2}})
    assert (mcml["coarse"], mcml["score"]) == (["size"], 0.9)
    row = {
        "intent": {"prediction": "refund", "distribution": {"refund": 0.6, "where": 0.4}},
        "handle_time": {"prediction": 7.5},
        "neighbors": [{"id": "q9", "score": 3.1}],
    }
    um = summarize("universal_model", row)
    assert (um["label"], um["score"]) == ("refund", 0.6)
    assert json.loads(um["details"]) == {"labels": {"intent": "refund", "handle_time": 7.5}, "neighbors": ["q9"]}
