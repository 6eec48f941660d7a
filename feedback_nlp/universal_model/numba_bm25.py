"""002 eq. 4 BM25 as precomputed weights + a compiled top-K: the repository's default engine.

Why not tantivy for search: tantivy-py wraps every search's `TopDocs` in a `MultiCollector`,
which turns off tantivy's block-max WAND, so it scored about 0.35x of bm25s with numba (the
fastest Python BM25 we know) at 100K and 1M questions. Here a repository's BM25 data is
term frequencies per question (`bm25_segment.Segment`, one per repository chunk, written once
and shared by later generations); the statistics (N, document frequencies, average length) and the
float32 weights are recomputed from the live questions whenever a generation is loaded, so
after any add or delete the scores equal a rebuild's exactly (deleted questions count
nowhere). `bm25_kernels.py` does the search.

Two weightings, one kernel:
- `lucene` (default): tantivy's BM25 -- k1 = 1.2, b = 0.75, idf = ln(1 + (N - n + 0.5) /
  (n + 0.5)), document lengths rounded down to Lucene's one-byte field-norm scale, float32
  arithmetic, tokens over 40 bytes dropped -- so it ranks like the tantivy and OpenSearch
  backends (tests compare scores to 1e-6).
- `okapi`: rank-bm25's BM25Okapi (the paper's library): k1 = 1.5, b = 0.75, idf = ln((N - n
  + 0.5) / (n + 0.5)) with negative values replaced by 0.25 x the mean idf, exact lengths;
  used to check the kernel against rank-bm25 (bench/universal_model_parity.py, tests).
"""

from __future__ import annotations

import queue
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from feedback_nlp.universal_model.bm25_segment import VARIANTS, Segment, analyze, field_norm
from feedback_nlp.universal_model.ranking import Hits


class NumbaBM25:
    """BM25 over in-memory segments: `add` / `delete` stage changes, `commit` recomputes the
    statistics and weights, `search` runs the compiled top-K."""

    name = "numba"

    def __init__(self, threads: int = 1, variant: str = "lucene", k1: float | None = None, b: float | None = None):
        if variant not in VARIANTS:
            raise ValueError(f"BM25 variant must be one of {tuple(VARIANTS)}, got {variant!r}")
        self.threads, self.variant = max(1, int(threads)), variant
        self.k1, self.b = (k1 or VARIANTS[variant][0]), (VARIANTS[variant][1] if b is None else b)
        self._segments: list[Segment] = []
        self._deleted: set[int] = set()
        self._dirty = True
        self._workspaces: queue.SimpleQueue = queue.SimpleQueue()
        self._pool: ThreadPoolExecutor | None = None
        self.keys = np.zeros(0, np.int64)
        self.vocab: dict[str, int] = {}
        self._indptr = np.zeros(1, np.int64)
        self._indices = np.zeros(0, np.int32)
        self._data = np.zeros(0, np.float32)

    @classmethod
    def from_segments(cls, segments: Iterable[Segment], live: np.ndarray | None = None, **kwargs) -> NumbaBM25:
        """An index of `segments`, restricted to the keys in `live` when given."""
        index = cls(**kwargs)
        index._segments = list(segments)
        index.commit(live)
        return index

    def __len__(self) -> int:
        if self._dirty:
            self.commit()
        return len(self.keys)

    def add(self, keys: Sequence[int], texts: Sequence[str]) -> None:
        if self._deleted:  # apply earlier deletes first: a key deleted, then added again, is the new text
            self.commit()
        self._segments.append(Segment.from_texts(keys, texts, self.variant))
        self._dirty = True

    def delete(self, keys: Sequence[int]) -> None:
        self._deleted.update(int(k) for k in keys)
        self._dirty = True

    def commit(self, live: np.ndarray | None = None) -> None:
        """Statistics and weights of the live questions (every segment question not deleted)."""
        from feedback_nlp.universal_model.bm25_kernels import postings_by_term

        segs = self._segments
        keys = np.concatenate([s.keys for s in segs]) if segs else np.zeros(0, np.int64)
        keep = np.ones(len(keys), bool)
        if self._deleted:
            keep &= ~np.isin(keys, np.fromiter(self._deleted, np.int64, len(self._deleted)))
        if live is not None:
            keep &= np.isin(keys, live)
        vocab: dict[str, int] = {}
        rows, cols, tfs, lens = [], [], [], []
        offset = 0
        for s in segs:
            local = np.fromiter((vocab.setdefault(t, len(vocab)) for t in s.vocab), np.int32, len(s.vocab))
            nnz_doc = np.diff(s.ptr)
            rows.append(np.repeat(np.arange(offset, offset + len(s), dtype=np.int64), nnz_doc))
            cols.append(local[s.terms] if len(s.terms) else np.zeros(0, np.int32))
            tfs.append(s.tfs)
            lens.append(s.lengths)
            offset += len(s)
        row = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        col = np.concatenate(cols) if cols else np.zeros(0, np.int32)
        tf = np.concatenate(tfs) if tfs else np.zeros(0, np.int32)
        dl = np.concatenate(lens) if lens else np.zeros(0, np.int32)
        # documents in key order (ties are broken by key); deleted ones dropped everywhere
        order = np.argsort(keys, kind="stable")
        order = order[keep[order]]
        if len(np.unique(keys[order])) != len(order):
            raise ValueError("duplicate keys in the BM25 segments")
        rank = np.full(len(keys), -1, np.int64)
        rank[order] = np.arange(len(order))
        post = rank[row] >= 0
        row, col, tf = rank[row][post], col[post], tf[post]
        dl = dl[order]
        by_doc = np.argsort(row, kind="stable")
        row, col, tf = row[by_doc], col[by_doc], tf[by_doc]
        weights = self._weights(col, tf, dl[row], dl, len(vocab))
        nz = weights > 0
        self._indptr, self._indices, self._data = postings_by_term(row[nz], col[nz], weights[nz], len(vocab))
        self.keys, self.vocab = keys[order], vocab
        self._deleted = set()
        self._segments = [Segment(self.keys, dl.astype(np.int32), *_csr(row, col, tf, len(dl)), list(vocab))]
        self._workspaces = queue.SimpleQueue()
        self._dirty = False

    def _weights(
        self, col: np.ndarray, tf: np.ndarray, doc_len: np.ndarray, dl: np.ndarray, n_terms: int
    ) -> np.ndarray:
        n = len(dl)
        if n == 0:
            return np.zeros(0, np.float32)
        df = np.bincount(col, minlength=n_terms)
        k1, b = self.k1, self.b
        if self.variant == "lucene":  # tantivy's arithmetic: float32 throughout
            f32 = np.float32
            avgdl = f32(dl.sum()) / f32(n)
            x = ((f32(n) - df.astype(f32)) + f32(0.5)) / (df.astype(f32) + f32(0.5))
            idf: np.ndarray = np.log(f32(1.0) + x).astype(f32)
            weight = idf * f32(1.0 + k1)
            norm = f32(k1) * (f32(1.0 - b) + f32(b) * field_norm(doc_len).astype(f32) / avgdl)
            tff = tf.astype(f32)
            return (weight[col] * (tff / (tff + norm))).astype(f32)
        # rank-bm25 BM25Okapi, float64 (its arithmetic), stored as float32
        avgdl = dl.sum() / n
        present = df > 0
        idf = np.zeros(n_terms)
        idf[present] = np.log(n - df[present] + 0.5) - np.log(df[present] + 0.5)
        mean_idf = idf[present].sum() / max(int(present.sum()), 1)
        idf[present & (idf < 0)] = 0.25 * mean_idf
        tff = tf.astype(np.float64)
        return (idf[col] * (tff * (k1 + 1) / (tff + k1 * (1 - b + b * doc_len / avgdl)))).astype(np.float32)

    def _query_arrays(self, queries: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per query its known terms, sorted by text (a fixed summation order), with counts."""
        vocab, variant = self.vocab, self.variant
        ptr, terms, counts = [0], [], []
        for text in queries:
            c: dict[str, int] = {}
            for t in analyze(text, variant):
                if t in vocab:
                    c[t] = c.get(t, 0) + 1
            for t in sorted(c):
                terms.append(vocab[t])
                counts.append(c[t])
            ptr.append(len(terms))
        return np.asarray(ptr, np.int64), np.asarray(terms, np.int32), np.asarray(counts, np.float32)

    def _workspace(self, k: int) -> tuple[np.ndarray, ...]:
        """Scratch arrays for one thread (reused: allocating N floats per query would cost more
        than scoring at 1M questions)."""
        from feedback_nlp.universal_model.bm25_kernels import BLOCK

        try:
            ws = self._workspaces.get_nowait()
            if len(ws[2]) >= k:
                return ws
        except queue.Empty:
            pass
        n = max(len(self.keys), 1)
        return (
            np.zeros(n, np.float32),
            np.zeros((n + BLOCK - 1) // BLOCK, np.float32),
            np.zeros(k, np.float32),
            np.zeros(n, np.int32),
            np.zeros(n, np.float32),
        )

    def _run(self, lo: int, hi: int, k: int, qptr, qterms, qcounts, out_doc, out_score, out_n) -> None:
        from feedback_nlp.universal_model.bm25_kernels import top_k_serial

        ws = self._workspace(k)
        try:
            top_k_serial(  # type: ignore[call-arg]  # numba's Dispatcher stub hides the kernel's signature
                qptr[lo : hi + 1] - qptr[lo], qterms[qptr[lo] : qptr[hi]], qcounts[qptr[lo] : qptr[hi]], k,
                self._indptr, self._indices, self._data, *ws, out_doc[lo:hi], out_score[lo:hi], out_n[lo:hi],
            )  # fmt: skip
        finally:
            self._workspaces.put(ws)

    def search(self, queries: Sequence[str], k: int) -> list[Hits]:
        """Top-k (keys, scores) per query. With threads > 1 the batch is cut into small shares
        that a thread pool takes in turn (the kernel releases the GIL): a thread that the
        machine slows down does not hold the others back."""
        if self._dirty:
            self.commit()
        queries = list(queries)
        if not queries or k <= 0 or len(self.keys) == 0:
            return [(np.zeros(0, np.int64), np.zeros(0)) for _ in queries]
        qptr, qterms, qcounts = self._query_arrays(queries)
        nq, kk = len(queries), min(k, len(self.keys))
        out_doc = np.zeros((nq, kk), np.int32)
        out_score = np.zeros((nq, kk), np.float32)
        out_n = np.zeros(nq, np.int64)
        args = (kk, qptr, qterms, qcounts, out_doc, out_score, out_n)
        if self.threads == 1 or nq < 2 * self.threads:
            self._run(0, nq, *args)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="bm25")
            share = max(8, nq // (8 * self.threads))
            list(self._pool.map(lambda lo: self._run(lo, min(lo + share, nq), *args), range(0, nq, share)))
        keys = self.keys
        return [(keys[out_doc[i, : out_n[i]]], out_score[i, : out_n[i]].astype(np.float64)) for i in range(nq)]


def _csr(row: np.ndarray, col: np.ndarray, tf: np.ndarray, n_docs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ptr = np.zeros(n_docs + 1, np.int64)
    ptr[1:] = np.cumsum(np.bincount(row, minlength=n_docs))
    return ptr, col.astype(np.int32), tf.astype(np.int32)
