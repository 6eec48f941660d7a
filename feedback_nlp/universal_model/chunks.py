"""Chunk files of a question repository generation: written once, hard-linked by later ones.

Why chunks: an update used to rewrite every row, embedding and the faiss index of the
repository (at 1M questions an add of 1% cost 25% of a rebuild). Now the questions live in
chunks of up to `CHUNK_ROWS` rows (keys ascending), and each chunk is a handful of files
that a generation never modifies: a new generation hard-links the files it keeps from the
previous one and writes new files (named after itself) only for what changed:

    c000003.g000001.keys.npy   int64 keys of the vectors below (rows as first written)
    c000003.g000001.emb.npy    float32 embeddings, one per key above
    c000003.g000004.ivf.npy    int64 IVF list of each vector (only above exact_max)
    c000003.g000009.rows.jsonl the live rows: {"key", "id", "question", "labels"}
    c000003.g000009.ids.json   {"keys": [...], "ids": [...]} of the live rows, same order
    c000003.g000009.bm25.npz   term frequencies of the live rows (numba_bm25.Segment)

An add writes one new chunk (or rewrites a small last chunk together with the new rows); a
delete rewrites the rows, ids and BM25 files of the chunks that held the deleted questions
(their text and terms leave the disk at once) and keeps their vectors (never searched: a
vector counts only when its key is a live row) until half of a chunk is deleted, when the
chunk's vector files are rewritten too. Statistics (BM25's N, df, average length; label
counts) are always those of the live rows, so results equal a rebuild's.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

CHUNK_ROWS = 65_536  # rows per chunk written by an export (an add writes its own chunks)
SMALL = CHUNK_ROWS // 4  # a last chunk below this many rows is merged with the next add's rows
TEXT_FILES = ("rows", "ids", "bm25")
VECTOR_FILES = ("keys", "emb", "ivf")


def file_name(cid: int, gen: int, kind: str) -> str:
    ext = {"rows": "jsonl", "ids": "json", "bm25": "npz", "keys": "npy", "emb": "npy", "ivf": "npy"}[kind]
    return f"c{cid:06d}.g{gen:06d}.{kind}.{ext}"


def row_lines(rows: Sequence[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def _save_npy(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as f:  # np.save(str) would append .npy to a name without it
        np.save(f, array)


def write_text(
    gen_dir: Path, gen: int, cid: int, keys: np.ndarray, ids: Sequence[str], lines: bytes, segment: Any
) -> dict[str, Any]:
    """rows / ids (/ bm25 when `segment` is given) files of one chunk's live rows."""
    out: dict[str, Any] = {"live": len(keys)}
    out["rows"] = file_name(cid, gen, "rows")
    (gen_dir / out["rows"]).write_bytes(lines)
    out["ids"] = file_name(cid, gen, "ids")
    (gen_dir / out["ids"]).write_text(json.dumps({"keys": [int(k) for k in keys], "ids": list(ids)}), "utf-8")
    out["bm25"] = None
    if segment is not None:
        out["bm25"] = file_name(cid, gen, "bm25")
        segment.save(gen_dir / out["bm25"])
    return out


def write_vectors(
    gen_dir: Path, gen: int, cid: int, keys: np.ndarray, emb: np.ndarray | None, assign: np.ndarray | None
) -> dict[str, Any]:
    """keys / emb (/ ivf) files of one chunk (all None when the repository has no embedder)."""
    out: dict[str, Any] = {"stored": len(keys), "keys": None, "emb": None, "ivf": None}
    if emb is None:
        return out
    out["keys"], out["emb"] = file_name(cid, gen, "keys"), file_name(cid, gen, "emb")
    _save_npy(gen_dir / out["keys"], np.asarray(keys, np.int64))
    _save_npy(gen_dir / out["emb"], np.ascontiguousarray(emb, np.float32))
    if assign is not None:
        out["ivf"] = file_name(cid, gen, "ivf")
        _save_npy(gen_dir / out["ivf"], np.asarray(assign, np.int64))
    return out


def write_ivf(gen_dir: Path, gen: int, chunk: dict[str, Any], assign: np.ndarray | None) -> dict[str, Any]:
    """The chunk with new IVF list numbers (after the IVF was trained again), or none (exact)."""
    out = dict(chunk, ivf=None)
    if assign is not None:
        out["ivf"] = file_name(chunk["id"], gen, "ivf")
        _save_npy(gen_dir / out["ivf"], np.asarray(assign, np.int64))
    return out


def link(src_dir: Path, dst_dir: Path, chunk: dict[str, Any]) -> None:
    """Hard-link (or copy, on file systems without links) every file of `chunk` not yet in dst."""
    for kind in TEXT_FILES + VECTOR_FILES:
        name = chunk.get(kind)
        if name and not (dst_dir / name).exists():
            try:
                os.link(src_dir / name, dst_dir / name)
            except OSError:
                shutil.copy2(src_dir / name, dst_dir / name)


def files_of(chunk: dict[str, Any]) -> list[str]:
    return [chunk[k] for k in TEXT_FILES + VECTOR_FILES if chunk.get(k)]


def read_ids(gen_dir: Path, chunk: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    data = json.loads((gen_dir / chunk["ids"]).read_text(encoding="utf-8"))
    return np.asarray(data["keys"], np.int64), data["ids"]


def read_rows(gen_dir: Path, chunk: dict[str, Any]) -> list[dict[str, Any]]:
    """One C-level parse (json.dumps escapes newlines inside strings, so raw newlines only
    separate rows): ~10x faster than a json.loads per line."""
    text = (gen_dir / chunk["rows"]).read_text(encoding="utf-8").rstrip("\n")
    return json.loads("[" + text.replace("\n", ",") + "]") if text else []


def split_rows(gen_dir: Path, chunk: dict[str, Any], gone: np.ndarray) -> tuple[bytes, list[bytes]]:
    """The chunk's rows file without the rows where `gone` is True, and those rows' lines
    (one row per line, in the order of the ids file)."""
    data = (gen_dir / chunk["rows"]).read_bytes()
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10) + 1
    starts = np.concatenate([[0], ends[:-1]])
    if len(ends) != len(gone):
        raise ValueError(f"{gen_dir / chunk['rows']}: {len(ends)} rows, its ids file lists {len(gone)}")
    cut = np.flatnonzero(gone)
    kept, lo = [], 0
    for i in cut:  # few deleted rows per chunk: copy the runs between them
        kept.append(data[lo : starts[i]])
        lo = ends[i]
    kept.append(data[lo:])
    return b"".join(kept), [data[starts[i] : ends[i]] for i in cut]


def live_vectors(
    gen_dir: Path, chunk: dict[str, Any], live_keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(keys, embeddings, IVF lists) of the chunk's stored vectors whose key is a live row."""
    keys = np.load(gen_dir / chunk["keys"])
    emb = np.load(gen_dir / chunk["emb"], mmap_mode="r")
    keep = np.isin(keys, live_keys)
    assign = np.load(gen_dir / chunk["ivf"])[keep] if chunk.get("ivf") else None
    return keys[keep], np.asarray(emb[keep], np.float32), assign


def needs_compaction(chunk: dict[str, Any]) -> bool:
    """Half or more of the chunk's stored vectors belong to deleted questions."""
    return chunk.get("emb") is not None and 2 * chunk["live"] <= chunk["stored"]
