"""Benchmark: tie-aware top-100 parity with rank_bm25.BM25Okapi (the paper's library).

    python -m bench.universal_model_parity                 # 100K questions, 100 queries
    python -m bench.universal_model_parity --size 20000 --queries 300

All rank the same grown CLINC150 repository (bench/universal_model_corpus.py) for real
CLINC150 test queries: rank-bm25's BM25Okapi (~10 q/s at 100K, so few queries), the
reference backend (bm25s `robertson`, reference_index.py) and the repository's compiled
engine with BM25Okapi weights (numba_bm25.py, variant `okapi`: the same kernel that serves
the default Lucene weights). A query agrees when the backend's top-K is a valid top-K of
rank-bm25's scores (text.same_top_k: ties may order differently). Also prints the speeds
and their ratio to rank-bm25. Goal: >= 99% of queries.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.universal_model_corpus import grow, load_texts
from feedback_nlp.universal_model.numba_bm25 import NumbaBM25
from feedback_nlp.universal_model.reference_index import ReferenceBM25
from feedback_nlp.universal_model.text import same_top_k, tokenize


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=100_000)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--queries", type=int, default=100)
    a = p.parse_args()
    from rank_bm25 import BM25Okapi

    seed, queries, source = load_texts()
    docs = grow(seed, a.size)
    queries = queries[:: max(1, len(queries) // a.queries)][: a.queries]
    print(f"repository: {a.size} questions from {source}; {len(queries)} real queries; K={a.k}", flush=True)
    ref = BM25Okapi([tokenize(d) for d in docs])
    backends = {
        "reference backend (bm25s robertson)": ReferenceBM25(),
        "compiled engine, okapi": NumbaBM25(variant="okapi"),
    }
    for index in backends.values():
        index.add(np.arange(len(docs)), docs)
        index.search(queries[:1], a.k)  # index build (and compilation) outside the timing
    t = time.perf_counter()
    ref_scores = [ref.get_scores(tokenize(q)) for q in queries]
    ref_s = time.perf_counter() - t
    negative = sum(v < 0 for v in ref.idf.values())
    print(f"rank-bm25 BM25Okapi: {len(queries) / ref_s:.1f} q/s; terms with a negative BM25Okapi idf: {negative}")
    for name, index in backends.items():
        t = time.perf_counter()
        hits = index.search(queries, a.k)
        ours_s = time.perf_counter() - t
        same = [same_top_k(s, keys, a.k) for s, (keys, _) in zip(ref_scores, hits)]
        print(
            f"{name}: tie-aware top-{a.k} parity {100 * np.mean(same):.1f}% of {len(same)} queries "
            f"(goal >= 99%); {len(queries) / ours_s:.1f} q/s ({ref_s / ours_s:.0f}x rank-bm25)"
        )


if __name__ == "__main__":
    main()
