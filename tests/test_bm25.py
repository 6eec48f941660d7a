"""002 eq. 4: our BM25 index against rank_bm25.BM25Okapi (the reference) and hand-computed values."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from feedback_nlp.universal_model.bm25 import BM25Index, okapi_idf, same_top_k, tf_weight, tokenize

FIXTURE = Path(__file__).parent / "fixtures" / "clinc150_sample.jsonl"


@pytest.fixture(scope="module")
def clinc():
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    train = [r["question"] for r in rows if r["split"] == "train"]
    test = [r["question"] for r in rows if r["split"] == "test"]
    return train, test


def test_tokenize_lowercases_and_splits_on_non_alphanumerics():
    assert tokenize("Where's my ORDER #114-22? Ça va_bien") == ["where", "s", "my", "order", "114", "22", "ça", "va", "bien"]


def test_idf_matches_hand_computation_with_epsilon_floor():
    df = np.array([1.0, 2.0, 8.0])
    idf = okapi_idf(df, 10, epsilon=0.25)
    raw = [math.log(10 - d + 0.5) - math.log(d + 0.5) for d in (1, 2, 8)]
    assert raw[2] < 0
    eps = 0.25 * sum(raw) / 3
    assert idf == pytest.approx([raw[0], raw[1], eps])


def test_tf_weight_matches_eq4_by_hand():
    # f = 2, |D| = 5, avgdl = 4, k1 = 1.5, b = 0.75
    want = 2 * 2.5 / (2 + 1.5 * (1 - 0.75 + 0.75 * 5 / 4))
    assert tf_weight(np.array([2.0]), np.array([5.0]), 4.0)[0] == pytest.approx(want)


def test_dense_scores_equal_rank_bm25_on_real_queries(clinc):
    train, test = clinc
    ref = BM25Okapi([tokenize(t) for t in train])
    ours = BM25Index.from_texts(train)
    for q in test:
        np.testing.assert_allclose(ours.get_scores(q), ref.get_scores(tokenize(q)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k", [1, 10, 100])
def test_top_k_parity_with_rank_bm25_on_real_queries(clinc, k):
    train, test = clinc
    ref = BM25Okapi([tokenize(t) for t in train])
    ours = BM25Index.from_texts(train)
    same = [same_top_k(ref.get_scores(tokenize(q)), ours.top_k(q, k)[0], k) for q in test]
    assert np.mean(same) >= 0.99
    assert all(same)


def test_top_k_scores_are_sorted_and_match_dense_scores(clinc):
    train, test = clinc
    ours = BM25Index.from_texts(train)
    for q in test[:20]:
        ids, scores = ours.top_k(q, 50)
        assert np.all(np.diff(scores) <= 0)
        np.testing.assert_allclose(scores, ours.get_scores(q)[ids], rtol=1e-12)


def test_incremental_add_equals_rank_bm25_on_the_whole_corpus(clinc):
    """002 §3.2: adding questions updates the model without a rebuild, and the result is
    what the reference computes on all questions at once (IDF, avgdl and N all change)."""
    train, test = clinc
    ours = BM25Index(merge_factor=2.0)
    for chunk in (train[:150], train[150:250], train[250:260], train[260:]):
        ours.add(chunk)
        ref = BM25Okapi([tokenize(t) for t in train[:ours.n_docs]])
        for q in test[::10]:
            np.testing.assert_allclose(ours.get_scores(q), ref.get_scores(tokenize(q)), rtol=1e-12, atol=1e-12)
            assert same_top_k(ref.get_scores(tokenize(q)), ours.top_k(q, 20)[0], 20)
    assert ours.n_docs == len(train)


def test_added_question_with_new_words_is_found_at_once(clinc):
    train, _ = clinc
    ours = BM25Index.from_texts(train)
    segments_before = len(ours.segments)
    [new_id] = ours.add(["zorblax refund for my quantum toaster"])
    ids, _ = ours.top_k("quantum zorblax", 5)
    assert ids[0] == new_id and len(ours.segments) <= segments_before + 1


def test_many_small_adds_keep_few_segments_with_sorted_postings():
    rng = np.random.default_rng(0)
    ours = BM25Index()
    for _ in range(200):
        ours.add([[f"w{x}" for x in rng.integers(0, 30, 5)] for _ in range(3)])
    assert len(ours.segments) <= 2 * math.ceil(math.log2(ours.n_docs))
    for seg in ours.segments:
        for t in range(len(seg.indptr) - 1):
            docs = seg.docs[seg.indptr[t]:seg.indptr[t + 1]]
            assert np.all(np.diff(docs) > 0)


def test_repeated_query_terms_count_once_per_occurrence(clinc):
    train, _ = clinc
    ref = BM25Okapi([tokenize(t) for t in train])
    ours = BM25Index.from_texts(train)
    q = "balance balance balance of my account"
    np.testing.assert_allclose(ours.get_scores(q), ref.get_scores(tokenize(q)), rtol=1e-12)
    assert same_top_k(ref.get_scores(tokenize(q)), ours.top_k(q, 10)[0], 10)


def test_negative_epsilon_floor_on_tiny_corpus_falls_back_to_exact_scoring():
    """With most words in most documents the mean IDF is negative, so the floor is too;
    MaxScore's bounds do not hold then, and the index scores every matched document."""
    docs = [["a", "b"], ["a", "b"], ["a", "c"], ["a", "b", "d"]]
    ref = BM25Okapi(docs)
    assert ref.average_idf < 0
    ours = BM25Index.from_texts(docs)
    for q in (["a"], ["a", "c"], ["b", "d"], ["c"]):
        np.testing.assert_allclose(ours.get_scores(q), ref.get_scores(q), rtol=1e-12)
        assert same_top_k(ref.get_scores(q), ours.top_k(q, 2)[0], 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_on_random_zipf_corpora(seed):
    rng = np.random.default_rng(seed)
    vocab = [f"t{i}" for i in range(400)]
    p = 1.0 / np.arange(1, 401)
    p /= p.sum()
    corpus = [list(rng.choice(vocab, size=rng.integers(1, 15), p=p)) for _ in range(1500)]
    ref = BM25Okapi(corpus)
    ours = BM25Index.from_texts(corpus)
    for _ in range(60):
        q = list(rng.choice(vocab, size=rng.integers(1, 8), p=p))
        k = int(rng.choice([1, 7, 100]))
        assert same_top_k(ref.get_scores(q), ours.top_k(q, k)[0], k)


def test_unknown_or_empty_query_returns_nothing(clinc):
    ours = BM25Index.from_texts(clinc[0])
    assert len(ours.top_k("qqqzzz xxyyzz", 10)[0]) == 0
    assert len(ours.top_k("", 10)[0]) == 0


def test_same_top_k_allows_ties_to_order_differently():
    ref = np.array([5.0, 3.0, 3.0, 3.0, 0.0, 1.0])
    assert same_top_k(ref, np.array([0, 3]), 2)          # any of the tied 3.0 documents
    assert same_top_k(ref, np.array([0, 1]), 2)
    assert not same_top_k(ref, np.array([1, 2]), 2)      # misses the 5.0 document
    assert not same_top_k(ref, np.array([0, 5]), 2)      # 1.0 is below the K-th score
    assert same_top_k(ref, np.array([0, 1, 2, 3, 5]), 10)  # only matched (non-zero) documents
    assert not same_top_k(ref, np.array([0, 1, 2, 3, 5, 4]), 10)
