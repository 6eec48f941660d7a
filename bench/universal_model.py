"""Benchmark: BM25 search of the question repository (002 §3.2, K = 100) against bm25s-numba.

    python -m bench.universal_model                 # 100K questions, 1 and 2 threads
    python -m bench.universal_model --size 1000000 --queries 1000

Reference (same process, same corpus, same queries): bm25s with its numba backend, the
fastest BM25 library we know of, at its best documented configuration: `BM25(method="lucene",
backend="numba")`, queries passed pre-tokenised as token ids (as strings too; the faster of
the two counts), `retrieve(..., backend_selection="numba", n_threads=T)`. Ours: the
repository's default engine, NumbaBM25.search on the raw query strings (tokenising, term
lookup, exact top-K with ties broken by key, all timed), `threads` = T. Best of `--repeats`
interleaved timings per side. Also printed: tantivy (the former default, same queries) and
the share of queries whose top-K equals tantivy's (same BM25). Every figure is from this run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from bench.universal_model_corpus import grow, load_texts
from feedback_nlp.universal_model.numba_bm25 import NumbaBM25
from feedback_nlp.universal_model.text import tokenize


def best(fn, repeats: int) -> float:
    out = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=100_000)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--queries", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=3, help="best of N timings (shared machines are noisy)")
    p.add_argument("--no-tantivy", action="store_true", help="skip the tantivy row (saves its build at 1M)")
    a = p.parse_args()
    import bm25s

    seed, queries, source = load_texts()
    docs = grow(seed, a.size)
    queries = (queries * (a.queries // len(queries) + 1))[: a.queries]
    print(f"repository: {a.size} questions from {source}; {len(queries)} real queries; K={a.k}", flush=True)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start", flush=True)

    t = time.perf_counter()
    ours = NumbaBM25()
    ours.add(np.arange(len(docs)), docs)
    ours.commit()
    ours_build = time.perf_counter() - t
    t = time.perf_counter()
    ref = bm25s.BM25(method="lucene", k1=1.2, b=0.75, backend="numba")
    ref.index([tokenize(d) for d in docs], show_progress=False)
    ref_build = time.perf_counter() - t
    qtok = [tokenize(q) for q in queries]
    qids = [[ref.vocab_dict[w] for w in q if w in ref.vocab_dict] for q in qtok]
    usable = [i for i, q in enumerate(qids) if q]  # bm25s rejects a query with no known token
    queries, qtok, qids = [queries[i] for i in usable], [qtok[i] for i in usable], [qids[i] for i in usable]
    for threads in (1, 2):  # compile / warm up both sides
        ref.retrieve(qtok[:20], k=a.k, show_progress=False, backend_selection="numba", n_threads=threads)
        ref.retrieve(qids[:20], k=a.k, show_progress=False, backend_selection="numba", n_threads=threads)
        ours.threads = threads
        ours.search(queries[:20], a.k)
    print(f"build: ours {ours_build:.2f} s, bm25s {ref_build:.2f} s (both tokenising in Python)", flush=True)

    tantivy = None
    if not a.no_tantivy:
        from feedback_nlp.universal_model.tantivy_index import TantivyBM25

        tmp = tempfile.TemporaryDirectory()
        tantivy = TantivyBM25(tmp.name)
        tantivy.add(range(len(docs)), docs)
        tantivy.commit()
        n = min(300, len(queries))
        same = [
            np.array_equal(x[0], y[0]) and np.allclose(x[1], y[1], rtol=1e-5)
            for x, y in zip(ours.search(queries[:n], a.k), tantivy.search(queries[:n], a.k))
        ]
        print(f"top-{a.k} equal to tantivy's (keys, scores to 1e-5): {100 * np.mean(same):.1f}% of {n} queries")

    for threads in (1, 2):
        ours.threads = threads
        t_ours = t_ref = float("inf")
        for _ in range(a.repeats):
            for form in (qtok, qids):
                t = time.perf_counter()
                ref.retrieve(form, k=a.k, show_progress=False, backend_selection="numba", n_threads=threads)
                t_ref = min(t_ref, time.perf_counter() - t)
            t = time.perf_counter()
            ours.search(queries, a.k)
            t_ours = min(t_ours, time.perf_counter() - t)
        line = (
            f"{threads} thread(s): ours {len(queries) / t_ours:8.0f} q/s   bm25s-numba {len(queries) / t_ref:8.0f} q/s"
            f"   ratio {t_ref / t_ours:.2f}x (goal >= 1.0x)"
        )
        if tantivy is not None:
            tantivy.threads = threads
            t_tan = best(lambda: tantivy.search(queries, a.k), a.repeats)
            line += f"   tantivy {len(queries) / t_tan:6.0f} q/s ({t_ref / t_tan:.2f}x)"
        print(line + f"   load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
