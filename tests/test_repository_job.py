"""`feedback-nlp repo update`, the universal model's periodic update as one job (issue 23.5),
end to end on tiny exports: a random tiny SeaCat export tags the main questions of new demo
transcripts, a BM25 repository of earlier transcripts' questions takes them, a deletion list
removes questions (by question id and by transcript id) and keeps listed new transcripts out,
and the repository before and after is compared on a frozen query set.

Independent expectations: the question set is rebuilt here from the SeaCat export's own
offline rows (rule 2) and the lists; the after-repository must equal a fresh export of that
set, and the compare's KPIs must equal the KPIs of the original and of that rebuild scored
here. Atomicity: a failing rule, an exception just before the commit and a kill -9 in the
middle each leave every file of the repository as it was."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from feedback_nlp.core.records import Question
from feedback_nlp.universal_model import updates
from feedback_nlp.universal_model.retrieval import RetrievalSettings
from tests.serving_helpers import seacat_export

pytestmark = pytest.mark.slow
PREDICTION = {"weighting": "similarity", "backfill_prior": True}
SCRIPT = str(Path(sys.executable).parent / "feedback-nlp")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from feedback_nlp.demo_data.seacat import generate_transcripts

    tmp = tmp_path_factory.mktemp("repo_job")
    transcripts = generate_transcripts(random.Random(7), 60)
    old, new, held = transcripts[:30], transcripts[30:42], transcripts[42:]
    seacat = seacat_export(tmp / "seacat", transcripts)
    questions = [Question(f"q-{t['id']}", t["main_question"], {"product": t["label"]}) for t in old]
    queries = tmp / "queries.jsonl"
    queries.write_text(
        "".join(
            json.dumps({"id": f"query-{t['id']}", "question": t["main_question"], "product": t["label"]}) + "\n"
            for t in held
        )
    )
    new_path = tmp / "new.jsonl"
    new_path.write_text("".join(json.dumps(t) + "\n" for t in new))
    deletions = [questions[0].id, old[1]["id"], new[0]["id"], "never-stored", f"query-{held[0]['id']}"]
    ids = tmp / "deletions.txt"
    ids.write_text("\n".join(deletions) + "\n")
    return {
        "tmp": tmp,
        "seacat": seacat,
        "questions": questions,
        "new": new,
        "queries": queries,
        "new_path": new_path,
        "ids": ids,
        "deletions": deletions,
    }


def _repository(root: Path, questions) -> Path:
    updates.export(root, questions, RetrievalSettings(method="bm25"), ["product"], [], PREDICTION, None)
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock") and ".update-staging-" not in str(p)
    }


def _questions(root: Path) -> dict[str, tuple[str, dict]]:
    from feedback_nlp.universal_model import chunks as ch
    from feedback_nlp.universal_model.repository_store import read_manifest

    m = read_manifest(root)
    rows = [r for c in m["chunks"] for r in ch.read_rows(root / m["generation_dir"], c)]
    return {r["id"]: (r["question"], r["labels"]) for r in rows}


def _kpis(root: Path, queries: Path, deleted: set[str]) -> dict[str, float]:
    import numpy as np

    from feedback_nlp.operations.compare import evaluate, load_eval, score
    from feedback_nlp.serving.registry import load_export

    evalset = load_eval(queries, "universal_model", deleted)
    rows = score(load_export(root)[0], evalset.records, 8)
    everything = np.arange(len(evalset.records))
    return evaluate("universal_model", evalset.records, rows).kpis(everything, everything)


def _cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [SCRIPT, "repo", "update", *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout
    )


def _in_process(capsys, *args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `feedback-nlp repo update` run in this process (no start-up cost)."""
    from feedback_nlp.cli.main import main

    capsys.readouterr()
    try:
        code = main(["repo", "update", *map(str, args)])
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _args(w, root: Path, *extra) -> list:
    return [
        root,
        "--transcripts",
        w["new_path"],
        "--seacat-export",
        w["seacat"],
        "--queries",
        w["queries"],
        "--delete-ids",
        w["ids"],
        "--rounds",
        "200",
        *extra,
    ]


def test_update_adds_seacat_questions_applies_deletions_and_compares_before_and_after(world, tmp_path):
    from feedback_nlp.core.records import TranscriptRecord, Turn
    from feedback_nlp.serving.registry import load_export

    w = world
    root = _repository(tmp_path / "repo", w["questions"])
    before_kpis = _kpis(root, w["queries"], set(w["deletions"]))
    # the expected question set, built here: SeaCat's own rule-2 main question of each new transcript
    predictor = load_export(w["seacat"])[0]
    kept = [t for t in w["new"] if t["id"] not in w["deletions"]]
    records = [TranscriptRecord(t["id"], tuple(Turn(x["speaker"], x["text"]) for x in t["turns"])) for t in kept]
    rows = predictor.predict(records)
    added = [
        Question(f"q-{t['id']}", r["main_question"]["rule2"], {"product": t["label"]})
        for t, r in zip(kept, rows)
        if r["main_question"]["rule2"]
    ]
    gone = {w["questions"][0].id, f"q-{w['deletions'][1]}"}
    expected = [q for q in w["questions"] if q.id not in gone] + added
    assert len(expected) == 30 - 2 + len(added) and len(added) >= 10

    proc = _cli(*_args(w, root, "--out", tmp_path / "report", "--rule", "product/top1>=-1"))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "update.json").read_text())
    assert report["committed"] and report["added"] == len(added) and report["deleted"] == 2
    assert report["transcripts_on_deletion_list"] == 1 and report["queries_deleted"] == 1
    assert _questions(root) == {q.id: (q.question, q.labels) for q in expected}
    rebuild = _repository(tmp_path / "rebuild", expected)
    after_kpis = _kpis(rebuild, w["queries"], set(w["deletions"]))
    assert report["values"]["before"] == pytest.approx(before_kpis)
    assert report["values"]["after"] == pytest.approx(after_kpis)
    diff = report["diffs"]["after"]["product/top1"]
    assert diff["diff"] == pytest.approx(after_kpis["product/top1"] - before_kpis["product/top1"])
    assert diff["low"] <= diff["diff"] <= diff["high"]
    assert (
        report["model_version"]["after"] == load_export(root)[1]["model_version"] != report["model_version"]["before"]
    )
    assert "committed: 30 -> " in proc.stdout and "| product/top1 |" in proc.stdout
    assert not list(root.glob(".update-staging-*")) and len(list((root / "generations").iterdir())) == 1
    # the same transcripts again: refused before any work, naming the file and line
    again = _cli(*_args(w, root))
    assert again.returncode == 2 and again.stderr.startswith("error: 11 problem(s)"), again.stderr
    assert f"{w['new_path']}:2: field 'id': question 'q-{w['new'][1]['id']}' is already in" in again.stderr


def test_a_failed_rule_or_a_crash_before_the_commit_leaves_the_repository_as_it_was(world, tmp_path, capsys):
    from feedback_nlp.operations import repository_update as job

    w = world
    root = _repository(tmp_path / "repo", w["questions"])
    snap = _snapshot(root)
    code, out, err = _in_process(capsys, *_args(w, root, "--rule", "product/top1>=1.5"))  # a difference is <= 1
    assert code == 1 and "not committed" in out and "product/top1>=1.5" in out, (out, err)
    assert _snapshot(root) == snap and not list(root.glob(".update-staging-*"))
    plan = job.prepare(root, w["new_path"], w["seacat"], w["queries"], w["ids"], rounds=10)

    def crash(staging):
        assert len(_questions(staging)) > len(w["questions"])  # the staged update is complete...
        raise OSError("disk gone")  # ...and fails just before the commit

    with pytest.raises(OSError, match="disk gone"):
        job.run(plan, commit_hook=crash)
    assert _snapshot(root) == snap and not list(root.glob(".update-staging-*"))


def test_a_kill_in_the_middle_leaves_the_repository_as_it_was_and_the_next_update_cleans_up(world, tmp_path):
    w = world
    root = _repository(tmp_path / "repo", w["questions"])
    snap = _snapshot(root)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    args = [str(a) for a in _args(w, root)]
    args[args.index("--rounds") + 1] = "200000"  # a long compare: the kill lands after the staged add and delete
    proc = subprocess.Popen(
        [SCRIPT, "repo", "update", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    staged = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = [p for p in root.glob(".update-staging-*/manifest.json")]
        if found and json.loads(found[0].read_text()).get("last_update", {}).get("op") == "delete":
            staged = found[0]
            break
        time.sleep(0.02)
    assert staged is not None and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert _snapshot(root) == snap and list(root.glob(".update-staging-*"))  # left behind, never committed
    done = _cli(*_args(w, root))
    assert done.returncode == 0, done.stderr
    assert not list(root.glob(".update-staging-*")) and _snapshot(root) != snap


def test_bad_input_is_refused_with_one_error_line_before_any_model_loads(world, tmp_path, capsys):
    w = world
    root = _repository(tmp_path / "repo", w["questions"])
    snap = _snapshot(root)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(w["new_path"].read_text().splitlines()[0] + "\n" + '{"id": "x", "turns": 3, "label": "a"}\n')
    other = tmp_path / "other_seacat"
    shutil.copytree(w["seacat"], other)
    (other / "seacat.json").write_text((other / "seacat.json").read_text() + " ")
    for args, message in [
        ([tmp_path / "nothing", *_args(w, root)[1:]], "not a question repository"),
        (_args(w, root, "--expect-sha256", "ab" * 32), "differs from --expect-sha256"),
        ([root, "--transcripts", bad, *_args(w, root)[3:]], f"{bad}:2: field 'turns'"),
        ([*_args(w, root)[:3], "--seacat-export", other, *_args(w, root)[5:]], "seacat.json"),
        (_args(w, root, "--rule", "product/top1=>0"), "rule"),
    ]:
        code, _, err = _in_process(capsys, *args)
        assert code == 2 and err.startswith("error: ") and message in err, err
        assert "Traceback" not in err
    assert _snapshot(root) == snap
