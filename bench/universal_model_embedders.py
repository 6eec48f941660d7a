"""Benchmark: the universal model's Top-1 and embedding cost per embedder, on CLINC150.

    python -m feedback_nlp.scripts.clinc150_to_questions          # ../shared/data/clinc150 -> data/clinc150
    make embedder-mpnet                              # optional: models/all-mpnet-base-v2 (~440 MB)
    python -m bench.universal_model_embedders --embedders packaged:all-MiniLM-L6-v2,models/all-mpnet-base-v2

Why: the embedder is the largest lever of dense and hybrid retrieval (issue 12), and a
stronger one costs embedding time at export, at every `add` and for every query. Per embedder
the repository is exported once through `updates.export` (the real path: tantivy, faiss,
manifest), the queries are embedded once, and then each retrieval/vote setting is scored from
the same vectors. The first embedder is the reference: every other row prints its Top-1
difference and its embedding time as a ratio against it, measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from feedback_nlp.core.embeddings import EmbeddingCache, text_key
from feedback_nlp.core.errors import DataValidationError
from feedback_nlp.core.records import Question
from feedback_nlp.universal_model.embedder import Embedder
from feedback_nlp.universal_model.label_schema import check_labels, line_numbers
from feedback_nlp.universal_model.predict import UniversalModel
from feedback_nlp.universal_model.question_repository import load_questions
from feedback_nlp.universal_model.repository import Repository
from feedback_nlp.universal_model.retrieval import RetrievalSettings
from feedback_nlp.universal_model.updates import export

# (label, method, k, weighting): plain dense k-NN and the documented default (hybrid RRF)
VARIANTS = (
    ("dense 1-NN", "dense", 1, "count"),
    ("dense K=3, sim", "dense", 3, "similarity"),
    ("dense K=5, sim", "dense", 5, "similarity"),
    ("dense K=20, sim", "dense", 20, "similarity"),
    ("hybrid RRF K=20, sim (default)", "hybrid", 20, "similarity"),
)


class MemoEmbedder:
    """The real embedder, remembering every text it embedded: each variant reuses the vectors.

    With `cache_dir` the vectors also go to the shared on-disk cache (feedback_nlp/core/embeddings.py,
    keyed by sha256(text) per model name + content revision), so a later run -- this benchmark
    or bench/universal_model_quality.py -- embeds nothing it has embedded before (mpnet on
    CLINC150 takes 10-15 min on 2 threads). `seconds` / `embedded` count real encoding only.
    """

    def __init__(self, real: Embedder, cache_dir: Path | None = None):
        self.real, self.memo, self.seconds, self.embedded = real, {}, 0.0, 0
        self.name, self.revision, self.dim = real.name, real.revision, real.dim
        self.identity, self.check = real.identity, real.check
        self.disk = EmbeddingCache(cache_dir, f"{real.name}@{real.revision}") if cache_dir else None
        if self.disk is not None:
            self.memo = {("sha256", k): v for k, v in self.disk.load().items()}

    def encode(self, texts):
        keys = [("sha256", text_key(t)) for t in texts] if self.disk is not None else list(texts)
        todo = {k: t for k, t in zip(keys, texts) if k not in self.memo}
        if todo:
            t0 = time.perf_counter()
            vecs = self.real.encode(list(todo.values()), progress=len(todo) > 1000)
            self.seconds += time.perf_counter() - t0
            self.embedded += len(todo)
            self.memo.update(zip(todo, vecs))
            if self.disk is not None:
                self.disk.add([k[1] for k in todo], vecs)
        return np.stack([self.memo[k] for k in keys]) if len(texts) else np.zeros((0, self.dim), np.float32)


def top1(repo: Repository, queries: list[Question], label: str, method: str, k: int, weighting: str) -> float:
    repo.settings = replace(repo.settings, method=method, k=k)
    model = UniversalModel(repo, [label], [], k=k, weighting=weighting, backfill_prior=True)
    rows = model.predict([q.question for q in queries])
    return 100.0 * float(np.mean([row[label]["prediction"] == q.labels[label] for row, q in zip(rows, queries)]))


def embedding_seconds(embedder: MemoEmbedder, queries: list[Question], n: int = 256) -> float:
    """Seconds per question of the real embedder (no cache) on the first `n` queries, batched as
    `predict` batches them: the cost of a query when every vector came from the cache."""
    texts = [q.question for q in queries[:n]]
    t0 = time.perf_counter()
    embedder.real.encode(texts)
    return (time.perf_counter() - t0) / max(len(texts), 1)


def load_labelled(path: Path, label: str) -> list[Question]:
    """Questions that all carry `label`; bad input is one file:line:field error (exit 2) before
    anything is embedded: a question without the label can neither vote nor be scored."""
    try:
        qs = load_questions(path)
        check_labels(qs, [label], [], path)
    except DataValidationError as e:
        raise SystemExit(f"error: {e}") from None
    unlabelled = [q.id for q in qs if q.labels.get(label) is None]
    if unlabelled:
        line = line_numbers(path).get(unlabelled[0], 0)
        raise SystemExit(f"error: {path}:{line}: field {label!r}: missing ({len(unlabelled)} question(s))")
    return qs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--embedders", default="packaged:all-MiniLM-L6-v2", help="comma-separated; first = reference")
    p.add_argument("--repository", type=Path, default=Path("data/clinc150/train.jsonl"))
    p.add_argument("--queries", type=Path, default=Path("data/clinc150/test.jsonl"))
    p.add_argument("--label", default="intent")
    p.add_argument(
        "--cache", type=Path, default=None, help="on-disk embedding cache (e.g. .cache/universal_model_embeddings)"
    )
    a = p.parse_args()
    repo_qs, queries = load_labelled(a.repository, a.label), load_labelled(a.queries, a.label)
    print(f"repository {a.repository} ({len(repo_qs)}), queries {a.queries} ({len(queries)}), label {a.label}")
    results: list[tuple[str, float, dict[str, float]]] = []
    for name in a.embedders.split(","):
        embedder = MemoEmbedder(Embedder(name), a.cache)
        with tempfile.TemporaryDirectory() as tmp:
            export(tmp, repo_qs, RetrievalSettings(), [a.label], [], {"weighting": "similarity"}, embedder)
            embedder.encode([q.question for q in queries])
            per_q = embedder.seconds / embedder.embedded if embedder.embedded else embedding_seconds(embedder, queries)
            repo = Repository.open(tmp, embedder=embedder)
            scores = {label: top1(repo, queries, a.label, m, k, w) for label, m, k, w in VARIANTS}
        results.append((name, per_q, scores))
        print(f"{name}: dim {embedder.dim}, {1 / per_q:.0f} questions/s embedded ({embedder.embedded})")
        for label, s in scores.items():
            print(f"  {label:34s} Top-1 {s:5.1f}")
    ref_name, ref_per_q, ref_scores = results[0]
    print(f"\nreference: {ref_name}")
    print("| embedder | " + " | ".join(v[0] for v in VARIANTS) + " | embedding time vs reference |")
    print("|---|" + "---|" * (len(VARIANTS) + 1))
    for name, per_q, scores in results:
        cells = [f"{scores[v[0]]:.1f} ({scores[v[0]] - ref_scores[v[0]]:+.1f})" for v in VARIANTS]
        print(f"| {name} | " + " | ".join(cells) + f" | {per_q / ref_per_q:.1f}x |")


if __name__ == "__main__":
    main()
