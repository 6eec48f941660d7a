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


def lucene_bm25(
    docs: list[list[str]], query: list[str], k1: float = 1.2, b: float = 0.75, lengths: list[int] | None = None
) -> np.ndarray:
    """Lucene / tantivy BM25 by hand: idf = ln(1 + (N - n + 0.5) / (n + 0.5)); `lengths`: the
    document lengths the scorer uses, if not the token counts (the average stays the true one)."""
    n_docs, avgdl = len(docs), sum(map(len, docs)) / len(docs)
    lengths = lengths or [len(d) for d in docs]
    out = np.zeros(n_docs)
    for term in query:
        n = sum(term in d for d in docs)
        if not n:
            continue
        idf = math.log(1 + (n_docs - n + 0.5) / (n + 0.5))
        for i, d in enumerate(docs):
            tf = d.count(term)
            out[i] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[i] / avgdl)) if tf else 0.0
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


# -- the compiled engine (numba_bm25.py, bm25_kernels.py) ------------------------------------


def test_field_norm_table_is_lucenes_one_byte_length_code():
    from feedback_nlp.universal_model.bm25_segment import FIELD_NORMS, field_norm

    assert list(FIELD_NORMS[:41]) == list(range(41)) and list(FIELD_NORMS[41:46]) == [42, 44, 46, 48, 50]
    assert FIELD_NORMS[-1] == 2013265944 and (np.diff(FIELD_NORMS) > 0).all()
    assert list(field_norm(np.array([0, 7, 40, 41, 43, 44, 59, 60]))) == [0, 7, 40, 40, 42, 44, 56, 60]


def test_numba_lucene_scores_equal_tantivy_and_the_formula_with_rounded_lengths(tmp_path):
    """Documents of 45 and 61 tokens are scored with lengths 44 and 60 (Lucene's one-byte code),
    by tantivy and by the compiled engine alike."""
    from feedback_nlp.universal_model.numba_bm25 import NumbaBM25

    docs = [
        "where is my package",
        "my package is late late",
        " ".join(["refund"] + ["word"] * 44),
        " ".join(["package", "late"] + ["filler"] * 59),
        "i want a refund",
        "package",
    ]
    ours = NumbaBM25()
    ours.add(range(10, 16), docs)
    tantivy = TantivyBM25(tmp_path / "t")
    tantivy.add(range(10, 16), docs)
    tantivy.commit()
    toks = [tokenize(d) for d in docs]
    rounded = [{45: 44, 61: 60}.get(len(t), len(t)) for t in toks]
    for q in ("package late", "refund my package", "late late package", "word refund"):
        (k1, s1), (k2, s2) = ours.search([q], 10)[0], tantivy.search([q], 10)[0]
        np.testing.assert_array_equal(k1, k2)
        np.testing.assert_allclose(s1, s2, rtol=1e-6)
        want = lucene_bm25(toks, tokenize(q), lengths=rounded)
        np.testing.assert_allclose(s1, want[k1 - 10], rtol=2e-6)


def test_numba_okapi_scores_are_rank_bm25s_bm25okapi(clinc):
    from feedback_nlp.universal_model.numba_bm25 import NumbaBM25

    train, test = clinc
    ref = BM25Okapi([tokenize(t) for t in train])
    ours = NumbaBM25(variant="okapi")
    ours.add(np.arange(len(train)), train)
    for k in (1, 10, 100):
        hits = ours.search(test, k)
        assert all(same_top_k(ref.get_scores(tokenize(q)), keys, k) for q, (keys, _) in zip(test, hits))
    for q, (keys, scores) in zip(test, ours.search(test, 300)):
        np.testing.assert_allclose(scores, ref.get_scores(tokenize(q))[keys], rtol=1e-6)


def test_numba_grown_by_adds_and_deletes_scores_bit_for_bit_like_a_rebuild(clinc):
    from feedback_nlp.universal_model.numba_bm25 import NumbaBM25

    train, test = clinc
    grown = NumbaBM25()
    grown.add(range(200, 300), train[200:])  # keys need not arrive in order
    grown.commit()
    grown.add(range(0, 200), train[:200])
    grown.delete([5, 77, 250])
    grown.add([77], [train[77]])  # deleted, then added again (no commit in between)
    keep = [i for i in range(300) if i not in (5, 250)]
    rebuilt = NumbaBM25()
    rebuilt.add(keep, [train[i] for i in keep])
    assert len(grown) == len(rebuilt) == 298
    for (ka, sa), (kb, sb) in zip(grown.search(test, 50), rebuilt.search(test, 50)):
        np.testing.assert_array_equal(ka, kb)
        np.testing.assert_array_equal(sa, sb)


def test_numba_threads_and_edge_cases(clinc):
    from feedback_nlp.universal_model.numba_bm25 import NumbaBM25

    train, test = clinc
    one, two = NumbaBM25(threads=1), NumbaBM25(threads=2)
    for index in (one, two):
        index.add(range(len(train)), train)
    queries = test * 4
    for (ka, sa), (kb, sb) in zip(one.search(queries, 20), two.search(queries, 20)):
        np.testing.assert_array_equal(ka, kb)
        np.testing.assert_array_equal(sa, sb)
    word = tokenize(train[0])[-1]
    (keys, _), (none, _), (empty, _) = one.search([word, "qqqzzz xxyyzz", ""], 1000)
    assert 0 < len(keys) < len(train) and len(none) == len(empty) == 0  # only documents sharing a term
    assert all(word in tokenize(train[k]) for k in keys)
    assert one.search([], 5) == [] and len(NumbaBM25().search([word], 5)[0][0]) == 0


def _kernels(compiled: bool):
    """The compiled kernels, or a fresh copy of the same file with numba's JIT off: the Python
    source then runs line by line (what coverage can see), and must agree with the machine code."""
    import importlib.util

    import numba

    from feedback_nlp.universal_model import bm25_kernels

    if compiled:
        return bm25_kernels
    saved = numba.config.DISABLE_JIT
    numba.config.DISABLE_JIT = True
    try:
        spec = importlib.util.spec_from_file_location("bm25_kernels_interpreted", bm25_kernels.__file__)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        numba.config.DISABLE_JIT = saved
    return module


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "interpreted"])
def test_top_k_kernel_against_brute_force_with_many_ties(compiled):
    """Random weights drawn from a few values (many exact ties): the kernel's top-k equals
    numpy's full sort by (score desc, document asc), documents sharing no term excluded."""
    kernels = _kernels(compiled)
    BLOCK, postings_by_term, top_k_one = kernels.BLOCK, kernels.postings_by_term, kernels.top_k_one

    rng = np.random.default_rng(0)
    for n_docs, n_terms, k in ((7, 3, 5), (130, 6, 10), (1000, 20, 100), (3000, 8, 64)):
        rows, cols = np.nonzero(rng.random((n_docs, n_terms)) < 0.2)
        vals = rng.choice(np.float32([0.5, 1.0, 1.5, 2.25]), len(rows)).astype(np.float32)
        indptr, indices, data = postings_by_term(rows.astype(np.int64), cols.astype(np.int32), vals, n_terms)
        dense = np.zeros((n_docs, n_terms), np.float32)
        dense[rows, cols] = vals
        acc = np.zeros(n_docs, np.float32)
        bmax = np.zeros(-(-n_docs // BLOCK), np.float32)
        work = (acc, bmax, np.zeros(k, np.float32), np.zeros(n_docs, np.int32), np.zeros(n_docs, np.float32))
        batch: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for _ in range(20):
            terms = np.sort(rng.choice(n_terms, rng.integers(1, 4), replace=False)).astype(np.int32)
            counts = rng.integers(1, 3, len(terms)).astype(np.float32)
            want = np.zeros(n_docs, np.float32)
            for t, c in zip(terms, counts):
                want += np.float32(c) * dense[:, t]
            matched = np.flatnonzero(want > 0)
            order = matched[np.lexsort((matched, -want[matched]))][:k]
            doc, score = np.zeros(k, np.int32), np.zeros(k, np.float32)
            n = top_k_one(terms, counts, k, indptr, indices, data, *work, doc, score)
            np.testing.assert_array_equal(doc[:n], order)
            np.testing.assert_array_equal(score[:n], want[order])
            assert not acc.any()  # accumulator left clean for the next query
            batch.append((terms, counts, order))
        # the batch kernel (what NumbaBM25.search runs per thread) answers each query the same
        qptr = np.cumsum([0] + [len(t) for t, _, _ in batch]).astype(np.int64)
        qterms, qcounts = np.concatenate([t for t, _, _ in batch]), np.concatenate([c for _, c, _ in batch])
        out_doc, out_score = np.zeros((len(batch), k), np.int32), np.zeros((len(batch), k), np.float32)
        out_n = np.zeros(len(batch), np.int64)
        kernels.top_k_serial(qptr, qterms, qcounts, k, indptr, indices, data, *work, out_doc, out_score, out_n)
        for q, (_, _, order) in enumerate(batch):
            np.testing.assert_array_equal(out_doc[q, : out_n[q]], order)
