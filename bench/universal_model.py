"""Benchmark: BM25 search of the question repository (002 §3.2, K = 100), tantivy vs bm25s.

    python -m bench.universal_model                 # 100K questions, 1 and 2 threads
    python -m bench.universal_model --size 1000000 --queries 1000

Reference (same process, same corpus, same queries): bm25s with its numba backend
(`backend_selection="numba"`, pip install -r bench/requirements.txt), the fastest BM25
library we know of, on `n_threads` = 1 and 2. Ours: TantivyBM25.search (a batch of queries,
per-query term queries built without the parser, results in deterministic score-then-key
order with tie widening, keys from a fast field), with threads = 1 and 2. Prints q/s and the
ratio; also the build time of each. Every figure is measured in this run.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from bench.universal_model_corpus import grow, load_texts
from feedback_nlp.universal_model.tantivy_index import TantivyBM25
from feedback_nlp.universal_model.text import tokenize


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=100_000)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--queries", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=3, help="best of N timings (shared machines are noisy)")
    a = p.parse_args()
    import bm25s

    seed, queries, source = load_texts()
    docs = grow(seed, a.size)
    queries = (queries * (a.queries // len(queries) + 1))[: a.queries]
    print(f"repository: {a.size} questions from {source}; {len(queries)} real queries; K={a.k}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        ours = TantivyBM25(tmp)
        ours.add(range(len(docs)), docs)
        ours.commit()
        ours_build = time.perf_counter() - t
        t = time.perf_counter()
        ref = bm25s.BM25(method="lucene", k1=1.2, b=0.75, backend="numba")
        ref.index([tokenize(d) for d in docs], show_progress=False)
        ref_build = time.perf_counter() - t
        qtok = [tokenize(q) for q in queries]
        ref.retrieve(qtok[:20], k=a.k, show_progress=False, backend_selection="numba", n_threads=1)  # JIT warm-up
        ours.search(queries[:20], a.k)
        print(f"build: tantivy {ours_build:.2f} s, bm25s {ref_build:.2f} s (tokenised in Python)", flush=True)
        for threads in (1, 2):
            ours.threads = threads
            best_ours = best_ref = float("inf")
            for _ in range(a.repeats):
                t = time.perf_counter()
                ref.retrieve(qtok, k=a.k, show_progress=False, backend_selection="numba", n_threads=threads)
                best_ref = min(best_ref, time.perf_counter() - t)
                t = time.perf_counter()
                ours.search(queries, a.k)
                best_ours = min(best_ours, time.perf_counter() - t)
            qo, qr = len(queries) / best_ours, len(queries) / best_ref
            print(
                f"{threads} thread(s): tantivy {qo:8.0f} q/s   bm25s-numba {qr:8.0f} q/s   "
                f"ratio {qo / qr:.2f}x (goal >= 1.0x)",
                flush=True,
            )


if __name__ == "__main__":
    main()
