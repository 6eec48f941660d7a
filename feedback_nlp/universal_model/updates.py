"""export / add / delete / stats of a question repository folder (002 §3.2: "all that is
required is an update to the repository").

Why this order inside each update: everything that can be wrong with the input (bad lines,
duplicated or unknown ids, label types, a different embedder) is checked before the first
byte is written, and the only write that changes what readers see is the final manifest
rename (repository_store.publish). A failed or killed update leaves the repository as it was.
An update reads only the small per-chunk id files (and the files it rewrites), verifying
their sha256 first; chunk files it keeps are hard-linked with their recorded hashes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from feedback_nlp.core.errors import DataValidationError, Problem
from feedback_nlp.core.records import Question, load_records
from feedback_nlp.universal_model import chunks as ch
from feedback_nlp.universal_model import repository_store as store
from feedback_nlp.universal_model.generation import Writer
from feedback_nlp.universal_model.label_schema import check_labels, schema_labels
from feedback_nlp.universal_model.repository import _now, _row, commit, label_counts, merge_counts
from feedback_nlp.universal_model.retrieval import RetrievalSettings


def _vectors(settings: RetrievalSettings, dim: int) -> Any:
    from feedback_nlp.universal_model.vector_index import FaissVectors

    return FaissVectors(dim, settings.exact_max, settings.nlist, settings.nprobe)


def _previous_generation(root: Path) -> int:
    """The generation number in `root`'s manifest, of any format version (0 if none)."""
    try:
        return int(json.loads((root / store.MANIFEST).read_text(encoding="utf-8"))["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def export(
    root: str | Path,
    questions: Sequence[Question],
    settings: RetrievalSettings,
    categorical: Sequence[str],
    numeric: Sequence[str],
    prediction: Mapping[str, Any],
    embedder: Any = None,
    source: str | Path = "<questions>",
    opensearch_index: str | None = None,
) -> dict:
    """A new repository (or an atomic replacement of the one in `root`) from `questions`."""
    root = Path(root)
    check_labels(questions, categorical, numeric, source)
    if settings.needs_embedder and embedder is None:
        raise ValueError(f"retrieval.method={settings.method} needs an embedder")
    rows = [
        _row(i, Question(q.id, q.question, schema_labels(q, categorical, numeric))) for i, q in enumerate(questions)
    ]
    emb = None
    if embedder is not None:
        emb = np.asarray(embedder.encode([r["question"] for r in rows]), dtype=np.float32)
    with store.write_lock(root):
        gen = _previous_generation(root) + 1
        manifest: dict[str, Any] = {
            "format": store.FORMAT,
            "format_version": store.FORMAT_VERSION,
            "task": "universal_model",
            "record_kind": "question",
            "generation": gen,
            "created_at": _now(),
            "next_key": len(rows),
            "next_chunk": 0,
            "embedder": embedder.identity() if embedder is not None else None,
            "retrieval": asdict(settings),
            "prediction": dict(prediction),
            "labels": {"categorical": list(categorical), "numeric": list(numeric)},
            "vectors": {"centroids": None},
        }
        if settings.backend == "opensearch":
            manifest["opensearch"] = {"index": opensearch_index or f"questions-{root.name}".lower()}
        w = Writer(root, manifest, None, settings, None if emb is None else _vectors(settings, embedder.dim))
        try:
            if emb is not None and len(rows) > settings.exact_max and settings.backend != "opensearch":
                w.train(emb)
            for lo in range(0, len(rows), ch.CHUNK_ROWS):
                w.new_chunk(rows[lo : lo + ch.CHUNK_ROWS], None if emb is None else emb[lo : lo + ch.CHUNK_ROWS])
            manifest["chunks"] = w.chunks
            if settings.backend == "tantivy":
                w.tantivy((), (), all_rows=rows)
            elif settings.backend == "opensearch":
                w.opensearch(rows, emb, ())
            counts = label_counts(rows, categorical)
            return commit(root, w.tmp, manifest, "export", len(rows), counts, w.known_hashes())
        except BaseException:
            w.abandon()
            raise


def _current(root: Path) -> tuple[dict[str, Any], Path]:
    """The committed manifest and generation folder, with the id files an update reads verified."""
    manifest = store.read_manifest(root)
    store.verify(root, manifest, [c["ids"] for c in manifest["chunks"]])
    return manifest, root / manifest["generation_dir"]


def add(
    root: str | Path,
    path: str | Path,
    embedder: Any = None,
    embedder_name: str | None = None,
    field_map: Mapping[str, str] | None = None,
) -> dict:
    """Append the questions of a JSONL file (new label values welcome) as one generation."""
    root = Path(root)
    store.read_manifest(root)  # not a repository: refused before anything is created there
    with store.write_lock(root):
        manifest, gen_dir = _current(root)
        new = load_records(path, "question", dict(field_map or {}) or None)
        lab = manifest["labels"]
        wanted = {q.id for q in new}
        taken = {i for c in manifest["chunks"] for i in ch.read_ids(gen_dir, c)[1] if i in wanted}
        check_labels(new, lab["categorical"], lab["numeric"], path, dict.fromkeys(taken, 1))
        settings = RetrievalSettings.from_mapping(manifest["retrieval"])
        if manifest.get("embedder"):
            if embedder_name and embedder_name != manifest["embedder"]["name"]:
                raise ValueError(
                    f"{path}: embedder {embedder_name!r} differs from the repository's "
                    f"{manifest['embedder']['name']!r}; export a new repository to change embedders"
                )
            if embedder is None:
                from feedback_nlp.universal_model.embedder import Embedder

                embedder = Embedder(manifest["embedder"]["name"])
            embedder.check(manifest["embedder"])
        start = manifest["next_key"]
        added = [
            _row(start + i, Question(q.id, q.question, schema_labels(q, lab["categorical"], lab["numeric"])))
            for i, q in enumerate(new)
        ]
        new_emb = None
        if manifest.get("embedder"):
            new_emb = np.asarray(embedder.encode([r["question"] for r in added]), dtype=np.float32)
            new_emb = new_emb.reshape(len(added), manifest["embedder"]["dimension"])
        manifest.update(generation=manifest["generation"] + 1, next_key=start + len(added))
        vectors = _vectors(settings, manifest["embedder"]["dimension"]) if new_emb is not None else None
        w = Writer(root, manifest, gen_dir, settings, vectors)
        try:
            old = list(manifest["chunks"])
            rows, emb = added, new_emb
            if old and old[-1]["live"] < ch.SMALL:  # a small last chunk is rewritten with the new rows
                last = old.pop()
                store.verify(root, manifest, ch.files_of(last))
                rows = ch.read_rows(gen_dir, last) + added
                if new_emb is not None:
                    _, last_emb = w.live_vectors([last], gen_dir)
                    emb = np.concatenate([last_emb, new_emb])
            for c in old:
                w.keep(c)
            n_live = sum(c["live"] for c in old) + len(rows)
            retrain = (
                vectors is not None
                and settings.backend != "opensearch"  # its vectors live in the cluster's knn_vector field
                and not manifest["vectors"]["centroids"]
                and n_live > settings.exact_max
            )
            if vectors is not None and not retrain:
                w.use_centroids(manifest["vectors"])
            for lo in range(0, len(rows), ch.CHUNK_ROWS):
                w.new_chunk(rows[lo : lo + ch.CHUNK_ROWS], None if emb is None else emb[lo : lo + ch.CHUNK_ROWS])
            if retrain:  # crossing exact_max: IVF trained on the stored vectors, nothing re-embedded
                w.train(w.live_vectors(w.chunks, w.tmp)[1])
                w.reassign()
            manifest["chunks"] = w.chunks
            if settings.backend == "tantivy":
                w.tantivy(added, ())
            elif settings.backend == "opensearch":
                w.opensearch(added, new_emb, ())
            counts = merge_counts(manifest["counts"]["labels"], label_counts(added, lab["categorical"]))
            return commit(root, w.tmp, manifest, "add", len(added), counts, w.known_hashes())
        except BaseException:
            w.abandon()
            raise


def read_ids(args: Sequence[str]) -> tuple[list[str], list[tuple[str, int]]]:
    """Ids from the command line: one existing file (one id per line, or JSONL with "id") or
    the ids themselves. Returns the ids and where each came from (file or argument, line)."""
    if len(args) == 1 and Path(args[0]).is_file():
        from feedback_nlp.core.records import read_id_list

        listed = read_id_list(args[0])
        return [i for _, i in listed], [(args[0], lineno) for lineno, _ in listed]
    return list(args), [("<command line>", i) for i in range(1, len(args) + 1)]


def delete(root: str | Path, ids: Sequence[str], where: Sequence[tuple[str, int]] | None = None) -> dict:
    """Remove questions by id: rows, BM25 data and (at once, or when half a chunk is deleted)
    vectors, as one generation."""
    root = Path(root)
    where = list(where or [("<ids>", i) for i in range(1, len(ids) + 1)])
    store.read_manifest(root)  # not a repository: refused before anything is created there
    with store.write_lock(root):
        manifest, gen_dir = _current(root)
        wanted = set(ids)
        found: dict[str, int] = {}
        per_chunk = []
        for c in manifest["chunks"]:
            keys, cids = ch.read_ids(gen_dir, c)
            gone = np.fromiter((i in wanted for i in cids), bool, len(cids))
            found.update((i, int(k)) for i, k, g in zip(cids, keys, gone) if g)
            per_chunk.append((c, keys, cids, gone))
        bad = [
            Problem(src, line, "id", f"unknown id {i!r}: not in the repository")
            for i, (src, line) in zip(ids, where)
            if i not in found
        ]
        if bad:
            raise DataValidationError(bad)
        settings = RetrievalSettings.from_mapping(manifest["retrieval"])
        manifest["generation"] += 1
        vectors = _vectors(settings, manifest["embedder"]["dimension"]) if manifest.get("embedder") else None
        w = Writer(root, manifest, gen_dir, settings, vectors)
        try:
            removed: list[dict[str, Any]] = []
            n_live = sum(c["live"] for c in manifest["chunks"]) - len(found)
            to_exact = vectors is not None and manifest["vectors"]["centroids"] and n_live <= settings.exact_max
            if vectors is not None and not to_exact:
                w.use_centroids(manifest["vectors"])
            elif to_exact:
                manifest["vectors"] = {"centroids": None}
            for c, keys, cids, gone in per_chunk:
                if not gone.any():
                    w.keep(c)
                    continue
                live = int((~gone).sum())
                compact = 0 < live and 2 * live <= c["stored"]  # half the chunk's vectors are dead
                read = [c[k] for k in ch.TEXT_FILES + (ch.VECTOR_FILES if compact else ()) if c.get(k)]
                store.verify(root, manifest, read)
                if live:
                    lines = w.rewrite(c, keys, cids, ~gone, compact)
                else:  # every question of the chunk is deleted: the chunk goes
                    lines = ch.split_rows(gen_dir, c, gone)[1]
                removed += [json.loads(x) for x in lines]
            if to_exact:
                w.reassign()
            manifest["chunks"] = w.chunks
            deleted = sorted(found.values())
            if settings.backend == "tantivy":
                if settings.purge_on_delete:  # fresh segments: no deleted text, exact statistics
                    w.tantivy((), (), all_rows=[r for c in w.chunks for r in ch.read_rows(w.tmp, c)])
                else:
                    w.tantivy((), deleted)
            elif settings.backend == "opensearch":
                w.opensearch((), None, deleted)
            counts = merge_counts(
                manifest["counts"]["labels"], label_counts(removed, manifest["labels"]["categorical"]), -1
            )
            return commit(root, w.tmp, manifest, "delete", len(found), counts, w.known_hashes())
        except BaseException:
            w.abandon()
            raise


def stats(root: str | Path) -> dict[str, Any]:
    """Counts per label, size on disk, last update (what `feedback-nlp repo stats` prints)."""
    root = Path(root)
    m = store.read_manifest(root)
    return {
        "questions": m["counts"]["questions"],
        "model_version": m["model_version"],
        "generation": m["generation"],
        "last_update": m.get("last_update"),
        "updated_at": m.get("updated_at"),
        "size_bytes": store.size_on_disk(root, m),
        "embedder": m.get("embedder"),
        "retrieval": {k: m["retrieval"][k] for k in ("method", "backend", "k")},
        "labels": {
            name: {json.dumps(v) if not isinstance(v, str) else v: n for v, n in c.values()}
            for name, c in m["counts"]["labels"].items()
        },
    }
