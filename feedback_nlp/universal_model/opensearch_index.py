"""Scale-out backend: the repository's BM25 text and vectors in one OpenSearch index.

Why: one machine stops being enough when the repository outgrows its memory, when several
writers update it, or when readers need replicas. OpenSearch scores text with the same
Lucene BM25 as tantivy and keeps vectors in a `knn_vector` field, with deletes by id and
`refresh=wait_for` so an update is searchable when the call returns. The server comes from
OPENSEARCH_URL (credentials never go into an export); the mapping is in
docs/question_repository.md. Results are sorted by score, then key, like the other backends.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from feedback_nlp.universal_model.ranking import Hits, top_k


def mapping(dim: int | None) -> dict[str, Any]:
    props: dict[str, Any] = {"key": {"type": "long"}, "text": {"type": "text", "analyzer": "standard"}}
    if dim:
        props["embedding"] = {
            "type": "knn_vector",
            "dimension": int(dim),
            "method": {"name": "hnsw", "space_type": "innerproduct", "engine": "faiss"},
        }
    return {
        "settings": {"index": {"knn": bool(dim)}, "similarity": {"default": {"type": "BM25", "k1": 1.2, "b": 0.75}}},
        "mappings": {"_source": {"excludes": ["text", "embedding"]}, "properties": props},
    }


class OpenSearchIndex:
    name = "opensearch"

    def __init__(self, client: Any, index: str, dim: int | None = None):
        self.client, self.index, self.dim = client, index, dim
        self._pending: list[dict[str, Any]] = []
        if not client.indices.exists(index=index):
            client.indices.create(index=index, body=mapping(dim))

    @classmethod
    def from_env(cls, index: str, dim: int | None = None) -> OpenSearchIndex:
        url = os.environ.get("OPENSEARCH_URL")
        if not url:
            raise ValueError("retrieval.backend=opensearch needs OPENSEARCH_URL (e.g. http://localhost:9200)")
        from opensearchpy import OpenSearch

        return cls(OpenSearch(url, timeout=60), index, dim)

    def __len__(self) -> int:
        self.client.indices.refresh(index=self.index)
        return int(self.client.count(index=self.index)["count"])

    def add(self, keys: Sequence[int], texts: Sequence[str], vectors: np.ndarray | None = None) -> None:
        for i, (key, text) in enumerate(zip(keys, texts)):
            doc: dict[str, Any] = {"key": int(key), "text": text}
            if vectors is not None:
                doc["embedding"] = [float(x) for x in vectors[i]]
            self._pending.append({"_op_type": "index", "_index": self.index, "_id": str(int(key)), "_source": doc})

    def delete(self, keys: Sequence[int]) -> None:
        self._pending += [{"_op_type": "delete", "_index": self.index, "_id": str(int(k))} for k in keys]

    def commit(self) -> None:
        """One bulk request; `refresh=wait_for` returns once the changes are searchable."""
        from opensearchpy import helpers

        if self._pending:
            ops, self._pending = self._pending, []
            helpers.bulk(self.client, ops, refresh="wait_for", raise_on_error=True)

    def _msearch(self, bodies: list[dict[str, Any]]) -> list[Hits]:
        lines: list[dict[str, Any]] = []
        for body in bodies:
            lines += [{"index": self.index}, body]
        out = []
        for resp in self.client.msearch(body=lines)["responses"]:
            hits = resp["hits"]["hits"]
            out.append(
                top_k(
                    np.asarray([int(h["_id"]) for h in hits], np.int64),
                    np.asarray([h["_score"] for h in hits], np.float64),
                    len(hits),
                )
            )
        return out

    def search(self, queries: Sequence[str], k: int) -> list[Hits]:
        """BM25 top-k per query text."""
        return self._msearch(
            [
                {
                    "size": k,
                    "_source": False,
                    "query": {"match": {"text": q}},
                    "sort": [{"_score": "desc"}, {"key": "asc"}],
                    "track_scores": True,
                }
                for q in queries
            ]
        )

    @property
    def vectors(self) -> OpenSearchVectors:
        return OpenSearchVectors(self)


class OpenSearchVectors:
    """The same index's knn_vector field behind the vector-store interface."""

    def __init__(self, owner: OpenSearchIndex):
        self.owner = owner

    def search(self, queries: np.ndarray, k: int) -> list[Hits]:
        return self.owner._msearch(
            [
                {
                    "size": k,
                    "_source": False,
                    "query": {"knn": {"embedding": {"vector": [float(x) for x in q], "k": k}}},
                }
                for q in queries
            ]
        )
