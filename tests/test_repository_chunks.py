"""The repository's chunk layout (chunks.py, generation.py): an update shares every file it
does not change with the previous generation (same inode), rewrites only what it must, and
the result still answers like a repository exported from the same questions. Checked against
independent expectations: inode numbers, a fresh export, brute-force cosine over the live
embeddings, the exact text of deleted questions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from feedback_nlp.core.records import Question
from feedback_nlp.universal_model import chunks, updates
from feedback_nlp.universal_model.repository import Repository
from feedback_nlp.universal_model.repository_store import RepositoryError
from feedback_nlp.universal_model.retrieval import RetrievalSettings

FIXTURE = Path(__file__).parent / "fixtures" / "clinc150_sample.jsonl"
LABELS = (["intent", "domain"], [])


@pytest.fixture(scope="module")
def clinc():
    rows = [json.loads(x) for x in FIXTURE.read_text(encoding="utf-8").splitlines()]
    qs = [Question(r["id"], r["question"], {"intent": r["intent"], "domain": r["domain"]}) for r in rows]
    return [q for q, r in zip(qs, rows) if r["split"] == "train"], [q for q, r in zip(qs, rows) if r["split"] == "test"]


@pytest.fixture(scope="module")
def embedder():
    from feedback_nlp.universal_model.embedder import Embedder

    return Embedder("packaged:all-MiniLM-L6-v2")


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 100)
    monkeypatch.setattr(chunks, "SMALL", 25)


def _jsonl(path: Path, questions) -> Path:
    path.write_text("".join(json.dumps({"id": q.id, "question": q.question, **q.labels}) + "\n" for q in questions))
    return path


def _inodes(root: Path) -> dict[str, int]:
    m = json.loads((root / "manifest.json").read_text())
    return {Path(f).name: os.stat(root / f).st_ino for f in m["files"]}


def _by_id(repo: Repository, queries, k: int = 20):
    return [
        ([repo.question(key).id for key in keys], np.round(scores, 5).tolist())
        for keys, scores in repo.search([q.question for q in queries], k)
    ]


def test_updates_link_unchanged_chunk_files_and_rewrite_only_what_changed(tmp_path, clinc, small_chunks):
    train, test = clinc
    root = tmp_path / "repo"
    m = updates.export(root, train, RetrievalSettings(method="bm25"), *LABELS, {}, None)
    assert [c["live"] for c in m["chunks"]] == [100, 100, 100]
    first = _inodes(root)

    extra = [Question(f"new-{i}", f"how do i zorblax my card number {i}", {"intent": "zorblax"}) for i in range(10)]
    m = updates.add(root, _jsonl(tmp_path / "a.jsonl", extra))
    after_add = _inodes(root)
    assert {n: after_add[n] for n in first} == first  # every earlier file shared, none copied
    new_files = set(after_add) - set(first)
    assert all(n.startswith(f"c000003.g{m['generation']:06d}.") for n in new_files) and len(new_files) == 3

    victim = train[150]  # in the second chunk
    m = updates.delete(root, [victim.id])
    after_delete = _inodes(root)
    rewritten = {n for n in after_add if n not in after_delete}
    assert rewritten == {n for n in after_add if n.startswith("c000001.")}  # rows, ids, bm25 of that chunk
    assert {n: after_delete[n] for n in after_add if n not in rewritten} == {
        n: after_add[n] for n in after_add if n not in rewritten
    }
    files = [p for p in root.rglob("*") if p.is_file()]
    assert not [p for p in files if victim.question.encode() in p.read_bytes()]
    assert [p.name for p in (root / "generations").iterdir()] == [Path(m["generation_dir"]).name]

    # the grown repository answers like one exported from the resulting questions
    kept = [q for q in train if q.id != victim.id] + extra
    updates.export(tmp_path / "fresh", kept, RetrievalSettings(method="bm25"), *LABELS, {}, None)
    queries = test + extra[:2] + [victim]
    assert _by_id(Repository.open(root), queries) == _by_id(Repository.open(tmp_path / "fresh"), queries)


def test_ivf_lists_are_stored_with_the_vectors_and_follow_the_updates(tmp_path, clinc, embedder, small_chunks):
    """Above exact_max the IVF centroids and each vector's list are stored; an add assigns its
    vectors to the same lists, a delete keeps dead vectors until half a chunk is dead, and
    crossing exact_max either way switches the index kind from the stored vectors."""
    train, test = clinc
    settings = RetrievalSettings(method="dense", exact_max=250, nlist=4, nprobe=4)  # nprobe = nlist: exhaustive
    root = tmp_path / "repo"
    m = updates.export(root, train, settings, *LABELS, {}, embedder)
    assert m["vectors"]["centroids"] and all(c["ivf"] for c in m["chunks"])

    def check(repo: Repository, n: int, kind: str) -> None:
        emb, keys = repo.embeddings(), repo.keys
        assert len(repo) == n == len(emb) and repo.vectors.kind == kind
        qvec = embedder.encode([q.question for q in test[:20]])
        for qv, (got, sims) in zip(qvec, repo.vectors.search(qvec, 10)):
            brute = emb @ qv
            order = np.lexsort((keys, -brute))[:10]
            np.testing.assert_array_equal(got, keys[order])
            np.testing.assert_allclose(sims, brute[order], rtol=1e-4, atol=1e-5)

    check(Repository.open(root), 300, "ivf")
    centroids = m["vectors"]["centroids"]
    m = updates.add(root, _jsonl(tmp_path / "a.jsonl", test[:5]), embedder=embedder)
    assert m["vectors"]["centroids"] == centroids  # same lists, not retrained
    check(Repository.open(root), 305, "ivf")

    gone = [q.id for q in train[:60]]  # 60 of chunk 0's 100: its vectors are rewritten
    m = updates.delete(root, gone)
    c0 = m["chunks"][0]
    assert c0["live"] == c0["stored"] == 40 and f"g{m['generation']:06d}" in c0["emb"]
    assert m["chunks"][1]["stored"] == 100 and "g000001" in m["chunks"][1]["emb"]  # untouched: linked
    check(Repository.open(root), 245, "exact")  # 245 <= exact_max: exact index, no lists
    assert m["vectors"]["centroids"] is None and not any(c["ivf"] for c in m["chunks"])
    m = updates.add(root, _jsonl(tmp_path / "b.jsonl", test[5:30]), embedder=embedder)
    check(Repository.open(root), 270, "ivf")  # retrained from the stored vectors
    assert m["vectors"]["centroids"] != centroids


def test_a_repository_in_the_previous_format_is_refused_with_what_to_do(tmp_path, clinc):
    train, _ = clinc
    root = tmp_path / "repo"
    updates.export(root, train[:20], RetrievalSettings(method="bm25"), *LABELS, {}, None)
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    for action in (lambda: Repository.open(root), lambda: updates.delete(root, [train[0].id])):
        with pytest.raises(RepositoryError, match=r"format version 1.*re-export it .*feedback-nlp repo export"):
            action()
    m = updates.export(root, train[:30], RetrievalSettings(method="bm25"), *LABELS, {}, None)  # re-export in place
    assert m["format_version"] == 2 and len(Repository.open(root)) == 30
