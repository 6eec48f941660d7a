"""Build the universal model's retriever from config: bm25 (ours), rank_bm25 (reference),
dense (sentence-transformers) or hybrid.

Why a factory: the evaluation command must switch retrieval by a config override
(`retrieval.method=dense`) with no code change; rank_bm25 is kept as a selectable reference
so any run can be checked against the library the paper's numbers are comparable to.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from feedback_nlp.universal_model.bm25 import BM25Index, tokenize

METHODS = ("bm25", "rank_bm25", "dense", "hybrid")


class RankBM25Retriever:
    """rank_bm25.BM25Okapi behind the retriever interface. The reference has no incremental
    update, so the index is rebuilt over the whole corpus at the first search after adds
    (once, however many chunks were added)."""

    def __init__(self, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
        self.k1, self.b, self.epsilon = k1, b, epsilon
        self.corpus: list[list[str]] = []
        self.bm25: Any = None

    def add(self, texts: Iterable[str]) -> range:
        start = len(self.corpus)
        self.corpus.extend(tokenize(t) for t in texts)
        self.bm25 = None
        return range(start, len(self.corpus))

    def search(self, queries: Sequence[str], k: int = 100) -> list[tuple[np.ndarray, np.ndarray]]:
        if self.bm25 is None:
            from rank_bm25 import BM25Okapi
            self.bm25 = BM25Okapi(self.corpus, k1=self.k1, b=self.b, epsilon=self.epsilon)
        out = []
        for q in queries:
            scores = self.bm25.get_scores(tokenize(q))
            top = np.argsort(scores)[::-1][:k]
            top = top[scores[top] != 0]       # same convention as ours: matched documents only
            out.append((top.astype(np.int64), scores[top]))
        return out


def build_retriever(method: str = "bm25", options: Mapping[str, Any] | None = None) -> Any:
    o = dict(options or {})
    bm25_kw = {"k1": o.get("k1", 1.5), "b": o.get("b", 0.75), "epsilon": o.get("epsilon", 0.25)}
    if method == "bm25":
        return BM25Index(**bm25_kw)
    if method == "rank_bm25":
        return RankBM25Retriever(**bm25_kw)
    from feedback_nlp.universal_model.dense import DenseRetriever, HybridRetriever
    dense = DenseRetriever(o.get("dense_model", "packaged:all-MiniLM-L6-v2"), o.get("batch_size", 64))
    if method == "dense":
        return dense
    if method == "hybrid":
        return HybridRetriever(BM25Index(**bm25_kw), dense, o.get("hybrid_alpha", 0.5), o.get("hybrid_depth"))
    raise ValueError(f"retrieval.method must be one of {METHODS}, got {method!r}")
