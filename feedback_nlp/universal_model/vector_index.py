"""002 §3.3 dense retrieval store on faiss: exact for small repositories, IVF above a size.

Why these two: both support `remove_ids`, which a delete request needs (faiss HNSW cannot
remove). Below `exact_max` vectors an IndexIDMap2 over IndexFlatIP is exact and fast
enough; above it an IndexIVFFlat (inner product on L2-normalised embeddings = cosine) scans
`nprobe` of `nlist` lists. The ids are the repository keys, so nothing is renumbered when
questions are deleted. Crossing `exact_max` retrains from the stored embeddings: no question
is embedded again. A repository does not store the faiss index: it stores the embeddings,
the IVF centroids and each vector's list (chunks.py), and `add_parts` rebuilds the index at
load without searching the quantizer, so an update writes only the vectors it adds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from feedback_nlp.universal_model.ranking import Hits, ties_cut, top_k


class FaissVectors:
    name = "faiss"

    def __init__(
        self, dim: int, exact_max: int = 200_000, nlist: int | None = None, nprobe: int = 16, threads: int = 1
    ):
        import faiss

        self.faiss, self.dim, self.exact_max, self.nlist, self.nprobe = faiss, dim, exact_max, nlist, nprobe
        faiss.omp_set_num_threads(max(1, int(threads)))
        self.index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @property
    def kind(self) -> str:
        return "ivf" if isinstance(self.index, self.faiss.IndexIVF) else "exact"

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, keys: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if len(vectors):
            self.index.add_with_ids(vectors, np.asarray(keys, dtype=np.int64))

    def delete(self, keys: Sequence[int] | np.ndarray) -> None:
        if len(keys):
            # faiss's stub types Index.remove_ids as taking an IDSelector only; its Python wrapper
            # (faiss/class_wrappers.py, replacement_remove_ids) also takes an int64 id array
            self.index.remove_ids(np.asarray(keys, dtype=np.int64))  # type: ignore[arg-type]

    def rebuild(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """The right index type for this many vectors, from stored embeddings (no encoder)."""
        centroids = self.train(vectors) if len(keys) > self.exact_max else None
        self.reset(centroids)
        self.add_parts(keys, vectors, None if centroids is None else self.assign(centroids, vectors))

    def train(self, vectors: np.ndarray) -> np.ndarray:
        """IVF centroids (nlist x dim) trained on a seeded sample of `vectors`: kept in the
        repository, so that later adds assign new vectors to the same lists."""
        faiss, n = self.faiss, len(vectors)
        nlist = self.nlist or max(16, int(4 * math.sqrt(n)))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        train = vectors[np.sort(np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False))]
        ivf.train(np.ascontiguousarray(train, dtype=np.float32))
        return ivf.quantizer.reconstruct_n(0, nlist)

    def assign(self, centroids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """The IVF list of each vector (what `add` would compute), stored beside the vectors."""
        quantizer = self.faiss.IndexFlatIP(self.dim)
        quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
        if len(vectors) == 0:
            return np.zeros(0, np.int64)
        _, lists = quantizer.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)
        return lists[:, 0].astype(np.int64)

    def reset(self, centroids: np.ndarray | None = None) -> None:
        """An empty exact index, or an empty IVF index over `centroids` (no training)."""
        faiss = self.faiss
        if centroids is None:
            self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
            return
        quantizer = faiss.IndexFlatIP(self.dim)
        quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, len(centroids), faiss.METRIC_INNER_PRODUCT)
        ivf.is_trained = True
        ivf.nprobe = self.nprobe
        self._quantizer = quantizer  # the IVF index does not own it: keep it alive
        self.index = ivf

    def add_parts(self, keys: np.ndarray, vectors: np.ndarray, assign: np.ndarray | None = None) -> None:
        """Add vectors whose IVF lists are already known (a chunk loaded from disk): no search
        of the quantizer, so loading 1M vectors costs a copy."""
        if assign is None or self.kind == "exact":
            self.add(keys, vectors)
            return
        x = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        ids = np.ascontiguousarray(keys, dtype=np.int64)
        lists = np.ascontiguousarray(assign, dtype=np.int64)
        if len(x):
            # IndexIVF.add_core (vectors with their precomputed lists) is missing from faiss's type stub
            self.index.add_core(  # type: ignore[attr-defined]
                len(x), self.faiss.swig_ptr(x), self.faiss.swig_ptr(ids), self.faiss.swig_ptr(lists)
            )

    def needs_rebuild(self, n: int) -> bool:
        return (n > self.exact_max) != (self.kind == "ivf")

    def search(self, queries: np.ndarray, k: int) -> list[Hits]:
        if len(self) == 0 or k <= 0:
            return [(np.zeros(0, np.int64), np.zeros(0)) for _ in range(len(queries))]
        if isinstance(self.index, self.faiss.IndexIVF):  # kind == "ivf"
            self.index.nprobe = self.nprobe
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        limit = min(len(self), k + 8)
        sims, ids = self.index.search(q, limit)
        out = []
        for i in range(len(q)):
            s, key = sims[i], ids[i]
            if ties_cut(s[key >= 0], k, limit) and limit < len(self):  # a tie at the K-th: widen
                s2, k2 = self.index.search(q[i : i + 1], min(len(self), 4 * limit))
                s, key = s2[0], k2[0]
            keep = key >= 0
            out.append(top_k(key[keep], s[keep], k))
        return out

    def save(self, path: str | Path) -> None:
        self.faiss.write_index(self.index, str(path))

    def load(self, path: str | Path) -> FaissVectors:
        self.index = self.faiss.read_index(str(path))
        self.dim = self.index.d
        return self
