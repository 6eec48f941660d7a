"""002 eq. 4 reference backend: the paper's BM25Okapi ranking (rank-bm25) through bm25s.

Why keep it: the paper's numbers come from rank-bm25's BM25Okapi (k1 = 1.5, b = 0.75); any
repository can be re-ranked with it to check the tantivy default. bm25s's `robertson`
method is that ranking (its idf floors negative values at 0 where rank-bm25 uses
0.25 x mean idf; bench/universal_model_parity.py measures the agreement) and scores every
document with sparse matrices instead of rank-bm25's per-document Python loop. It has no
incremental update, so it is for static repositories: add and delete re-index in memory at
the next search, and nothing is stored on disk (the repository's rows are the source).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from feedback_nlp.universal_model.ranking import Hits, top_k
from feedback_nlp.universal_model.text import tokenize


class ReferenceBM25:
    name = "reference"

    def __init__(self, k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self._docs: dict[int, list[str]] = {}
        self._model = None
        self._keys = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self._docs)

    def add(self, keys: Sequence[int], texts: Sequence[str]) -> None:
        for key, text in zip(keys, texts):
            self._docs[int(key)] = tokenize(text)
        self._model = None

    def delete(self, keys: Sequence[int]) -> None:
        for key in keys:
            self._docs.pop(int(key), None)
        self._model = None

    def commit(self) -> None:
        """Nothing to persist: the index is rebuilt from the rows."""

    def _built(self):
        if self._model is None and self._docs:
            import bm25s

            self._keys = np.fromiter(sorted(self._docs), np.int64, len(self._docs))
            model = bm25s.BM25(k1=self.k1, b=self.b, method="robertson", dtype="float64")
            model.index([self._docs[int(k)] for k in self._keys], show_progress=False)
            self._model = model
        return self._model

    def scores(self, text: str) -> np.ndarray:
        """Every document's score, in key order (the keys are `self._keys` after a search)."""
        model = self._built()
        if model is None:
            return np.zeros(0)
        known = [t for t in tokenize(text) if t in model.vocab_dict]
        return model.get_scores(known) if known else np.zeros(len(self._keys))

    def search(self, queries: Sequence[str], k: int) -> list[Hits]:
        out = []
        for text in queries:
            s = self.scores(text)
            hit = np.flatnonzero(s > 0)
            out.append(top_k(self._keys[hit], s[hit], k))
        return out
