"""The one sentence-embedding wrapper (sentence-transformers) for every system that embeds text.

Why one: SimCSE precision/recall (000 §4.3), noisy-negative mining (001 §3.1) and dense
retrieval in the universal model (002 §3.3) all need "texts -> L2-normalised vectors" with the
same loading rules (model factory: hub names, local folders, the packaged offline MiniLM), the
same lazy loading (the weights never enter a task checkpoint or a DDP pickle) and the same
caches: an in-memory one for repeated texts, and an optional on-disk one keyed by
sha256(text), so a re-run embeds only what is new.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Embeddings of one model, as append-only .npz shards of (sha256(text) keys, float32 rows).

    Why shards: each call adds only what was missing, written atomically, so an interrupted
    run keeps everything embedded before it and concurrent ranks never see a partial file.
    """

    def __init__(self, root: str | Path, model_name: str, normalize: bool = True):
        tag = hashlib.sha256(f"{model_name}\0normalize={normalize}".encode()).hexdigest()[:16]
        self.dir = Path(root) / tag
        self.model_name = model_name

    def load(self) -> dict[str, np.ndarray]:
        table: dict[str, np.ndarray] = {}
        for shard in sorted(self.dir.glob("shard-*.npz")):
            with np.load(shard, allow_pickle=False) as z:
                for k, v in zip(z["keys"].astype(str), z["vectors"], strict=True):
                    table[k] = v
        return table

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        if not len(keys):
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "model.txt").write_text(self.model_name + "\n", encoding="utf-8")
        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:16]
        fd, tmp = tempfile.mkstemp(prefix=".shard-", suffix=".npz", dir=self.dir)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, keys=np.asarray(keys, dtype="S64"), vectors=np.asarray(vectors, dtype=np.float32))
        os.replace(tmp, self.dir / f"shard-{name}.npz")


class SentenceEmbedder:
    """texts -> (n, d) float32 embeddings (L2-normalised unless `normalize=False`).

    `name` is a model-factory name: a SimCSE or Sentence-BERT model in production, the packaged
    MiniLM offline. `encode` returns numpy, calling the object returns a torch tensor on
    `device` (what the torchmetrics metrics use).
    """

    def __init__(
        self,
        name: str,
        batch_size: int = 64,
        normalize: bool = True,
        device: str | None = None,
        cache_dir: str | Path | None = None,
        max_memory_cache: int = 200_000,
        model: Any = None,
    ):
        self.name, self.batch_size, self.normalize = name, batch_size, normalize
        self.device: str | torch.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.disk = EmbeddingCache(cache_dir, name, normalize) if cache_dir else None
        self.max_memory_cache = max_memory_cache
        self._model = model
        self._memory: dict[str, np.ndarray] = {}
        self._disk_loaded = False

    def __getstate__(self) -> dict[str, Any]:
        # DDP spawn / deepcopy: ship the name, not the weights; each process loads its own copy
        return {**self.__dict__, "_model": None, "_memory": {}, "_disk_loaded": False}

    @property
    def model(self) -> Any:
        if self._model is None:
            from feedback_nlp.core import model_factory

            self._model = model_factory.load_sentence_transformer(self.name, device=str(self.device)).eval()
        params = getattr(self._model, "parameters", None)
        first = next(iter(params()), None) if callable(params) else None
        if first is not None and str(first.device) != str(torch.device(self.device)):
            self._model.to(self.device)
        return self._model

    @property
    def dimension(self) -> int:
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if self.disk is not None and not self._disk_loaded:
            self._memory.update(self.disk.load())
            self._disk_loaded = True
        keys = [text_key(t) for t in texts]
        found = {k: self._memory[k] for k in dict.fromkeys(keys) if k in self._memory}
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing:
            by_key = dict(zip(keys, texts, strict=True))
            with torch.inference_mode():
                vectors = self.model.encode(
                    [by_key[k] for k in missing],
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=self.normalize,
                    show_progress_bar=progress,
                )
            vectors = np.asarray(vectors, dtype=np.float32)
            if self.disk is not None:
                self.disk.add(missing, vectors)
            found.update(zip(missing, vectors, strict=True))
            if len(self._memory) + len(missing) > self.max_memory_cache:
                self._memory.clear()
            if len(missing) <= self.max_memory_cache:
                self._memory.update(zip(missing, vectors, strict=True))
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.from_numpy(self.encode(list(texts))).to(self.device)
