"""Writing generation N+1 of a question repository: changed chunks written, the rest linked.

Why one writer for export, add and delete: the three differ only in which chunks they keep,
write or rewrite; the writer hard-links kept chunk files from generation N (their sha256
travels with them, nothing is re-read or re-hashed), writes new files named after N+1 in a
temporary folder, keeps the IVF centroids and each vector's list consistent, updates the
engines that are not per chunk (tantivy's folder, an OpenSearch index) and hands the folder
to `repository.commit`, the single commit point.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from feedback_nlp.universal_model import chunks as ch
from feedback_nlp.universal_model import repository_store as store
from feedback_nlp.universal_model.normalize import bm25_texts
from feedback_nlp.universal_model.retrieval import RetrievalSettings


def bm25_input(settings: RetrievalSettings, texts: Sequence[str]) -> list[str]:
    """The text every BM25 engine indexes for a question (`retrieval.bm25_text`, normalize.py);
    queries get the same treatment in retrieval.search."""
    return bm25_texts(settings.bm25_text, texts)


class Writer:
    """Generation `manifest["generation"]` in a temporary folder, built from `prev_dir` (None
    for an export). `manifest` is the new manifest (its generation already incremented)."""

    def __init__(
        self, root: Path, manifest: dict[str, Any], prev_dir: Path | None, settings: RetrievalSettings, vectors: Any
    ):
        self.root, self.m, self.prev_dir, self.settings, self.vectors = root, manifest, prev_dir, settings, vectors
        self.gen = manifest["generation"]
        self.tmp = store.new_generation_dir(root, self.gen)
        prefix = f"{manifest.get('generation_dir', '')}/"
        self.prev_hashes = {k[len(prefix) :]: v for k, v in manifest.get("files", {}).items() if k.startswith(prefix)}
        self.known: dict[str, str] = {}
        self._inodes: dict[str, int] = {}
        self.chunks: list[dict[str, Any]] = []
        self.centroids: np.ndarray | None = None

    # -- chunks -------------------------------------------------------------------------------
    def keep(self, chunk: dict[str, Any]) -> None:
        assert self.prev_dir is not None
        ch.link(self.prev_dir, self.tmp, chunk)
        self._known(ch.files_of(chunk))
        self.chunks.append(chunk)

    def _known(self, names: Sequence[str]) -> None:
        """Remember the recorded hash of files linked from N (valid while the link is kept)."""
        assert self.prev_dir is not None
        for n in names:
            if n in self.prev_hashes:
                self.known[n] = self.prev_hashes[n]
                self._inodes[n] = os.stat(self.prev_dir / n).st_ino

    def known_hashes(self) -> dict[str, str]:
        """Hashes of the linked files still linked (an engine may have replaced one, e.g.
        tantivy's meta.json, by a new file: that one is hashed again)."""
        out = {}
        for n, h in self.known.items():
            p = self.tmp / n
            if p.is_file() and os.stat(p).st_ino == self._inodes[n]:
                out[n] = h
        return out

    def _segment(self, keys: np.ndarray, texts: Sequence[str]) -> Any:
        if self.settings.backend != "numba":
            return None
        from feedback_nlp.universal_model.bm25_segment import Segment

        return Segment.from_texts(keys, bm25_input(self.settings, texts))

    def new_chunk(self, rows: Sequence[dict[str, Any]], emb: np.ndarray | None) -> None:
        """One chunk of `rows` (keys ascending) with their embeddings."""
        cid = self.m["next_chunk"]
        self.m["next_chunk"] += 1
        keys = np.asarray([r["key"] for r in rows], np.int64)
        seg = self._segment(keys, [r["question"] for r in rows])
        text = ch.write_text(self.tmp, self.gen, cid, keys, [r["id"] for r in rows], ch.row_lines(rows), seg)
        assign = None if emb is None or self.centroids is None else self.vectors.assign(self.centroids, emb)
        self.chunks.append({"id": cid, **text, **ch.write_vectors(self.tmp, self.gen, cid, keys, emb, assign)})

    def rewrite(
        self, chunk: dict[str, Any], keys: np.ndarray, ids: Sequence[str], keep: np.ndarray, compact: bool
    ) -> list[bytes]:
        """`chunk` (whose live rows are `keys` / `ids`) without the rows where `keep` is False: new
        rows / ids / BM25 files (the deleted text leaves the disk); vector files linked, or
        rewritten with the live rows (`compact`). Returns the deleted rows' lines."""
        assert self.prev_dir is not None
        body, removed = ch.split_rows(self.prev_dir, chunk, ~keep)
        seg = None
        if chunk.get("bm25"):
            from feedback_nlp.universal_model.bm25_segment import Segment

            seg = Segment.load(self.prev_dir / chunk["bm25"]).select(keep)
        kept_ids = [i for i, k in zip(ids, keep) if k]
        out = {**chunk, **ch.write_text(self.tmp, self.gen, chunk["id"], keys[keep], kept_ids, body, seg)}
        if compact and chunk.get("emb"):
            vkeys, emb, assign = ch.live_vectors(self.prev_dir, chunk, keys[keep])
            out.update(ch.write_vectors(self.tmp, self.gen, chunk["id"], vkeys, emb, None))
            if assign is not None:
                out = ch.write_ivf(self.tmp, self.gen, out, assign)
        else:
            vec = {k: chunk.get(k) for k in ch.VECTOR_FILES}
            ch.link(self.prev_dir, self.tmp, vec)
            self._known([v for v in vec.values() if v])
        self.chunks.append(out)
        return removed

    # -- vectors ------------------------------------------------------------------------------
    def live_vectors(self, chunks: Sequence[dict[str, Any]], where: Path) -> tuple[np.ndarray, np.ndarray]:
        """(keys, embeddings) of the live rows of `chunks` (files in `where`), key order."""
        parts = []
        for c in chunks:
            keys, _ = ch.read_ids(where, c)
            vkeys, emb, _ = ch.live_vectors(where, c, keys)
            parts.append((vkeys, emb))
        keys = np.concatenate([k for k, _ in parts]) if parts else np.zeros(0, np.int64)
        emb = np.concatenate([e for _, e in parts]) if parts else np.zeros((0, self.vectors.dim), np.float32)
        order = np.argsort(keys, kind="stable")
        return keys[order], emb[order]

    def use_centroids(self, prev: dict[str, Any]) -> None:
        """Keep generation N's IVF centroids (new vectors are assigned to the same lists)."""
        name = prev.get("centroids")
        if name:
            assert self.prev_dir is not None
            self.centroids = np.load(self.prev_dir / name)
            os.link(self.prev_dir / name, self.tmp / name)
            self._known([name])
            self.m["vectors"] = {"centroids": name}

    def train(self, emb: np.ndarray) -> None:
        """Train IVF centroids on `emb` (all live vectors): every chunk gets new list numbers."""
        self.centroids = self.vectors.train(emb)
        name = f"ivf.g{self.gen:06d}.centroids.npy"
        with (self.tmp / name).open("wb") as f:
            np.save(f, self.centroids)
        self.m["vectors"] = {"centroids": name}

    def reassign(self) -> None:
        """New IVF list files for every chunk after `train`, or none after a switch to exact."""
        for i, c in enumerate(self.chunks):
            if not c.get("emb"):
                continue
            if c.get("ivf"):
                (self.tmp / c["ivf"]).unlink()  # a link to N's file, or one this writer made
            assign = None
            if self.centroids is not None:
                assign = self.vectors.assign(self.centroids, np.load(self.tmp / c["emb"], mmap_mode="r"))
            self.chunks[i] = ch.write_ivf(self.tmp, self.gen, c, assign)

    # -- engines that are not per chunk -------------------------------------------------------
    def tantivy(self, added: Sequence[dict[str, Any]], deleted: Sequence[int], all_rows: Any = None) -> None:
        """tantivy's own folder: linked from N plus the added rows / minus the deleted keys, or
        rebuilt from every live row (`all_rows`: export, or delete with purge_on_delete)."""
        from feedback_nlp.universal_model.tantivy_index import TantivyBM25

        if all_rows is None:
            assert self.prev_dir is not None
            store.link_tree(self.prev_dir / "tantivy", self.tmp / "tantivy")
            self._known([f"tantivy/{p.name}" for p in (self.prev_dir / "tantivy").iterdir()])
        index = TantivyBM25(self.tmp / "tantivy")
        if all_rows is None:
            index.delete(deleted)
            index.add([r["key"] for r in added], bm25_input(self.settings, [r["question"] for r in added]))
        else:
            index.add([r["key"] for r in all_rows], bm25_input(self.settings, [r["question"] for r in all_rows]))
        index.commit()
        del index

    def opensearch(self, added: Sequence[dict[str, Any]], emb: np.ndarray | None, deleted: Sequence[int]) -> None:
        from feedback_nlp.universal_model.opensearch_index import OpenSearchIndex

        index = OpenSearchIndex.from_env(self.m["opensearch"]["index"], (self.m.get("embedder") or {}).get("dimension"))
        index.delete(deleted)
        index.add([r["key"] for r in added], bm25_input(self.settings, [r["question"] for r in added]), emb)
        index.commit()

    def abandon(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
