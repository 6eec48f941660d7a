"""Atomic updates of the question repository under kill -9, and the `feedback-nlp repo`
export / add / delete / stats commands end to end (exit codes, messages, files)."""

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
from feedback_nlp.universal_model import chunks, updates
from feedback_nlp.universal_model.repository import Repository
from feedback_nlp.universal_model.repository_predictor import load_predictor
from feedback_nlp.universal_model.retrieval import RetrievalSettings

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "clinc150_sample.jsonl"
CONFIG = str(ROOT / "configs/experiment/universal_model_demo.yaml")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _fixture_rows() -> list[dict]:
    return [json.loads(x) for x in FIXTURE.read_text(encoding="utf-8").splitlines()]


def _grown(n: int, seed: int) -> list[Question]:
    """n questions: fixture questions with one word swapped (real vocabulary, many labels)."""
    rows, rng = _fixture_rows(), random.Random(seed)
    out = []
    for i in range(n):
        r = rng.choice(rows)
        words = r["question"].split()
        words[rng.randrange(len(words))] = rng.choice(rng.choice(rows)["question"].split())
        out.append(Question(f"s{seed}-{i}", " ".join(words), {"intent": r["intent"], "domain": r["domain"]}))
    return out


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "feedback_nlp", "repo", *args],
        env=ENV,
        capture_output=True,
        text=True,
        check=check,
        timeout=300,
    )


def _kill_when(cmd: list[str], ready, predictor, query) -> int:
    """Start `cmd`, kill -9 it as soon as `ready()` holds; meanwhile a reader keeps answering."""
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    answered, deadline = 0, time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            break
        if answered < 3:  # readers keep answering during the update
            assert predictor.predict([query])[0]["intent"]["prediction"]
            answered += 1
        time.sleep(0.0005)
    return proc.wait()


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """20K-question repositories (numba in chunks of 4,096 rows, tantivy), exported once per
    backend; each test updates its own copy."""
    made: dict[str, Path] = {}

    def get(backend: str) -> Path:
        if backend not in made:
            root = tmp_path_factory.mktemp("kill") / backend
            chunk_rows, chunks.CHUNK_ROWS = chunks.CHUNK_ROWS, 4096
            try:
                updates.export(
                    root,
                    _grown(20_000, 0),
                    RetrievalSettings(method="bm25", backend=backend),
                    ["intent", "domain"],
                    [],
                    {"weighting": "count", "backfill_prior": True},
                    None,
                )
            finally:
                chunks.CHUNK_ROWS = chunk_rows
            made[backend] = root
        return made[backend]

    return get


def _tmp_generations(gens: Path) -> list[Path]:
    return [p for p in gens.iterdir() if p.name.startswith(".tmp")]


KILL_POINTS = [
    ("numba", "add", "temp generation"),
    ("numba", "add", "chunk written"),
    ("numba", "add", "renamed generation"),
    ("numba", "delete", "rows rewritten"),
    ("numba", "delete", "renamed generation"),
    ("tantivy", "add", "tantivy commit"),
]


@pytest.mark.parametrize("backend,op,point", KILL_POINTS)
def test_kill_9_mid_update_leaves_before_or_after(tmp_path, bases, backend, op, point):
    new = _grown(3_000, 1)
    src = tmp_path / "new.jsonl"
    src.write_text("".join(json.dumps({"id": q.id, "question": q.question, **q.labels}) + "\n" for q in new))
    gone = [q.id for q in _grown(20_000, 0)[::50]]  # 400 ids spread over every chunk
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(gone) + "\n")
    root = tmp_path / "repo"
    shutil.copytree(bases(backend), root)
    before = Repository.open(root).manifest
    gens = root / "generations"
    ready = {
        "temp generation": lambda: bool(_tmp_generations(gens)),
        "chunk written": lambda: any(p.glob("*.bm25.npz") for p in _tmp_generations(gens)),
        "rows rewritten": lambda: any(p.glob("*.rows.jsonl") for p in _tmp_generations(gens)),
        "tantivy commit": lambda: any(
            (p / "tantivy" / "meta.json").exists() and len(list((p / "tantivy").iterdir())) > 3
            for p in _tmp_generations(gens)
        ),
        "renamed generation": lambda: (gens / f"{before['generation'] + 1:06d}").exists(),
    }[point]
    predictor = load_predictor(root)
    query = Question("q", "what is my current location")
    cmd = [sys.executable, "-m", "feedback_nlp", "repo", op, str(root)]
    cmd += ["--questions", str(src)] if op == "add" else ["--ids", str(ids)]
    rc = _kill_when(cmd, ready, predictor, query)
    repo = Repository.open(root)  # verifies every file's sha256
    n = len(repo)
    after = 23_000 if op == "add" else 20_000 - len(gone)
    print(f"{backend} {op} {point}: rc={rc}, questions={n}")
    assert n in (20_000, after)
    assert (n == 20_000) == (repo.manifest["model_version"] == before["model_version"])
    if n == 20_000:
        assert rc == -signal.SIGKILL
        assert repo.manifest == before
    assert predictor.predict([query])[0]["model_version"] == repo.manifest["model_version"]
    # the next update runs over whatever the killed one left behind (a temporary generation, or,
    # killed between the commit and the clean-up, the previous generation) and removes it
    if n == 20_000:
        _cli(op, str(root), *(["--questions", str(src)] if op == "add" else ["--ids", str(ids)]))
        expected = after
    else:
        _cli("delete", str(root), "--ids", new[0].id if op == "add" else _grown(20_000, 0)[1].id)
        expected = after - 1
    assert len(Repository.open(root)) == expected
    assert [p.name for p in gens.iterdir()] == [f"{Repository.open(root).manifest['generation']:06d}"]


def test_cli_export_add_delete_stats(tmp_path):
    rows = _fixture_rows()
    repo_src = tmp_path / "repo.jsonl"
    repo_src.write_text("".join(json.dumps(r) + "\n" for r in rows if r["split"] == "train"))
    out = tmp_path / "export"
    r = _cli(
        "export",
        "--config",
        CONFIG,
        f"repository.path={repo_src}",
        "labels.categorical=[intent, domain]",
        "labels.numeric=[]",
        "retrieval.method=bm25",
        f"out={out}",
    )
    assert "300 questions" in r.stdout
    m = json.loads((out / "manifest.json").read_text())
    assert m["labels"]["categorical"] == ["intent", "domain"] and m["counts"]["questions"] == 300
    new = tmp_path / "new.jsonl"
    new.write_text(
        json.dumps(
            {"id": "n1", "question": "how do i reset my zorblax", "intent": "zorblax", "domain": "meta", "split": "x"}
        )
        + "\n"
    )
    assert "add of 1 question(s) committed" in _cli("add", str(out), "--questions", str(new)).stdout
    r = _cli("delete", str(out), "--ids", rows[0]["id"], rows[1]["id"])
    assert "delete of 2 question(s) committed; 299 questions" in r.stdout
    st = json.loads(_cli("stats", str(out), "--json").stdout)
    assert st["questions"] == 299 and st["labels"]["intent"]["zorblax"] == 1
    assert st["last_update"]["op"] == "delete"
    text = _cli("stats", str(out)).stdout
    assert "299 questions" in text and "| zorblax | 1 |" in text and "last update: delete of 2" in text


def test_cli_bad_input_is_a_clear_error_and_writes_nothing(tmp_path):
    rows = [r for r in _fixture_rows() if r["split"] == "train"][:20]
    rows[5] = {**rows[5], "intent": float("nan")}
    src = tmp_path / "repo.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "export"
    r = _cli(
        "export",
        "--config",
        CONFIG,
        f"repository.path={src}",
        "labels.categorical=[intent]",
        "labels.numeric=[]",
        "retrieval.method=bm25",
        f"out={out}",
        check=False,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{src}:6: field 'intent'" in r.stderr and not out.exists()
    r = _cli("delete", str(tmp_path / "nowhere"), "--ids", "x", check=False)
    assert r.returncode == 2 and "not a question repository" in r.stderr and "Traceback" not in r.stderr
