"""Compiled BM25 top-K over precomputed weights (002 eq. 4), the hot loop of `numba_bm25.py`.

Why this shape: bm25s showed that an eager sparse matrix of BM25 weights (one column slice
per query term, summed into a dense score array) beats engines that score postings through
a query tree; its cost per query is the postings plus two passes over all N documents
(zeroing the array, then a heap scan). Here the postings are the same (int32 documents,
float32 weights), but the passes over N are cheap: a vectorised block-maximum pass (eight
independent maxima per 64 documents, so LLVM keeps them in SIMD registers), the K-th largest
block maximum as a threshold (K distinct documents score at least that much, so it never
drops an answer), a scan of only the blocks that reach it, and zeroing of only the blocks
that were written. Scores are float32 sums in a fixed term order (the caller sorts terms
by their text), so an index grown by adds and deletes scores bit for bit like a rebuild.
Ties at the K-th score are kept and broken by document index (= repository key order).
"""

from __future__ import annotations

import numpy as np
from numba import njit

BLOCK = 64  # documents per block of the block-maximum pass (8 lanes x 8)


@njit(nogil=True, inline="always", cache=True)
def _heap_offer(heap: np.ndarray, size: int, k: int, s: float) -> int:
    """Min-heap of the k largest values seen; returns the new size."""
    if size < k:
        pos = size
        size += 1
        while pos > 0:
            parent = (pos - 1) >> 1
            if heap[parent] <= s:
                break
            heap[pos] = heap[parent]
            pos = parent
        heap[pos] = s
        return size
    if s <= heap[0]:
        return size
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= s:
            break
        heap[pos] = heap[child]
        pos = child
    heap[pos] = s
    return size


@njit(nogil=True, cache=True)
def _scatter(acc: np.ndarray, indices: np.ndarray, data: np.ndarray, lo: int, hi: int, w: np.float32) -> None:
    for p in range(lo, hi):
        acc[indices[p]] += w * data[p]


@njit(nogil=True, fastmath=True, cache=True)
def _block_max(acc: np.ndarray, bmax: np.ndarray) -> None:
    """bmax[b] = max(acc[64 b : 64 b + 64]); scores are >= 0, so 0 means an untouched block."""
    n = len(acc)
    nb = n // BLOCK
    for b in range(nb):
        o = b * BLOCK
        m0, m1, m2, m3 = acc[o], acc[o + 1], acc[o + 2], acc[o + 3]
        m4, m5, m6, m7 = acc[o + 4], acc[o + 5], acc[o + 6], acc[o + 7]
        for j in range(8, BLOCK, 8):
            m0 = max(m0, acc[o + j])
            m1 = max(m1, acc[o + j + 1])
            m2 = max(m2, acc[o + j + 2])
            m3 = max(m3, acc[o + j + 3])
            m4 = max(m4, acc[o + j + 4])
            m5 = max(m5, acc[o + j + 5])
            m6 = max(m6, acc[o + j + 6])
            m7 = max(m7, acc[o + j + 7])
        bmax[b] = max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))
    if nb * BLOCK < n:
        m = acc[nb * BLOCK]
        for d in range(nb * BLOCK + 1, n):
            m = max(m, acc[d])
        bmax[nb] = m


@njit(nogil=True, fastmath=True, cache=True)
def _zero_written(acc: np.ndarray, bmax: np.ndarray) -> None:
    n = len(acc)
    for b in range(len(bmax)):
        if bmax[b] != 0.0:
            o = b * BLOCK
            if o + BLOCK <= n:
                for j in range(BLOCK):
                    acc[o + j] = 0.0
            else:
                for d in range(o, n):
                    acc[d] = 0.0


@njit(nogil=True, cache=True)
def top_k_one(
    terms: np.ndarray,
    counts: np.ndarray,
    k: int,
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    acc: np.ndarray,
    bmax: np.ndarray,
    heap: np.ndarray,
    cand_d: np.ndarray,
    cand_s: np.ndarray,
    out_doc: np.ndarray,
    out_score: np.ndarray,
) -> int:
    """Exact top-k documents of one query (term ids with multiplicities); returns how many.

    `acc` is all zero on entry and is left all zero (`bmax` is scratch). Documents scoring 0
    (no query term) are never returned.
    """
    if len(terms) == 0 or k <= 0:
        return 0
    for i in range(len(terms)):
        t = terms[i]
        _scatter(acc, indices, data, indptr[t], indptr[t + 1], np.float32(counts[i]))
    _block_max(acc, bmax)
    hs = 0
    for b in range(len(bmax)):
        if bmax[b] > 0.0:
            hs = _heap_offer(heap, hs, k, bmax[b])
    tau = heap[0] if hs == k else np.float32(1e-38)  # k distinct documents reach heap[0]
    hs = 0
    nc = 0
    n = len(acc)
    for b in range(len(bmax)):
        if bmax[b] >= tau:
            for d in range(b * BLOCK, min(b * BLOCK + BLOCK, n)):
                s = acc[d]
                if s >= tau:
                    cand_d[nc] = d
                    cand_s[nc] = s
                    nc += 1
                    hs = _heap_offer(heap, hs, k, s)
                    if hs == k and heap[0] > tau:
                        tau = heap[0]
    _zero_written(acc, bmax)
    if nc == 0:
        return 0
    theta = heap[0] if hs == k else np.float32(0.0)
    ns = 0
    for c in range(nc):
        if cand_s[c] >= theta:
            cand_d[ns] = cand_d[c]
            cand_s[ns] = -cand_s[c]
            ns += 1
    # candidates are in ascending document order: a stable sort on -score breaks ties by document
    order = np.argsort(cand_s[:ns], kind="mergesort")
    kk = min(k, ns)
    for c in range(kk):
        out_doc[c] = cand_d[order[c]]
        out_score[c] = -cand_s[order[c]]
    return kk


@njit(nogil=True, cache=True)
def top_k_serial(
    qptr, qterms, qcounts, k, indptr, indices, data, acc, bmax, heap, cand_d, cand_s, out_doc, out_score, out_n
):
    """A batch of queries on the calling thread with its workspace (releases the GIL)."""
    for q in range(len(qptr) - 1):
        lo, hi = qptr[q], qptr[q + 1]
        out_n[q] = top_k_one(
            qterms[lo:hi], qcounts[lo:hi], k, indptr, indices, data,
            acc, bmax, heap, cand_d, cand_s, out_doc[q], out_score[q],
        )  # fmt: skip


@njit(nogil=True, cache=True)
def postings_by_term(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_terms: int):
    """(doc, term, weight) triples in document order -> term-major postings (counting sort:
    documents stay ascending within a term, which the top-k tie order relies on)."""
    indptr = np.zeros(n_terms + 1, np.int64)
    for i in range(len(cols)):
        indptr[cols[i] + 1] += 1
    for t in range(n_terms):
        indptr[t + 1] += indptr[t]
    fill = indptr[:-1].copy()
    indices = np.empty(len(cols), np.int32)
    data = np.empty(len(cols), np.float32)
    for i in range(len(cols)):
        t = cols[i]
        indices[fill[t]] = rows[i]
        data[fill[t]] = vals[i]
        fill[t] += 1
    return indptr, indices, data
