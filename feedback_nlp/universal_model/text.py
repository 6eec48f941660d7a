"""002 eq. 4 helpers shared by every BM25 backend: one tokenizer and tie-aware top-K parity.

Why here and not in a backend: the rank-bm25 reference, the bm25s reference backend and the
Random Forest baseline must see the very tokens tantivy's `default` analyzer produces
(lowercased runs of Unicode letters and digits), so parity is a property of the scorers.
"""

from __future__ import annotations

import re

import numpy as np

_TOKEN = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    """Lowercase and split on non-alphanumerics (Unicode-aware), as tantivy's default analyzer."""
    return _TOKEN.findall(text.lower())


def same_top_k(ref_scores: np.ndarray, ids: np.ndarray, k: int, rtol: float = 1e-6) -> bool:
    """Tie-aware top-K parity with a reference's dense scores (ties may order differently).

    The K-th best reference score is the threshold: every document scoring above it must be
    in `ids`, and every id must score at least it. Documents the reference scores 0 because
    they share no query term are not expected in `ids`. `rtol` absorbs float32 scoring.
    """
    ids = np.asarray(ids, dtype=np.int64)
    matched = np.flatnonzero(ref_scores != 0)
    want = min(k, len(matched))
    if len(ids) != want:
        return False
    if want == 0:
        return True
    theta = np.sort(ref_scores[matched])[::-1][want - 1]
    tol = rtol * max(1.0, abs(theta))
    above = matched[ref_scores[matched] > theta + tol]
    return bool(np.isin(above, ids).all() and (ref_scores[ids] >= theta - tol).all())
