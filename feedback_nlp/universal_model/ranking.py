"""Deterministic top-K: score descending, then repository key ascending.

Why: engines break score ties by internal document address (segment, doc), which depends on
how the index was grown; ordering ties by the question's key makes the neighbours -- and so
the votes -- of an index grown by adds and deletes equal those of a rebuild (002 §3.2).
"""

from __future__ import annotations

import numpy as np

Hits = tuple[np.ndarray, np.ndarray]  # (keys int64, scores float64), best first


def top_k(keys: np.ndarray, scores: np.ndarray, k: int) -> Hits:
    keys = np.asarray(keys, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.lexsort((keys, -scores))[: max(k, 0)]
    return keys[order], scores[order]


def ties_cut(scores: np.ndarray, k: int, limit: int) -> bool:
    """True when an engine's `limit` hits may have cut a tie at the K-th score: fetch more."""
    return len(scores) >= limit and len(scores) > k - 1 >= 0 and scores[min(k, len(scores)) - 1] == scores[-1]
