"""002 §3.1-3.2: the question repository as an exported, updatable folder.

Why: the universal model never trains -- it "only requires periodic updating" of its
repository. `export` writes questions (ids, labels), their BM25 term frequencies and their
embeddings in chunks behind one manifest; `add` and `delete` change it in place, each as
one atomic generation (repository_store.py) that shares unchanged chunk files with the
previous one by hard links (chunks.py): `add` embeds and writes only the new questions,
`delete` embeds nothing and rewrites only the rows and BM25 files of the chunks it touches.
`open` verifies every file's sha256 and loads without embedding anything; BM25 statistics
and the faiss index are rebuilt from the live rows at load, so a grown repository answers
like one exported from the same questions.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from feedback_nlp.core.records import Question
from feedback_nlp.universal_model import chunks as ch
from feedback_nlp.universal_model import repository_store as store
from feedback_nlp.universal_model.normalize import bm25_texts
from feedback_nlp.universal_model.ranking import Hits
from feedback_nlp.universal_model.retrieval import RetrievalSettings, search


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _row(key: int, q: Question) -> dict[str, Any]:
    return {"key": key, "id": q.id, "question": q.question, "labels": q.labels}


def _text_index(settings: RetrievalSettings, gen_dir: Path, manifest: dict[str, Any], keys: np.ndarray) -> Any:
    if settings.backend == "numba":
        from feedback_nlp.universal_model.bm25_segment import Segment
        from feedback_nlp.universal_model.numba_bm25 import NumbaBM25

        segments = [Segment.load(gen_dir / c["bm25"]) for c in manifest["chunks"]]
        return NumbaBM25.from_segments(segments, live=keys, threads=settings.threads)
    if settings.backend == "tantivy":
        from feedback_nlp.universal_model.tantivy_index import TantivyBM25

        return TantivyBM25(gen_dir / "tantivy", settings.threads, create=False)
    if settings.backend == "reference":
        from feedback_nlp.universal_model.reference_index import ReferenceBM25

        return ReferenceBM25()
    from feedback_nlp.universal_model.opensearch_index import OpenSearchIndex

    return OpenSearchIndex.from_env(manifest["opensearch"]["index"], (manifest.get("embedder") or {}).get("dimension"))


class Repository:
    """One committed generation, loaded for searching (read-only)."""

    def __init__(self, root: Path, manifest: dict[str, Any], embedder: Any = None):
        self.root, self.manifest = root, manifest
        self.settings = RetrievalSettings.from_mapping(manifest["retrieval"])
        self.gen_dir = root / manifest["generation_dir"]
        rows = [r for c in manifest["chunks"] for r in ch.read_rows(self.gen_dir, c)]
        self.keys = np.sort(np.asarray([r["key"] for r in rows], dtype=np.int64))
        self.rows = {r["key"]: Question(r["id"], r["question"], r["labels"]) for r in rows}
        self.text_index = _text_index(self.settings, self.gen_dir, manifest, self.keys)
        if self.settings.backend == "reference":
            self.text_index.add(
                self.keys, bm25_texts(self.settings.bm25_text, [self.rows[int(k)].question for k in self.keys])
            )
        self.vectors, self._embedder = None, embedder
        self._counts: dict[str, dict[Any, int]] = {}
        if manifest.get("embedder"):
            self.vectors = self._load_vectors()

    def _load_vectors(self) -> Any:
        if self.settings.backend == "opensearch":
            return self.text_index.vectors
        from feedback_nlp.universal_model.vector_index import FaissVectors

        s = self.settings
        vectors = FaissVectors(self.manifest["embedder"]["dimension"], s.exact_max, s.nlist, s.nprobe)
        centroids = self.manifest["vectors"].get("centroids")
        vectors.reset(np.load(self.gen_dir / centroids) if centroids else None)
        for keys, emb, assign in self._chunk_vectors():
            vectors.add_parts(keys, emb, assign)
        return vectors

    def _chunk_vectors(self):
        for c in self.manifest["chunks"]:
            yield ch.live_vectors(self.gen_dir, c, self.keys)

    @classmethod
    def open(cls, root: str | Path, verify: bool = True, embedder: Any = None, retries: int = 3) -> Repository:
        """The committed generation; retried if an update removed it while it was being opened."""
        root = Path(root)
        for attempt in range(retries):
            manifest = store.read_manifest(root)
            try:
                if verify:
                    store.verify(root, manifest)
                return cls(root, manifest, embedder)
            except FileNotFoundError:
                if attempt == retries - 1 or store.read_manifest(root)["generation"] == manifest["generation"]:
                    raise
        raise AssertionError("unreachable")

    @property
    def embedder(self) -> Any:
        """Loaded at the first dense query: BM25-only use never loads a model."""
        if self._embedder is None and self.manifest.get("embedder"):
            from feedback_nlp.universal_model.embedder import Embedder

            self._embedder = Embedder(self.manifest["embedder"]["name"])
            self._embedder.check(self.manifest["embedder"])
        return self._embedder

    def __len__(self) -> int:
        return len(self.keys)

    def search(self, queries: Sequence[str], k: int | None = None) -> list[Hits]:
        embedder = self.embedder if self.settings.needs_embedder else None
        return search(self.settings, self.text_index, self.vectors, embedder, queries, k)

    def question(self, key: int) -> Question:
        return self.rows[int(key)]

    def prior(self, name: str) -> list[Any]:
        """Labels by repository frequency: the Top-N backfill after the neighbours' labels."""
        counts = self.manifest["counts"]["labels"].get(name, {})
        return [value for _, (value, _n) in sorted(counts.items(), key=lambda x: (-x[1][1], x[0]))]

    def label_counts(self, name: str) -> dict[Any, int]:
        """Questions per label value in this generation (the vote's prior_power calibration)."""
        if name not in self._counts:
            self._counts[name] = {v: n for v, n in self.manifest["counts"]["labels"].get(name, {}).values()}
        return self._counts[name]

    def embeddings(self) -> np.ndarray:
        """The live questions' embeddings in key order (those of deleted questions left out)."""
        parts = list(self._chunk_vectors())
        if not parts:
            return np.zeros((0, self.manifest["embedder"]["dimension"]), np.float32)
        keys = np.concatenate([k for k, _, _ in parts])
        return np.concatenate([e for _, e, _ in parts])[np.argsort(keys, kind="stable")]


def merge_counts(a: dict[str, dict[str, list]], b: dict[str, dict[str, list]], sign: int = 1) -> dict:
    """Label counts of a plus (sign=1) or minus (sign=-1) those of b; zero counts dropped."""
    out = {name: {k: list(v) for k, v in c.items()} for name, c in a.items()}
    for name, c in b.items():
        dst = out.setdefault(name, {})
        for k, (value, n) in c.items():
            dst.setdefault(k, [value, 0])[1] += sign * n
            if dst[k][1] == 0:
                del dst[k]
    return {name: dict(sorted(c.items())) for name, c in out.items()}


def label_counts(rows: Sequence[dict[str, Any]], categorical: Sequence[str]) -> dict[str, dict[str, list]]:
    """{label: {json(value): [value, count]}}: JSON keys are strings, values keep their type."""
    out: dict[str, dict[str, list]] = {}
    for name in categorical:
        c = Counter(json.dumps(r["labels"].get(name)) for r in rows if r["labels"].get(name) is not None)
        out[name] = {k: [json.loads(k), n] for k, n in sorted(c.items())}
    return out


def commit(
    root: Path,
    tmp: Path,
    manifest: dict[str, Any],
    op: str,
    n_changed: int,
    counts: dict[str, Any],
    known: dict[str, str],
) -> dict[str, Any]:
    """Hash the new generation (files linked from the previous one keep their known hash),
    fill the manifest and publish it (the commit point)."""
    gen = manifest["generation"]
    final = store.gen_name(gen)
    files = {f"{final}/{rel}": h for rel, h in store.hash_tree(tmp, known).items()}
    manifest.update(
        generation_dir=final,
        files=files,
        model_version=store.repository_version(gen, files, manifest),
        updated_at=_now(),
        last_update={"op": op, "questions": n_changed, "at": _now()},
    )
    manifest["counts"] = {"questions": sum(c["live"] for c in manifest["chunks"]), "labels": counts}
    store.publish(root, tmp, gen, manifest)
    store.collect_garbage(root, final)
    return manifest
