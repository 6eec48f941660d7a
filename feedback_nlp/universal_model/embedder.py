"""The sentence embedder of a repository: loaded by name, identified by a content revision.

Why a revision: stored embeddings are only comparable with query embeddings of the very
same weights. The name alone ("packaged:all-MiniLM-L6-v2", a hub id, a local folder) can
point at different weights over time, so the manifest also keeps a sha256 over the model's
config and weight files; opening a repository with other weights is an error, not a silent
drop in accuracy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from feedback_nlp.core.embeddings import SentenceEmbedder

WEIGHT_FILES = (
    "config.json",
    "config_sentence_transformers.json",
    "modules.json",
    "model.safetensors",
    "pytorch_model.bin",
    "tokenizer.json",
    "vocab.txt",
)


class EmbedderMismatchError(ValueError):
    """The embedder asked for is not the one the repository's vectors were made with."""


def revision(resolved: str | Path) -> str:
    """sha256 (first 16 hex) over the model folder's config, tokenizer and weight files."""
    root, h = Path(resolved), hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name in WEIGHT_FILES)
    for p in files:
        h.update(str(p.relative_to(root)).encode())
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16] if files else "unknown"


class Embedder(SentenceEmbedder):
    """The repository's sentence embedder: the shared wrapper (feedback_nlp/core/embeddings.py, L2-normalised,
    inner product = cosine) plus the content revision its vectors were made with."""

    def __init__(self, name: str, batch_size: int = 64, model: Any = None):
        from feedback_nlp.core.model_factory import resolve_name_or_path

        # no text cache: a repository embeds each question once and stores the vector itself
        super().__init__(name, batch_size=batch_size, device="cpu", max_memory_cache=0, model=model)
        resolved = resolve_name_or_path(name)
        self.revision = revision(resolved) if Path(resolved).is_dir() else f"hub:{resolved}"
        self.dim = self.dimension

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "revision": self.revision, "dimension": self.dim, "normalized": True}

    def check(self, manifest_embedder: dict[str, Any]) -> None:
        if (manifest_embedder.get("name"), manifest_embedder.get("revision")) != (self.name, self.revision):
            raise EmbedderMismatchError(
                f"embedder {self.name!r} (revision {self.revision}) differs from the repository's "
                f"{manifest_embedder.get('name')!r} (revision {manifest_embedder.get('revision')}): its vectors "
                "would not be comparable; export a new repository to change embedders"
            )

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        return super().encode(texts, progress)
