"""Dense (sentence-transformers) and hybrid BM25 + dense retrieval for the universal model.

Why: 002 §3.3 notes that deep retrieval models score slightly better than BM25 but chooses
BM25 for interpretability; these are the config options to make that trade the other way.
Embeddings are L2-normalised, so similarity = cosine; adding questions appends embeddings.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from feedback_nlp.universal_model.bm25 import BM25Index


def top_k_dense(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of one row of similarities, by score desc then id."""
    k = min(k, len(sims))
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    part = np.argpartition(-sims, k - 1)[:k]
    order = np.lexsort((part, -sims[part]))
    return part[order].astype(np.int64), sims[part[order]].astype(np.float64)


def _dimension(model: Any) -> int:
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


class DenseRetriever:
    """Cosine k-NN over sentence-transformer embeddings of the repository questions."""

    def __init__(self, model_name: str = "packaged:all-MiniLM-L6-v2", batch_size: int = 64, model: Any = None):
        if model is None:
            from feedback_nlp.common.model_factory import load_sentence_transformer
            model = load_sentence_transformer(model_name, device="cpu")
        self.model, self.batch_size = model, batch_size
        self.emb = np.zeros((0, _dimension(model)), dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return self.emb[:0]
        return np.asarray(self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                            convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)

    def add(self, texts: Iterable[str]) -> range:
        new = self.encode(list(texts))
        start = len(self.emb)
        self.emb = np.concatenate((self.emb, new))
        return range(start, len(self.emb))

    def search(self, queries: Sequence[str], k: int = 100) -> list[tuple[np.ndarray, np.ndarray]]:
        q = self.encode(list(queries))
        return [top_k_dense(row, k) for row in q @ self.emb.T]


class HybridRetriever:
    """002 §3.3's two families combined: alpha * BM25 / max BM25 + (1 - alpha) * cosine,
    over the union of each retriever's top `depth` (default 2k) candidates."""

    def __init__(self, sparse: BM25Index, dense: DenseRetriever, alpha: float = 0.5, depth: int | None = None):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"hybrid alpha must be in [0, 1], got {alpha}")
        self.sparse, self.dense, self.alpha, self.depth = sparse, dense, alpha, depth

    def add(self, texts: Iterable[str]) -> range:
        texts = list(texts)
        ids = self.sparse.add(texts)
        self.dense.add(texts)
        return ids

    def search(self, queries: Sequence[str], k: int = 100) -> list[tuple[np.ndarray, np.ndarray]]:
        depth = self.depth or 2 * k
        qemb = self.dense.encode(list(queries))
        out = []
        for query, qe in zip(queries, qemb):
            sims = self.dense.emb @ qe
            dense_ids, _ = top_k_dense(sims, depth)
            sparse_ids, sparse_scores = self.sparse.top_k(query, depth)
            cand = np.union1d(dense_ids, sparse_ids)
            bm25 = np.zeros(len(cand))
            if len(sparse_ids):
                bm25 = self.sparse.get_scores(query)[cand]
                top = float(sparse_scores[0])
                bm25 = bm25 / top if top > 0 else bm25
            combined = self.alpha * bm25 + (1 - self.alpha) * sims[cand]
            ids, scores = top_k_dense(combined, k)
            out.append((cand[ids], scores))
        return out
