"""002 §3.2 BM25 on tantivy: an on-disk Lucene-style index with incremental add and delete.

Why tantivy: segments are immutable and a commit replaces `meta.json` atomically, so the
question repository can grow by adding segments instead of rebuilding, deletes are by key,
and the scoring is Lucene's BM25 (k1 = 1.2, b = 0.75), the same as the OpenSearch backend.
Only the integer key is stored (a fast field): the text lives in the repository's rows, so
deleting a question leaves no copy of it here once its segment is rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from feedback_nlp.universal_model.ranking import Hits, ties_cut, top_k
from feedback_nlp.universal_model.text import tokenize

if TYPE_CHECKING:
    import tantivy

LOCK_FILES = (".tantivy-writer.lock", ".tantivy-meta.lock")


def _schema():
    import tantivy

    sb = tantivy.SchemaBuilder()
    sb.add_unsigned_field("key", stored=False, indexed=True, fast=True)
    sb.add_text_field("text", stored=False, tokenizer_name="default", index_option="freq")
    return sb.build()


class TantivyBM25:
    """BM25 over one tantivy index folder; `threads` > 1 searches a batch on a thread pool
    (tantivy releases the GIL while it scores)."""

    name = "tantivy"

    def __init__(self, path: str | Path, threads: int = 1, heap_bytes: int = 64_000_000, create: bool = True):
        import tantivy

        self.path = Path(path)
        if not create and not (self.path / "meta.json").is_file():
            # a reader must never re-create a generation an update has just removed
            raise FileNotFoundError(f"{self.path}: no tantivy index")
        self.path.mkdir(parents=True, exist_ok=True)
        self._t = tantivy
        self.index = tantivy.Index(_schema(), path=str(self.path), reuse=True)
        self.schema = self.index.schema
        self.threads, self.heap_bytes = max(1, int(threads)), heap_bytes
        self._writer: tantivy.IndexWriter | None = None  # opened on the first add/delete
        self._searcher = self.index.searcher()

    def __len__(self) -> int:
        return int(self._searcher.num_docs)

    def _w(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self.index.writer(self.heap_bytes, 1)
        return self._writer

    def add(self, keys: Sequence[int], texts: Sequence[str]) -> None:
        w, Doc = self._w(), self._t.Document
        for key, text in zip(keys, texts):
            doc = Doc()
            doc.add_unsigned("key", int(key))
            doc.add_text("text", text)
            w.add_document(doc)

    def delete(self, keys: Sequence[int]) -> None:
        """By a term-set query on the key: delete_documents_by_term would take a Python int
        as an i64 term and silently match nothing in the u64 field."""
        keys = [int(k) for k in keys]
        if keys:
            self._w().delete_documents_by_query(self._t.Query.term_set_query(self.schema, "key", keys))

    def commit(self) -> None:
        """Durable and visible; merges finish first so the folder is final when it is hashed."""
        if self._writer is None:
            return
        w, self._writer = self._writer, None
        w.commit()
        w.wait_merging_threads()
        self.index.reload()
        self._searcher = self.index.searcher()

    def query(self, text: str):
        """Built from terms, not parsed: no query syntax to trip on, and no parser in the hot path."""
        q = self._t.Query
        terms = [q.term_query(self.schema, "text", tok, index_option="freq") for tok in tokenize(text)]
        if not terms:
            return None
        return q.boolean_query([(self._t.Occur.Should, t) for t in terms])

    def _one(self, text: str, k: int) -> Hits:
        query = self.query(text)
        if query is None or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0)
        searcher, limit = self._searcher, k + k // 2 + 8  # room for ties at the K-th score
        while True:
            hits = searcher.search(query, limit, count=False).hits
            scores = np.fromiter((h[0] for h in hits), np.float64, len(hits))
            if not ties_cut(scores, k, limit):
                break
            limit *= 4
        keys = np.asarray(searcher.fast_field_values("key", [h[1] for h in hits]), dtype=np.int64)
        return top_k(keys, scores, k)

    def search(self, queries: Sequence[str], k: int) -> list[Hits]:
        if self.threads == 1 or len(queries) < 2 * self.threads:
            return [self._one(q, k) for q in queries]
        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(lambda q: self._one(q, k), queries, chunksize=16))
