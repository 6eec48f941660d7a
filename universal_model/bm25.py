"""002 §3.2-3.3, eq. 4: Okapi BM25 over the question repository, exact to rank-bm25's BM25Okapi.

Why our own scorer: rank-bm25 (the reference) scores every document of the repository in
Python for every query term, ~7 queries/s at 100K questions. The universal model is a k-NN
over millions of questions (002 §3.1), so here postings are term-major numpy arrays, the
per-posting BM25 term weight is cached, and top-K is found with MaxScore pruning: the
long, low-IDF postings ("i", "my", "the") are only looked up for the candidate documents,
never scanned. The pruning is exact: a document outside the candidates provably cannot
beat the K-th candidate's score.

Exactness: same formula as rank_bm25.BM25Okapi, including its IDF
`log(N - df + 0.5) - log(df + 0.5)` and the floor `epsilon * mean(idf)` for negative IDFs,
its default k1=1.5, b=0.75, epsilon=0.25, and a query term counted once per occurrence.

Incremental (002 §3.2: "all that is required is an update to the repository"): `add`
appends a new segment built from the new documents only; df, N and avgdl are updated in
place. Segments of similar size are merged (log-structured, as Lucene does), so adding is
amortised O(log N) per document and never re-tokenises or rescans old documents. IDF and
the cached weights depend on N and avgdl, so they are refreshed lazily, in one vectorised
pass over the arrays, at the first query after an add.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

_TOKEN = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    """Lowercase and split on non-alphanumerics (Unicode-aware); the one tokenizer used for
    both this index and the rank-bm25 reference, so parity is a property of the scorer."""
    return _TOKEN.findall(text.lower())


def okapi_idf(df: np.ndarray, n_docs: int, epsilon: float = 0.25) -> np.ndarray:
    """BM25Okapi IDF: log(N - df + 0.5) - log(df + 0.5); negatives floored to eps * mean IDF."""
    idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
    if idf.size:
        idf[idf < 0] = epsilon * idf.mean()
    return idf


def tf_weight(tf: np.ndarray, doc_len: np.ndarray, avgdl: float, k1: float = 1.5, b: float = 0.75) -> np.ndarray:
    """Eq. 4's saturated term frequency f(t,D)(k1+1) / (f(t,D) + k1 (1 - b + b |D| / avgdl))."""
    return tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc_len / avgdl))


@dataclass
class _Segment:
    """Term-major postings of documents [start, start + n): docs (global ids, ascending per term)."""

    start: int
    n: int
    indptr: np.ndarray          # len = vocab size when built + 1
    docs: np.ndarray            # int64
    tf: np.ndarray              # float64
    w: np.ndarray = field(default_factory=lambda: np.empty(0))     # cached tf_weight
    maxw: np.ndarray = field(default_factory=lambda: np.empty(0))  # per-term max of w

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        if term + 1 >= len(self.indptr):
            return self.docs[:0], self.w[:0]
        lo, hi = self.indptr[term], self.indptr[term + 1]
        return self.docs[lo:hi], self.w[lo:hi]


def _build_segment(term_ids: np.ndarray, doc_local: np.ndarray, start: int, n: int, vocab_size: int) -> _Segment:
    key = term_ids * n + doc_local
    uniq, counts = np.unique(key, return_counts=True)          # sorted by (term, doc)
    terms = uniq // n
    indptr = np.concatenate(([0], np.cumsum(np.bincount(terms, minlength=vocab_size))))
    return _Segment(start, n, indptr, (uniq % n) + start, counts.astype(np.float64))


def _merge(a: _Segment, b: _Segment) -> _Segment:
    """Merge two adjacent segments (a before b) keeping postings sorted by (term, doc)."""
    vocab = max(len(a.indptr), len(b.indptr)) - 1
    ta = np.repeat(np.arange(len(a.indptr) - 1), np.diff(a.indptr))
    tb = np.repeat(np.arange(len(b.indptr) - 1), np.diff(b.indptr))
    terms = np.concatenate((ta, tb))
    order = np.argsort(terms, kind="stable")                    # a's docs precede b's per term
    indptr = np.concatenate(([0], np.cumsum(np.bincount(terms, minlength=vocab))))
    return _Segment(a.start, a.n + b.n, indptr, np.concatenate((a.docs, b.docs))[order],
                    np.concatenate((a.tf, b.tf))[order])


class BM25Index:
    """Okapi BM25 index with exact top-K retrieval and incremental `add`."""

    def __init__(self, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25,
                 tokenizer: Callable[[str], list[str]] = tokenize, merge_factor: float = 2.0):
        self.k1, self.b, self.epsilon, self.tokenizer, self.merge_factor = k1, b, epsilon, tokenizer, merge_factor
        self.vocab: dict[str, int] = {}
        self.df = np.zeros(0, dtype=np.int64)
        self.doc_len = np.zeros(0, dtype=np.float64)
        self.segments: list[_Segment] = []
        self._fresh = False              # idf / weights match the current N and avgdl
        self.idf = np.zeros(0)
        self._acc = np.zeros(0)          # score scratch, zero between queries
        self._seen = np.zeros(0, dtype=bool)
        self._slot = np.zeros(0, dtype=np.int32)

    @classmethod
    def from_texts(cls, texts: Iterable[str], **kwargs) -> "BM25Index":
        index = cls(**kwargs)
        index.add(texts)
        return index

    @property
    def n_docs(self) -> int:
        return len(self.doc_len)

    @property
    def avgdl(self) -> float:
        return float(self.doc_len.sum() / self.n_docs) if self.n_docs else 0.0

    # --- building -------------------------------------------------------------------------
    def add(self, texts: Iterable[str] | Iterable[Sequence[str]]) -> range:
        """Append documents (strings, or pre-tokenised lists); returns their new ids."""
        docs = [self.tokenizer(t) if isinstance(t, str) else list(t) for t in texts]
        start, n = self.n_docs, len(docs)
        if not n:
            return range(start, start)
        vocab = self.vocab
        ids = [vocab.setdefault(tok, len(vocab)) for d in docs for tok in d]
        term_ids = np.asarray(ids, dtype=np.int64)
        lens = np.fromiter((len(d) for d in docs), dtype=np.int64, count=n)
        doc_local = np.repeat(np.arange(n, dtype=np.int64), lens)
        seg = _build_segment(term_ids, doc_local, start, n, len(vocab))
        self.df = np.concatenate((self.df, np.zeros(len(vocab) - len(self.df), dtype=np.int64)))
        self.df += np.diff(seg.indptr)
        self.doc_len = np.concatenate((self.doc_len, lens.astype(np.float64)))
        self.segments.append(seg)
        while len(self.segments) > 1 and self.segments[-2].n <= self.merge_factor * self.segments[-1].n:
            b_ = self.segments.pop()
            self.segments[-1] = _merge(self.segments[-1], b_)
        self._fresh = False
        return range(start, start + n)

    def _refresh(self) -> None:
        """Recompute IDF and cached weights for the current N / avgdl (lazy, after adds)."""
        if self._fresh:
            return
        self.idf = okapi_idf(self.df.astype(np.float64), self.n_docs, self.epsilon)
        avgdl = self.avgdl
        for seg in self.segments:
            seg.w = tf_weight(seg.tf, self.doc_len[seg.docs], avgdl, self.k1, self.b)
            nonempty = np.diff(seg.indptr) > 0
            seg.maxw = np.zeros(len(seg.indptr) - 1)
            if seg.w.size:
                seg.maxw[nonempty] = np.maximum.reduceat(seg.w, seg.indptr[:-1][nonempty])
        self._acc = np.zeros(self.n_docs)
        self._seen = np.zeros(self.n_docs, dtype=bool)
        self._slot = np.zeros(self.n_docs, dtype=np.int32)  # candidate position + 1, else 0
        self._fresh = True

    # --- scoring --------------------------------------------------------------------------
    def _query_terms(self, query: str | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        toks = self.tokenizer(query) if isinstance(query, str) else list(query)
        counts: dict[int, int] = {}
        for tok in toks:
            tid = self.vocab.get(tok)
            if tid is not None:
                counts[tid] = counts.get(tid, 0) + 1
        return np.fromiter(counts, dtype=np.int64, count=len(counts)), \
            np.fromiter(counts.values(), dtype=np.float64, count=len(counts))

    def get_scores(self, query: str | Sequence[str]) -> np.ndarray:
        """Dense scores of every document (same values as BM25Okapi.get_scores)."""
        self._refresh()
        scores = np.zeros(self.n_docs)
        terms, qtf = self._query_terms(query)
        for t, c in zip(terms, qtf):
            for seg in self.segments:
                docs, w = seg.postings(int(t))
                scores[docs] += c * self.idf[t] * w
        return scores

    def top_k(self, query: str | Sequence[str], k: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """Ids and scores of the k best documents among those sharing a query term.

        Sorted by score desc, then id. Documents with no query term are never returned
        (rank-bm25 ranks them in an arbitrary tie order at score 0).
        """
        self._refresh()
        terms, qtf = self._query_terms(query)
        if not len(terms) or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        coef = qtf * self.idf[terms]
        maxw = np.array([max((s.maxw[t] if t < len(s.maxw) else 0.0) for s in self.segments) for t in terms])
        if (coef < 0).any():            # eps floor below 0 (tiny corpora): no bound holds, score all
            order, rest = np.arange(len(terms)), np.full(len(terms), np.inf)
        else:                           # MaxScore: terms by upper bound, and the bound of the rest
            ub = coef * maxw
            order = np.argsort(-ub, kind="stable")
            rest = np.concatenate((np.cumsum(ub[order][::-1])[::-1][1:], [0.0]))
        cand, scores, theta, cut = self._essential(terms[order], coef[order], rest, k)
        for j in range(cut, len(order)):
            # only a candidate whose partial score plus the bound of the remaining terms
            # reaches the K-th best partial score can still enter the top K
            theta = _kth(scores, k, theta)
            keep = scores + rest[j - 1] >= theta
            cand, scores = cand[keep], scores[keep]
            cand, scores = self._lookup(int(terms[order[j]]), coef[order[j]], cand, scores)
        if len(cand) > k:
            part = np.argpartition(-scores, k - 1)[:k]
            cand, scores = cand[part], scores[part]
        top = np.lexsort((cand, -scores))
        return cand[top], scores[top]

    def _essential(self, terms: np.ndarray, coef: np.ndarray, rest: np.ndarray, k: int):
        """Scan the full postings of the highest-bound terms until the bound of the remaining
        terms falls below the K-th best partial score. Returns the candidates, their partial
        scores, that K-th score and the number of terms scanned."""
        acc, seen, found, n_found = self._acc, self._seen, [], 0
        cut, theta = len(terms), -np.inf
        for j, t in enumerate(terms):
            if j >= cut:
                break
            for seg in self.segments:
                docs, w = seg.postings(int(t))
                np.add.at(acc, docs, coef[j] * w)
                new = docs[~seen[docs]]
                seen[new] = True
                found.append(new)
                n_found += len(new)
            if n_found >= k and np.isfinite(rest[j]):
                cand = np.concatenate(found)
                found = [cand]
                theta = _kth(acc[cand], k, theta)
                cut = j + 1 + int(np.searchsorted(-rest[j:], -theta, side="left"))
        cand = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
        scores = acc[cand]
        acc[cand] = 0.0
        seen[cand] = False
        return cand, scores, theta, min(cut, len(terms))

    def _lookup(self, term: int, coef: float, cand: np.ndarray, scores: np.ndarray):
        """Add one non-essential term's contribution to the candidates only."""
        for seg in self.segments:
            docs, w = seg.postings(term)
            if not len(docs):
                continue
            if len(cand) * 24 < len(docs):          # few candidates: binary-search them
                sort = np.argsort(cand)
                cand, scores = cand[sort], scores[sort]
                pos = np.minimum(np.searchsorted(docs, cand), len(docs) - 1)
                hit = docs[pos] == cand
                scores[hit] += coef * w[pos[hit]]
            else:                                   # many: one pass over the postings
                slot = self._slot
                slot[cand] = np.arange(1, len(cand) + 1, dtype=np.int32)
                where = slot[docs]
                hit = where > 0
                scores[where[hit] - 1] += coef * w[hit]
                slot[cand] = 0
        return cand, scores

    def search(self, queries: Sequence[str], k: int = 100) -> list[tuple[np.ndarray, np.ndarray]]:
        return [self.top_k(q, k) for q in queries]


def _kth(values: np.ndarray, k: int, floor: float) -> float:
    """K-th largest of `values`, known to be >= `floor` (filtering first: partition is slow)."""
    top = values[values >= floor] if floor > -np.inf else values
    return float(np.partition(top, len(top) - k)[len(top) - k])


def same_top_k(ref_scores: np.ndarray, ids: np.ndarray, k: int, rtol: float = 1e-9) -> bool:
    """Tie-aware top-K parity with a reference's dense scores (ties may order differently).

    The K-th best reference score is the threshold: every document scoring above it must be
    in `ids`, and every id must score at least it. Documents the reference scores 0 because
    they share no query term are not expected in `ids`.
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
