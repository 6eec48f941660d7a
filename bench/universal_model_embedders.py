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
    """The real embedder, remembering every text it embedded: each variant reuses the vectors."""

    def __init__(self, real: Embedder):
        self.real, self.memo, self.seconds, self.embedded = real, {}, 0.0, 0
        self.name, self.revision, self.dim = real.name, real.revision, real.dim
        self.identity, self.check = real.identity, real.check

    def encode(self, texts):
        todo = list(dict.fromkeys(t for t in texts if t not in self.memo))
        if todo:
            t0 = time.perf_counter()
            for text, vec in zip(todo, self.real.encode(todo, progress=len(todo) > 1000)):
                self.memo[text] = vec
            self.seconds += time.perf_counter() - t0
            self.embedded += len(todo)
        return np.stack([self.memo[t] for t in texts]) if len(texts) else np.zeros((0, self.dim), np.float32)


def top1(repo: Repository, queries: list[Question], label: str, method: str, k: int, weighting: str) -> float:
    repo.settings = replace(repo.settings, method=method, k=k)
    model = UniversalModel(repo, [label], [], k=k, weighting=weighting, backfill_prior=True)
    rows = model.predict([q.question for q in queries])
    return 100.0 * float(np.mean([row[label]["prediction"] == q.labels[label] for row, q in zip(rows, queries)]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--embedders", default="packaged:all-MiniLM-L6-v2", help="comma-separated; first = reference")
    p.add_argument("--repository", type=Path, default=Path("data/clinc150/train.jsonl"))
    p.add_argument("--queries", type=Path, default=Path("data/clinc150/test.jsonl"))
    p.add_argument("--label", default="intent")
    a = p.parse_args()
    try:  # bad input: one file:line:field message before anything is embedded
        repo_qs, queries = load_questions(a.repository), load_questions(a.queries)
        for path, qs in ((a.repository, repo_qs), (a.queries, queries)):
            check_labels(qs, [a.label], [], path)
            unlabelled = [q.id for q in qs if q.labels.get(a.label) is None]
            if unlabelled:  # a question without the label can neither vote nor be scored
                line = line_numbers(path).get(unlabelled[0], 0)
                raise SystemExit(f"error: {path}:{line}: field {a.label!r}: missing ({len(unlabelled)} question(s))")
    except DataValidationError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"repository {a.repository} ({len(repo_qs)}), queries {a.queries} ({len(queries)}), label {a.label}")
    results: list[tuple[str, float, dict[str, float]]] = []
    for name in a.embedders.split(","):
        embedder = MemoEmbedder(Embedder(name))
        with tempfile.TemporaryDirectory() as tmp:
            export(tmp, repo_qs, RetrievalSettings(), [a.label], [], {"weighting": "similarity"}, embedder)
            embedder.encode([q.question for q in queries])
            per_q = embedder.seconds / embedder.embedded
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
