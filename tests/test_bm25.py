"""002 eq. 4 BM25 backends against independent expectations: tantivy against the Lucene
BM25 formula computed by hand, the bm25s reference against rank_bm25.BM25Okapi."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from feedback_nlp.universal_model.reference_index import ReferenceBM25
from feedback_nlp.universal_model.tantivy_index import TantivyBM25
from feedback_nlp.universal_model.text import same_top_k, tokenize

FIXTURE = Path(__file__).parent / "fixtures" / "clinc150_sample.jsonl"


@pytest.fixture(scope="module")
def clinc():
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    return [r["question"] for r in rows if r["split"] == "train"], [r["question"] for r in rows if r["split"] == "test"]


def test_tokenize_lowercases_and_splits_on_non_alphanumerics():
    assert tokenize("Where's my ORDER #114-22? Ça va_bien") == [
        "where",
        "s",
        "my",
        "order",
        "114",
        "22",
        "ça",
        "va",
        "bien",
    ]


def lucene_bm25(docs: list[list[str]], query: list[str], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """Lucene / tantivy BM25 by hand: idf = ln(1 + (N - n + 0.5) / (n + 0.5))."""
    n_docs, avgdl = len(docs), sum(map(len, docs)) / len(docs)
    out = np.zeros(n_docs)
    for term in query:
        n = sum(term in d for d in docs)
        if not n:
            continue
        idf = math.log(1 + (n_docs - n + 0.5) / (n + 0.5))
        for i, d in enumerate(docs):
            tf = d.count(term)
            out[i] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(d) / avgdl)) if tf else 0.0
    return out


def test_tantivy_scores_equal_lucene_bm25_by_hand(tmp_path):
    docs = [
        "where is my package",
        "my package is late late",
        "refund for my package please",
        "i want a refund",
        "package",
        "the weather today in paris",
        "is it going to rain today",
    ]
    index = TantivyBM25(tmp_path / "t")
    index.add(range(10, 17), docs)
    index.commit()
    toks = [tokenize(d) for d in docs]
    for q in ("package late", "refund my package", "rain today", "late late package"):
        keys, scores = index.search([q], 10)[0]
        want = lucene_bm25(toks, tokenize(q))
        np.testing.assert_allclose(scores, want[keys - 10], rtol=1e-5)
        assert set(keys - 10) == set(np.flatnonzero(want > 0))


def test_reference_backend_is_the_bm25okapi_ranking(clinc):
    """bm25s `robertson` = BM25Okapi without its constant (k1 + 1) factor, as long as no idf is
    negative (rank-bm25 floors those at 0.25 x mean idf, bm25s at 0): scores x 2.5 agree."""
    train, test = clinc
    ref = BM25Okapi([tokenize(t) for t in train])
    ours = ReferenceBM25()
    ours.add(np.arange(len(train)), train)
    assert (np.asarray(list(ref.idf.values())) > 0).all()
    for q in test:
        np.testing.assert_allclose(2.5 * ours.scores(q), ref.get_scores(tokenize(q)), rtol=1e-9, atol=1e-12)
    for k in (1, 10, 100):
        hits = ours.search(test, k)
        assert all(same_top_k(ref.get_scores(tokenize(q)), keys, k) for q, (keys, _) in zip(test, hits))


def test_tantivy_incremental_add_and_delete_score_like_a_rebuild(tmp_path, clinc):
    train, test = clinc
    grown = TantivyBM25(tmp_path / "grown")
    for lo, hi in ((0, 120), (120, 200), (200, 300)):
        grown.add(range(lo, hi), train[lo:hi])
        grown.commit()
    rebuilt = TantivyBM25(tmp_path / "rebuilt")
    rebuilt.add(range(300), train)
    rebuilt.commit()
    for (ka, sa), (kb, sb) in zip(grown.search(test, 30), rebuilt.search(test, 30)):
        np.testing.assert_array_equal(ka, kb)
        np.testing.assert_allclose(sa, sb, rtol=1e-6)


def test_same_top_k_allows_ties_to_order_differently():
    ref = np.array([5.0, 3.0, 3.0, 3.0, 0.0, 1.0])
    assert same_top_k(ref, np.array([0, 3]), 2)  # any of the tied 3.0 documents
    assert same_top_k(ref, np.array([0, 1]), 2)
    assert not same_top_k(ref, np.array([1, 2]), 2)  # misses the 5.0 document
    assert not same_top_k(ref, np.array([0, 5]), 2)  # 1.0 is below the K-th score
    assert same_top_k(ref, np.array([0, 1, 2, 3, 5]), 10)  # only matched (non-zero) documents
    assert not same_top_k(ref, np.array([0, 1, 2, 3, 5, 4]), 10)
