"""On-disk layout of an exported question repository: generations behind one manifest.

Why generations: an update (add / delete) must be atomic even under kill -9, and readers
must keep answering while it runs. Each update writes a new generation folder in which
the files it keeps from the previous generation are hard links (chunks.py: files are never
modified, so sharing them is safe and costs no copy) and only changed chunks are new files;
it fsyncs the folder, and only then replaces manifest.json -- the single commit point -- in
one rename. Before that rename a reader (or a crash) sees the old generation, after it the
new one; older generations and leftovers of interrupted updates are removed afterwards (a
shared file lives on through its links).

    DIR/manifest.json                         pointer + settings + chunk list + sha256 of every file
    DIR/generations/000009/c000003.g000009.*  chunk files (chunks.py), some linked from older generations
    DIR/generations/000009/ivf.g000004.centroids.npy   IVF centroids (above exact_max)
    DIR/generations/000009/tantivy/           BM25 segments (backend tantivy only)

Format version 1 (one rows / embeddings / faiss file per generation, rewritten by every
update) is not read: open or update such a folder and the error says to re-export it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from feedback_nlp.core.errors import UserError
from feedback_nlp.core.io import atomic_write_json, sha256_file

MANIFEST = "manifest.json"
FORMAT = "feedback-nlp/question-repository"
FORMAT_VERSION = 2
SKIP = (".tantivy-writer.lock", ".tantivy-meta.lock")


class RepositoryError(UserError, ValueError):
    """A repository folder that is missing, damaged or used against its settings."""


def hash_tree(gen_dir: Path, known: dict[str, str] | None = None) -> dict[str, str]:
    """sha256 of every file of a generation, keyed by path relative to the generation folder;
    `known` hashes (of files hard-linked from the previous generation) are not recomputed."""
    known = known or {}
    out = {}
    for p in sorted(gen_dir.rglob("*")):
        if p.is_file() and p.name not in SKIP and not p.name.startswith(".tmp"):
            rel = str(p.relative_to(gen_dir))
            out[rel] = known[rel] if rel in known else sha256_file(p)
    return out


# the manifest's sections that decide a prediction: the model version covers them with the files,
# so editing the vote or retrieval settings by hand is refused, never served under the old version
PREDICTION_SETTINGS = ("embedder", "retrieval", "prediction", "labels")


def repository_version(generation: int, files: dict[str, str], manifest: dict[str, Any]) -> str:
    """`g<generation>-<hash of every file and of the prediction settings>`."""
    payload = {"files": files, **{key: manifest.get(key) for key in PREDICTION_SETTINGS}}
    return f"g{generation}-{hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]}"


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise RepositoryError(
            f"{root}: not a question repository (no {MANIFEST}); "
            "create one with `feedback-nlp repo export --config ... out=DIR`"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise RepositoryError(f"{path}: unreadable manifest ({e})") from None
    if manifest.get("format") != FORMAT or manifest.get("task") != "universal_model":
        raise RepositoryError(f"{path}: not a question repository manifest (format {manifest.get('format')!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise RepositoryError(
            f"{path}: question repository format version {manifest.get('format_version')}, this code reads "
            f"version {FORMAT_VERSION} (chunks shared between generations); re-export it from its questions "
            "with `feedback-nlp repo export --config ... out=DIR`"
        )
    want = repository_version(manifest.get("generation", 0), manifest.get("files") or {}, manifest)
    if manifest.get("model_version") != want:
        raise RepositoryError(
            f"{path}: model_version {manifest.get('model_version')!r} is not the version of its files and "
            f"settings ({', '.join(PREDICTION_SETTINGS)}): the manifest was edited; change settings by re-exporting"
        )
    return manifest


def verify(root: Path, manifest: dict[str, Any], only: Iterable[str] | None = None) -> None:
    """Every file the manifest lists (or the names in `only`, in its generation folder) exists
    with its sha256: a damaged export fails loudly."""
    files = manifest["files"]
    if only is not None:
        files = {f"{manifest['generation_dir']}/{name}": files[f"{manifest['generation_dir']}/{name}"] for name in only}
    for rel, want in files.items():
        path = root / rel
        if not path.is_file():
            raise FileNotFoundError(f"{path}: listed in {root / MANIFEST} but missing")
        if sha256_file(path) != want:
            raise RepositoryError(f"{path}: sha256 differs from {root / MANIFEST}; the repository is damaged")


def fsync_tree(path: Path) -> None:
    """Flush every file and folder of a new generation before it is committed."""
    for p in sorted(path.rglob("*"), reverse=True) + [path]:
        if p.name in SKIP:
            continue
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def link_tree(src: Path, dst: Path) -> None:
    """Hard-link (or copy) a tantivy folder: segment files are immutable and tantivy replaces
    meta.json by rename, so the new generation's writes never touch the old one's files."""
    dst.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        if p.is_file() and p.name not in SKIP:
            try:
                os.link(p, dst / p.name)
            except OSError:
                shutil.copy2(p, dst / p.name)


def gen_name(n: int) -> str:
    return f"generations/{n:06d}"


def new_generation_dir(root: Path, n: int) -> Path:
    tmp = root / "generations" / f".tmp-{n:06d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def publish(root: Path, tmp: Path, n: int, manifest: dict[str, Any]) -> None:
    """Rename the finished generation into place, then commit by replacing the manifest."""
    final = root / gen_name(n)
    shutil.rmtree(final, ignore_errors=True)  # leftover of an update killed after its rename
    fsync_tree(tmp)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    atomic_write_json(root / MANIFEST, manifest)
    _fsync_dir(root)


def collect_garbage(root: Path, keep: str) -> None:
    """Remove every generation but `keep` (deleted questions must not linger in old ones)."""
    gens = root / "generations"
    for p in gens.iterdir() if gens.is_dir() else []:
        if str(p.relative_to(root)) != keep:
            shutil.rmtree(p, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def write_lock(root: Path) -> Iterator[None]:
    """One writer at a time per repository (readers never lock)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".write.lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def size_on_disk(root: Path, manifest: dict[str, Any]) -> int:
    return sum((root / rel).stat().st_size for rel in manifest["files"] if (root / rel).is_file())
