"""002 §3.2: the exported question repository -- export, add, delete, stats, load_predictor.

Real packaged MiniLM embeddings and real CLINC150 questions (fixture); each check compares
with an independent expectation: a rebuild from the resulting question set, the exact text
of a deleted question, the files' sha256, the state before an update."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from feedback_nlp.core.errors import DataValidationError
from feedback_nlp.core.records import Question
from feedback_nlp.universal_model import updates
from feedback_nlp.universal_model.repository import Repository
from feedback_nlp.universal_model.repository_predictor import load_predictor
from feedback_nlp.universal_model.repository_store import RepositoryError
from feedback_nlp.universal_model.retrieval import RetrievalSettings

FIXTURE = Path(__file__).parent / "fixtures" / "clinc150_sample.jsonl"
LABELS = (["intent", "domain"], [])
PREDICTION = {"weighting": "similarity", "backfill_prior": True}


@pytest.fixture(scope="module")
def embedder():
    from feedback_nlp.universal_model.embedder import Embedder

    return Embedder("packaged:all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def clinc():
    rows = [json.loads(x) for x in FIXTURE.read_text(encoding="utf-8").splitlines()]
    qs = [Question(r["id"], r["question"], {"intent": r["intent"], "domain": r["domain"]}) for r in rows]
    return [q for q, r in zip(qs, rows) if r["split"] == "train"], [q for q, r in zip(qs, rows) if r["split"] == "test"]


def _jsonl(path: Path, questions) -> Path:
    path.write_text("".join(json.dumps({"id": q.id, "question": q.question, **q.labels}) + "\n" for q in questions))
    return path


def _export(root, questions, embedder, **settings):
    return updates.export(root, questions, RetrievalSettings(**settings), *LABELS, PREDICTION, embedder)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


@pytest.mark.parametrize("method", ["hybrid", "bm25", "dense"])
def test_add_and_delete_equal_a_rebuild(tmp_path, clinc, embedder, method):
    """Predictions after export + add + add + delete equal those of a repository exported from
    the resulting question set in one go (neighbour ids, scores, labels)."""
    train, test = clinc
    root = tmp_path / "repo"
    _export(root, train[:150], embedder, method=method)
    updates.add(root, _jsonl(tmp_path / "a.jsonl", train[150:240]), embedder=embedder)
    updates.add(root, _jsonl(tmp_path / "b.jsonl", train[240:]), embedder=embedder)
    gone = [q.id for q in train[::9]]
    updates.delete(root, gone)
    kept = [q for q in train if q.id not in set(gone)]
    _export(tmp_path / "rebuild", kept, embedder, method=method)
    grown, rebuilt = load_predictor(root), load_predictor(tmp_path / "rebuild")
    a, b = grown.predict(test), rebuilt.predict(test)
    # embeddings of a text vary in the last float bits with its batch's padding: labels and
    # neighbours must be equal, vote shares equal to float precision
    assert [r[n]["prediction"] for r in a for n in LABELS[0]] == [r[n]["prediction"] for r in b for n in LABELS[0]]
    assert [list(r["intent"]["distribution"]) for r in a] == [list(r["intent"]["distribution"]) for r in b]
    np.testing.assert_allclose(
        [v for r in a for v in r["intent"]["distribution"].values()],
        [v for r in b for v in r["intent"]["distribution"].values()],
        rtol=1e-6,
    )
    assert [[n["id"] for n in r["neighbors"]] for r in a] == [[n["id"] for n in r["neighbors"]] for r in b]
    np.testing.assert_allclose(
        [n["score"] for r in a for n in r["neighbors"]], [n["score"] for r in b for n in r["neighbors"]], rtol=1e-5
    )
    assert Repository.open(root).manifest["counts"] == Repository.open(tmp_path / "rebuild").manifest["counts"]


def test_deleted_question_is_found_nowhere(tmp_path, clinc, embedder):
    train, _ = clinc
    root = tmp_path / "repo"
    _export(root, train, embedder)
    victim = train[42]
    before = Repository.open(root)
    key = int(before.keys[42])
    assert key in before.text_index.search([victim.question], 5)[0][0]
    updates.delete(root, [victim.id])
    repo = Repository.open(root)
    assert victim.id not in {q.id for q in repo.rows.values()} and key not in repo.rows
    assert key not in repo.text_index.search([victim.question], 300)[0][0]  # BM25
    assert key not in repo.vectors.search(embedder.encode([victim.question]), 300)[0][0]  # vectors
    needle = victim.question.encode()
    assert not [name for name, data in _snapshot(root).items() if needle in data]  # no file keeps its text
    assert len(repo) == len(train) - 1 == len(repo.embeddings())


def test_export_manifest_hashes_and_damage_detection(tmp_path, clinc, embedder):
    train, _ = clinc
    m = _export(tmp_path / "repo", train[:60], embedder)
    assert (m["task"], m["record_kind"], m["counts"]["questions"]) == ("universal_model", "question", 60)
    assert m["embedder"]["name"] == "packaged:all-MiniLM-L6-v2" and len(m["embedder"]["revision"]) == 16
    assert m["labels"] == {"categorical": ["intent", "domain"], "numeric": []}
    assert m["retrieval"]["method"] == "hybrid" and m["prediction"] == PREDICTION
    kinds = {Path(f).name.split(".", 2)[2] for f in m["files"]}
    assert kinds == {"rows.jsonl", "ids.json", "bm25.npz", "keys.npy", "emb.npy"}  # one chunk, no faiss file
    Repository.open(tmp_path / "repo")  # verifies every sha256
    m2 = updates.add(tmp_path / "repo", _jsonl(tmp_path / "a.jsonl", train[60:70]), embedder=embedder)
    assert m2["model_version"] != m["model_version"] and m2["generation"] == m["generation"] + 1
    victim = tmp_path / "repo" / next(f for f in m2["files"] if f.endswith("emb.npy"))
    victim.write_bytes(victim.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(RepositoryError, match="sha256"):
        Repository.open(tmp_path / "repo")


def test_stats_counts_per_label_size_and_last_update(tmp_path, clinc, embedder):
    train, _ = clinc
    root = tmp_path / "repo"
    _export(root, train[:45], embedder, method="bm25")
    updates.delete(root, [train[0].id, train[1].id])
    st = updates.stats(root)
    want: dict[str, int] = {}
    for q in train[2:45]:
        want[q.labels["intent"]] = want.get(q.labels["intent"], 0) + 1
    assert st["labels"]["intent"] == want and st["questions"] == 43
    assert st["last_update"]["op"] == "delete" and st["last_update"]["questions"] == 2
    assert st["size_bytes"] == sum(
        p.stat().st_size for p in (root / "generations").rglob("*") if p.is_file() and not p.name.endswith(".lock")
    )


BAD_LINES = [
    ('{"id": "n1", "question": "where am i", "intent": NaN}', "intent", "finite|string or an integer"),
    ('{"id": "n1", "question": "where am i", "intent": ["a", "b"]}', "intent", "string or an integer"),
    ('{"id": "n1", "question": "where am i", "intent": true}', "intent", "string or an integer"),
    ('{"id": "n1", "question": "where am i"', "<line>", "invalid JSON"),
    ('{"id": "n1", "question": 3, "intent": "x"}', "question", "string"),
]


@pytest.mark.parametrize("line,field,message", BAD_LINES)
def test_bad_question_file_leaves_the_repository_unchanged(tmp_path, clinc, embedder, line, field, message):
    train, _ = clinc
    root = tmp_path / "repo"
    _export(root, train[:30], embedder, method="bm25")
    before = _snapshot(root)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "ok", "question": "fine", "intent": "weather"}) + "\n" + line + "\n")
    with pytest.raises(DataValidationError) as e:
        updates.add(root, bad, embedder=embedder)
    assert f"{bad}:2: field '{field}'" in str(e.value)
    assert any(__import__("re").search(message, str(p)) for p in e.value.problems)
    assert _snapshot(root) == before


def test_numeric_label_schema_rejects_nan_and_strings(tmp_path, embedder):
    qs = [Question("a", "slow delivery", {"product": "x", "handle_time": 5.0})]
    bad = [
        Question("b", "refund", {"product": "y", "handle_time": "slow"}),
        Question("c", "refund", {"product": "y", "handle_time": float("nan")}),
    ]
    src = _jsonl(tmp_path / "q.jsonl", qs + bad)
    with pytest.raises(DataValidationError) as e:
        updates.export(
            tmp_path / "repo",
            qs + bad,
            RetrievalSettings(method="bm25"),
            ["product"],
            ["handle_time"],
            PREDICTION,
            None,
            src,
        )
    assert [(p.line, p.field) for p in e.value.problems] == [(2, "handle_time"), (3, "handle_time")]
    assert not (tmp_path / "repo").exists()


def test_duplicate_and_unknown_ids_and_other_embedder(tmp_path, clinc, embedder):
    train, _ = clinc
    root = tmp_path / "repo"
    _export(root, train[:30], embedder)
    before = _snapshot(root)
    with pytest.raises(DataValidationError, match=r"dup.jsonl:1: field 'id': duplicate id"):
        updates.add(root, _jsonl(tmp_path / "dup.jsonl", [train[3]]), embedder=embedder)
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{train[1].id}\nno-such-id\n")
    with pytest.raises(DataValidationError, match=r"ids.txt:2: field 'id': unknown id 'no-such-id'"):
        updates.delete(root, *updates.read_ids([str(ids)]))
    with pytest.raises(ValueError, match="differs from the repository's"):
        updates.add(root, _jsonl(tmp_path / "new.jsonl", train[40:42]), embedder_name="sentence-transformers/other")
    other = type(embedder).__new__(type(embedder))
    other.__dict__.update(embedder.__dict__, revision="0123456789abcdef")
    with pytest.raises(ValueError, match="revision 0123456789abcdef"):
        updates.add(root, _jsonl(tmp_path / "new.jsonl", train[40:42]), embedder=other)
    assert _snapshot(root) == before


def test_predictor_sees_an_update_after_commit_and_needs_no_lightning(tmp_path, clinc, embedder):
    import subprocess
    import sys

    train, test = clinc
    root = tmp_path / "repo"
    _export(root, train[:100], embedder)
    p = load_predictor(root)
    first = p.predict(test[:3])
    assert [r["id"] for r in first] == [q.id for q in test[:3]]
    assert {"intent", "domain", "neighbors", "model_version"} <= set(first[0])
    dist = first[0]["intent"]["distribution"]
    assert first[0]["intent"]["prediction"] == max(dist, key=dist.get) and sum(dist.values()) == pytest.approx(1.0)
    new = Question("new-1", "zorblax quantum toaster refund", {"intent": "zorblax", "domain": "kitchen_and_dining"})
    updates.add(root, _jsonl(tmp_path / "n.jsonl", [new]), embedder=embedder)
    [row] = p.predict([Question("x", "zorblax quantum toaster refund please")])
    assert row["model_version"] != first[0]["model_version"] and row["neighbors"][0]["id"] == "new-1"
    code = (
        "import sys, feedback_nlp.universal_model.repository_predictor as m; "
        "print(sorted(x for x in sys.modules if x.split('.')[0] in ('lightning', 'pytorch_lightning')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_predict_and_the_serving_registry_load_a_repository_like_any_export(tmp_path, clinc, embedder):
    """predict.py (and so `serve`, through the same registry) scores question records against an
    exported repository: rows match the repository predictor's, one per record, by id."""
    from feedback_nlp.cli import predict
    from feedback_nlp.serving.registry import load_export

    train, test = clinc
    root = tmp_path / "repo"
    _export(root, train[:100], embedder)
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps({"id": q.id, "question": q.question}) + "\n" for q in test[:5]))
    out = tmp_path / "pred.jsonl"
    assert predict.main(["--export", str(root), "--input", str(queries), "--output", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    want = load_predictor(root).predict(test[:5])
    assert [r["id"] for r in rows] == [q.id for q in test[:5]]
    assert [r["intent"]["prediction"] for r in rows] == [w["intent"]["prediction"] for w in want]
    assert all(r["model_version"] == want[0]["model_version"] and "predicted_at" in r for r in rows)
    _, manifest = load_export(root)
    assert (manifest["task"], manifest["record_kind"]) == ("universal_model", "question")
    # what `serve` checks before starting: the repository's loader exists; no ONNX backend for it
    from feedback_nlp.serving.manifest import ExportError
    from feedback_nlp.serving.registry import preflight
    from feedback_nlp.serving.runtime import RuntimeOptions

    assert preflight(root, RuntimeOptions())["model_version"] == manifest["model_version"]
    with pytest.raises(ExportError, match="task universal_model serves with --backend torch only"):
        preflight(root, RuntimeOptions(backend="onnx"))
    with pytest.raises(ExportError, match="task universal_model has no --backend onnx"):
        load_export(root, RuntimeOptions(backend="onnx"))
