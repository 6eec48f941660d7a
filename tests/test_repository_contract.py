"""One contract for every retrieval backend of the question repository: add, delete and
search behave alike on the compiled engine (numba), tantivy, the bm25s BM25Okapi reference,
faiss (exact and IVF) and OpenSearch. OpenSearch runs where OPENSEARCH_URL points at a server, else it is skipped."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from feedback_nlp.universal_model.ranking import top_k
from feedback_nlp.universal_model.text import same_top_k, tokenize

FIXTURE = Path(__file__).parent / "fixtures" / "clinc150_sample.jsonl"
NEEDS_OPENSEARCH = pytest.mark.skipif(
    not os.environ.get("OPENSEARCH_URL"), reason="OPENSEARCH_URL is not set: no OpenSearch server to test against"
)


@pytest.fixture(scope="module")
def clinc():
    rows = [json.loads(x) for x in FIXTURE.read_text(encoding="utf-8").splitlines()]
    return [r["question"] for r in rows if r["split"] == "train"], [r["question"] for r in rows if r["split"] == "test"]


def _text_backend(name: str, tmp_path: Path):
    if name == "numba":
        from feedback_nlp.universal_model.numba_bm25 import NumbaBM25

        return NumbaBM25()
    if name == "tantivy":
        from feedback_nlp.universal_model.tantivy_index import TantivyBM25

        return TantivyBM25(tmp_path / "tantivy")
    if name == "reference":
        from feedback_nlp.universal_model.reference_index import ReferenceBM25

        return ReferenceBM25()
    from feedback_nlp.universal_model.opensearch_index import OpenSearchIndex

    return OpenSearchIndex.from_env(f"contract-{uuid.uuid4().hex[:8]}")


TEXT_BACKENDS = ["numba", "tantivy", "reference", pytest.param("opensearch", marks=NEEDS_OPENSEARCH)]


@pytest.mark.parametrize("backend", TEXT_BACKENDS)
def test_text_backend_add_delete_search_contract(backend, tmp_path, clinc):
    train, _ = clinc
    index = _text_backend(backend, tmp_path)
    keys = np.arange(1000, 1000 + len(train))  # keys need not start at 0 or be dense
    index.add(keys[:200], train[:200])
    index.commit()
    assert len(index) == 200
    index.add(keys[200:], train[200:])
    index.commit()
    assert len(index) == len(train)
    # an exact repository question finds itself first; results are sorted score desc, key asc
    for i in (0, 57, 250):
        got, scores = index.search([train[i]], 10)[0]
        assert got[0] == keys[i] or scores[0] == scores[list(got).index(keys[i])]
        assert np.all(np.diff(scores) <= 0)
        ties = [(a, b) for a, b, sa, sb in zip(got, got[1:], scores, scores[1:]) if sa == sb]
        assert all(a < b for a, b in ties)
    # delete: gone from results at once, others untouched
    gone = [keys[0], keys[57], keys[250]]
    index.delete(gone)
    index.commit()
    assert len(index) == len(train) - 3
    for i in (0, 57, 250):
        got, _ = index.search([train[i]], 50)[0]
        assert not set(gone) & set(got.tolist())
    # no query term in the repository: nothing, not an arbitrary order of zero scores
    assert len(index.search(["qqqzzz xxyyzz"], 10)[0][0]) == 0
    assert len(index.search([""], 10)[0][0]) == 0


@pytest.mark.parametrize("backend", TEXT_BACKENDS)
def test_text_backends_agree_with_rank_bm25_ordering_of_the_top(backend, tmp_path, clinc):
    """numba / tantivy / OpenSearch (Lucene BM25, k1=1.2) and the reference (BM25Okapi, k1=1.5) score
    differently, but the best-matching questions must largely coincide with rank-bm25's."""
    train, test = clinc
    index = _text_backend(backend, tmp_path)
    index.add(np.arange(len(train)), train)
    index.commit()
    ref = BM25Okapi([tokenize(t) for t in train])
    hits = index.search(test, 10)
    overlap = []
    for q, (got, _) in zip(test, hits):
        want = np.argsort(-ref.get_scores(tokenize(q)), kind="stable")[:10]
        overlap.append(len(set(want.tolist()) & set(got.tolist())) / 10)
    if backend == "reference":  # same ranking as BM25Okapi (tie-aware)
        assert all(same_top_k(ref.get_scores(tokenize(q)), got, 10) for q, (got, _) in zip(test, hits))
    assert np.mean(overlap) > 0.7


def _vector_backend(name: str, dim: int):
    from feedback_nlp.universal_model.vector_index import FaissVectors

    if name == "faiss-exact":
        return FaissVectors(dim, exact_max=10_000)
    if name == "faiss-ivf":
        return FaissVectors(dim, exact_max=10, nlist=8, nprobe=8)  # nprobe = nlist: exhaustive
    from feedback_nlp.universal_model.opensearch_index import OpenSearchIndex

    return OpenSearchIndex.from_env(f"contract-{uuid.uuid4().hex[:8]}", dim)


@pytest.mark.parametrize("backend", ["faiss-exact", "faiss-ivf", pytest.param("opensearch", marks=NEEDS_OPENSEARCH)])
def test_vector_backend_add_delete_search_contract(backend):
    rng = np.random.default_rng(0)
    dim, n = 16, 400
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    keys = np.arange(5000, 5000 + n)
    store = _vector_backend(backend, dim)
    if backend == "opensearch":
        store.add(keys, [f"q{k}" for k in keys], vecs)
        store.commit()
        search, remove = store.vectors.search, lambda ks: (store.delete(ks), store.commit())
    else:
        store.rebuild(keys[:300], vecs[:300])
        assert store.kind == ("ivf" if backend == "faiss-ivf" else "exact")
        store.add(keys[300:], vecs[300:])
        search, remove = store.search, store.delete
    queries = vecs[[3, 150, 350]] + 0.01 * rng.normal(size=(3, dim)).astype(np.float32)
    brute = queries @ vecs.T
    for q, (got, sims) in enumerate(search(queries, 5)):
        want_keys, want_sims = top_k(keys, brute[q], 5)
        np.testing.assert_array_equal(got, want_keys)  # exact here (IVF scans every list)
        np.testing.assert_allclose(sims, want_sims, rtol=1e-4, atol=1e-5)
    remove([keys[3], keys[350]])
    for got, _ in search(queries, 20):
        assert keys[3] not in got and keys[350] not in got


def test_tantivy_reader_does_not_create_a_missing_index(tmp_path):
    from feedback_nlp.universal_model.tantivy_index import TantivyBM25

    with pytest.raises(FileNotFoundError):
        TantivyBM25(tmp_path / "gone", create=False)
    assert not (tmp_path / "gone").exists()
