"""002 §3.2-3.3 neighbour retrieval over a repository: BM25, dense, or their rank fusion.

Why reciprocal rank fusion (Cormack et al., 2009) for the hybrid: BM25 scores and cosines
live on different scales that shift with the repository (BM25's idf grows with N), while
ranks do not; a question near the top of either list is a good neighbour. The fused score
sum 1 / (rrf_k + rank) is also what similarity-weighted votes use. Every list is ordered by
score, then key, so results do not depend on how the indexes were grown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from feedback_nlp.universal_model.normalize import BM25_TEXTS, bm25_texts
from feedback_nlp.universal_model.ranking import Hits, top_k

METHODS = ("bm25", "dense", "hybrid")
BACKENDS = ("numba", "tantivy", "reference", "opensearch")


@dataclass
class RetrievalSettings:
    """What a repository's manifest stores under `retrieval` (chosen on CLINC150, see docs)."""

    method: str = "hybrid"  # bm25 | dense | hybrid (reciprocal rank fusion)
    backend: str = (
        "numba"  # BM25 engine: numba (compiled, default) | tantivy | reference (bm25s BM25Okapi) | opensearch
    )
    k: int = 20  # neighbours that vote (002 §3.2 used 100 with BM25)
    depth: int = 50  # hybrid: candidates taken from each list
    rrf_k: int = 10  # hybrid: rank offset of reciprocal rank fusion
    dense_weight: float = 1.0  # hybrid: weight of the dense list's 1 / (rrf_k + rank)
    threads: int = 1  # BM25 search threads for a batch of queries
    exact_max: int = 200_000  # faiss: exact IndexFlatIP up to this many questions, IVF above
    nlist: int | None = None  # IVF lists (None: 4 sqrt(n))
    nprobe: int = 16  # IVF lists scanned per query (1M: recall@100 0.995 at 11.7x brute force)
    purge_on_delete: bool = True  # rewrite BM25 segments on delete (see docs/question_repository.md)
    bm25_text: str = "plain"  # BM25-side normalisation of questions and queries (normalize.py)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"retrieval.method must be one of {METHODS}, got {self.method!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"retrieval.backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.bm25_text not in BM25_TEXTS:
            raise ValueError(f"retrieval.bm25_text must be one of {BM25_TEXTS}, got {self.bm25_text!r}")
        for name in ("k", "depth", "rrf_k", "threads", "exact_max", "nprobe"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"retrieval.{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> RetrievalSettings:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in m.items() if k in known})

    @property
    def needs_embedder(self) -> bool:
        return self.method in ("dense", "hybrid")


def rrf(lists: Sequence[Hits], weights: Sequence[float], rrf_k: int, k: int) -> Hits:
    """Reciprocal rank fusion of ranked key lists (rank 1 = best)."""
    fused: dict[int, float] = {}
    for (keys, _), w in zip(lists, weights):
        for rank, key in enumerate(keys.tolist(), start=1):
            fused[key] = fused.get(key, 0.0) + w / (rrf_k + rank)
    if not fused:
        return np.zeros(0, np.int64), np.zeros(0)
    keys = np.fromiter(fused, np.int64, len(fused))
    return top_k(keys, np.fromiter(fused.values(), np.float64, len(fused)), k)


def search(
    settings: RetrievalSettings,
    text_index: Any,
    vectors: Any,
    embedder: Any,
    queries: Sequence[str],
    k: int | None = None,
) -> list[Hits]:
    """Top-k neighbours (keys, scores) per query with the repository's method."""
    k = settings.k if k is None else k
    if settings.method == "bm25":
        return text_index.search(bm25_texts(settings.bm25_text, queries), k)
    qvec = embedder.encode(list(queries))
    if settings.method == "dense":
        return vectors.search(qvec, k)
    depth = max(settings.depth, k)
    sparse, dense = text_index.search(bm25_texts(settings.bm25_text, queries), depth), vectors.search(qvec, depth)
    return [rrf([s, d], [1.0, settings.dense_weight], settings.rrf_k, k) for s, d in zip(sparse, dense)]
