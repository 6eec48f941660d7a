"""Benchmark: repository build, add 1% and delete 1% against a rebuild; size on disk, memory.

    python -m bench.universal_model_updates                       # 100K questions, hybrid
    python -m bench.universal_model_updates --sizes 100000,300000

Per size: `export` of N questions (the rebuild), then `add` of 1% new questions and `delete`
of 1% of the ids spread over the whole repository (updates.py, each a committed generation:
id files verified, changed chunks written and hashed, fsync, manifest rename). Goal: each
<= 5% of the index-only rebuild (vectors known, as the update's are).
Embedding dominates a real rebuild; so that a run takes minutes, not hours, on a 2-core
machine, vectors come from a table (real packaged-MiniLM embeddings of seed questions,
perturbed per copy) and the embedding time is measured separately on real questions and
reported next to the index-only figures: "with embedding" = index-only time + questions
embedded x measured seconds per question. Delete embeds nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.universal_model_corpus import grow, load_texts
from feedback_nlp.core.records import Question
from feedback_nlp.universal_model import updates
from feedback_nlp.universal_model.repository_store import read_manifest, size_on_disk
from feedback_nlp.universal_model.retrieval import RetrievalSettings


class TableEmbedder:
    """The real embedder's identity; vectors looked up (see module docstring)."""

    def __init__(self, real, table: dict[str, np.ndarray]):
        self.name, self.revision, self.dim, self.table = real.name, real.revision, real.dim, table
        self.identity, self.check = real.identity, real.check

    def encode(self, texts):
        return np.stack([self.table[t] for t in texts]) if len(texts) else np.zeros((0, self.dim), np.float32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100000")
    p.add_argument("--method", default="hybrid")
    p.add_argument("--seeds", type=int, default=2000)
    a = p.parse_args()
    from feedback_nlp.universal_model.embedder import Embedder

    seed_texts, _, source = load_texts()
    real = Embedder("packaged:all-MiniLM-L6-v2")
    sample = seed_texts[: a.seeds]
    t = time.perf_counter()
    seed_vecs = real.encode(sample)
    per_q = (time.perf_counter() - t) / len(sample)
    print(f"embedding: {1 / per_q:.0f} questions/s (packaged MiniLM, {len(sample)} real questions, this machine)")
    rng = np.random.default_rng(0)
    for n in (int(x) for x in a.sizes.split(",")):
        texts = grow(sample, n + n // 100, seed=1)
        texts = [f"{t} {i}" for i, t in enumerate(texts)]  # unique texts: one vector each
        vecs = seed_vecs[rng.integers(0, len(sample), len(texts))]
        vecs = vecs + rng.normal(size=vecs.shape).astype(np.float32) * (0.5 / np.sqrt(vecs.shape[1]))
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        emb = TableEmbedder(real, dict(zip(texts, vecs)))
        qs = [Question(f"q{i}", t, {"label": f"c{i % 150}"}) for i, t in enumerate(texts)]
        base, extra = qs[:n], qs[n:]
        settings = RetrievalSettings(method=a.method)
        with tempfile.TemporaryDirectory() as tmp:
            root, src = Path(tmp) / "repo", Path(tmp) / "new.jsonl"
            src.write_text(
                "".join(
                    f'{{"id": "{q.id}", "question": "{q.question}", "label": "{q.labels["label"]}"}}\n' for q in extra
                )
            )
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t = time.perf_counter()
            updates.export(root, base, settings, ["label"], [], {"weighting": "similarity"}, emb)
            build = time.perf_counter() - t
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            size = size_on_disk(root, read_manifest(root))
            t = time.perf_counter()
            updates.add(root, src, embedder=emb)
            add = time.perf_counter() - t
            t = time.perf_counter()
            updates.delete(root, [q.id for q in base[::100]])
            delete = time.perf_counter() - t
            shutil.rmtree(root)
        emb_build, emb_add = n * per_q, len(extra) * per_q
        print(
            f"{n} questions ({a.method}, {source}): size on disk {size / 1e6:.0f} MB, process peak RSS "
            f"{rss / 1024:.0f} MB (was {rss0 / 1024:.0f} MB before the build)"
        )
        print(f"  rebuild (export): {build:.1f} s index-only, {build + emb_build:.0f} s with embedding")
        print(
            f"  add 1% ({len(extra)}): {add:.2f} s index-only = {100 * add / build:.1f}% of the index-only rebuild "
            f"(goal <= 5%); with embedding {add + emb_add:.1f} s = {100 * (add + emb_add) / (build + emb_build):.1f}%"
        )
        print(
            f"  delete 1% ({n // 100}): {delete:.2f} s = {100 * delete / build:.1f}% of the index-only rebuild "
            f"(goal <= 5%), {100 * delete / (build + emb_build):.2f}% of the rebuild with embedding",
            flush=True,
        )
        print(f"  machine load average {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
