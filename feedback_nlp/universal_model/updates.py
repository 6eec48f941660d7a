"""export / add / delete / stats of a question repository folder (002 §3.2: "all that is
required is an update to the repository").

Why this order inside each update: everything that can be wrong with the input (bad lines,
duplicated or unknown ids, label types, a different embedder) is checked before the first
byte is written, and the only write that changes what readers see is the final manifest
rename (repository_store.publish). A failed or killed update leaves the repository as it was.
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
from feedback_nlp.universal_model import repository_store as store
from feedback_nlp.universal_model.label_schema import check_labels, schema_labels
from feedback_nlp.universal_model.repository import (
    _now,
    _row,
    build_generation,
    commit,
    label_counts,
    merge_counts,
    read_rows,
    row_lines,
)
from feedback_nlp.universal_model.retrieval import RetrievalSettings


def _vectors(settings: RetrievalSettings, dim: int) -> Any:
    from feedback_nlp.universal_model.vector_index import FaissVectors

    return FaissVectors(dim, settings.exact_max, settings.nlist, settings.nprobe)


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
    emb = vectors = None
    if embedder is not None:
        emb = np.asarray(embedder.encode([r["question"] for r in rows]), dtype=np.float32)
        vectors = _vectors(settings, embedder.dim)
        vectors.rebuild(np.arange(len(rows), dtype=np.int64), emb)
    with store.write_lock(root):
        old = store.read_manifest(root) if (root / store.MANIFEST).is_file() else None
        gen = (old["generation"] + 1) if old else 1
        manifest: dict[str, Any] = {
            "format": store.FORMAT,
            "format_version": store.FORMAT_VERSION,
            "task": "universal_model",
            "record_kind": "question",
            "generation": gen,
            "created_at": _now(),
            "next_key": len(rows),
            "embedder": embedder.identity() if embedder is not None else None,
            "retrieval": asdict(settings),
            "prediction": dict(prediction),
            "labels": {"categorical": list(categorical), "numeric": list(numeric)},
        }
        if settings.backend == "opensearch":
            manifest["opensearch"] = {"index": opensearch_index or f"questions-{root.name}".lower()}
        tmp = build_generation(root, gen, rows, emb, settings, vectors=vectors, manifest=manifest)
        return commit(root, tmp, manifest, rows, "export", len(rows))


def _current(root: Path) -> tuple[dict, Path, list[dict], np.ndarray | None]:
    manifest = store.read_manifest(root)
    store.verify(root, manifest)
    gen_dir = root / manifest["generation_dir"]
    rows = read_rows(gen_dir / "questions.jsonl")
    emb = np.load(gen_dir / "embeddings.npy") if manifest.get("embedder") else None
    return manifest, gen_dir, rows, emb


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
        manifest, gen_dir, rows, emb = _current(root)
        new = load_records(path, "question", dict(field_map or {}) or None)
        lab = manifest["labels"]
        check_labels(new, lab["categorical"], lab["numeric"], path, {r["id"]: 1 for r in rows})
        settings = RetrievalSettings.from_mapping(manifest["retrieval"])
        vectors = None
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
        old_bytes = (gen_dir / "questions.jsonl").read_bytes()  # appended to, not re-serialised
        rows = rows + added
        if emb is not None:
            new_emb = np.asarray(embedder.encode([r["question"] for r in added]), dtype=np.float32)
            emb = np.concatenate([emb, new_emb])
            vectors = _vectors(settings, manifest["embedder"]["dimension"]).load(gen_dir / "vectors.faiss")
            if vectors.needs_rebuild(len(rows)):
                vectors.rebuild(np.asarray([r["key"] for r in rows], np.int64), emb)
            else:
                vectors.add([r["key"] for r in added], new_emb)
        manifest.update(generation=manifest["generation"] + 1, next_key=start + len(added))
        tmp = build_generation(
            root,
            manifest["generation"],
            rows,
            emb,
            settings,
            gen_dir,
            added=added,
            vectors=vectors,
            manifest=manifest,
            rows_bytes=old_bytes + row_lines(added),
        )
        counts = merge_counts(manifest["counts"]["labels"], label_counts(added, lab["categorical"]))
        return commit(root, tmp, manifest, rows, "add", len(added), counts)


def read_ids(args: Sequence[str]) -> tuple[list[str], list[tuple[str, int]]]:
    """Ids from the command line: one existing file (one id per line, or JSONL with "id") or
    the ids themselves. Returns the ids and where each came from (file or argument, line)."""
    if len(args) == 1 and Path(args[0]).is_file():
        ids, where = [], []
        for lineno, line in enumerate(Path(args[0]).read_text(encoding="utf-8").splitlines(), start=1):
            text = line.strip()
            if not text:
                continue
            if text.startswith("{"):
                try:
                    text = str(json.loads(text)["id"])
                except (ValueError, KeyError, TypeError):
                    raise DataValidationError(
                        [Problem(args[0], lineno, "id", "expected an id or a JSON object with 'id'")]
                    ) from None
            ids.append(text)
            where.append((args[0], lineno))
        return ids, where
    return list(args), [("<command line>", i) for i in range(1, len(args) + 1)]


def delete(root: str | Path, ids: Sequence[str], where: Sequence[tuple[str, int]] | None = None) -> dict:
    """Remove questions by id from the rows, the vectors and the BM25 index, as one generation."""
    root = Path(root)
    where = list(where or [("<ids>", i) for i in range(1, len(ids) + 1)])
    store.read_manifest(root)  # not a repository: refused before anything is created there
    with store.write_lock(root):
        manifest, gen_dir, rows, emb = _current(root)
        key_of = {r["id"]: r["key"] for r in rows}
        bad = [
            Problem(src, line, "id", f"unknown id {i!r}: not in the repository")
            for i, (src, line) in zip(ids, where)
            if i not in key_of
        ]
        if bad:
            raise DataValidationError(bad)
        gone = {key_of[i] for i in ids}
        keep = np.asarray([r["key"] not in gone for r in rows], dtype=bool)
        lines = (gen_dir / "questions.jsonl").read_bytes().splitlines(keepends=True)  # one row per line
        removed = [r for r, k in zip(rows, keep) if not k]
        rows = [r for r, k in zip(rows, keep) if k]
        settings = RetrievalSettings.from_mapping(manifest["retrieval"])
        vectors = None
        if emb is not None:
            emb = emb[keep]
            vectors = _vectors(settings, manifest["embedder"]["dimension"]).load(gen_dir / "vectors.faiss")
            if vectors.needs_rebuild(len(rows)):
                vectors.rebuild(np.asarray([r["key"] for r in rows], np.int64), emb)
            else:
                vectors.delete(sorted(gone))
        manifest["generation"] += 1
        tmp = build_generation(
            root,
            manifest["generation"],
            rows,
            emb,
            settings,
            gen_dir,
            deleted=sorted(gone),
            vectors=vectors,
            manifest=manifest,
            rows_bytes=b"".join(x for x, k in zip(lines, keep) if k),
        )
        counts = merge_counts(
            manifest["counts"]["labels"], label_counts(removed, manifest["labels"]["categorical"]), -1
        )
        return commit(root, tmp, manifest, rows, "delete", len(gone), counts)


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
