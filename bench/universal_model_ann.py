"""Benchmark: dense ANN (faiss IVF, removable by id) vs exact brute force: recall@100 and speed.

    python -m bench.universal_model_ann                    # 200K vectors, dim 384
    python -m bench.universal_model_ann --size 1000000     # the issue's 1M (minutes to train)

Vectors: real packaged-MiniLM embeddings of --seeds CLINC150/DSTC11 questions, grown to
--size by Gaussian perturbation (noise norm --noise) and renormalised, so neighbourhoods are
those of real question embeddings around many near-duplicates, as in a large repository;
queries: embeddings of real CLINC150 test questions. Reference: the exact IndexFlatIP
(brute force) in the same run, 1 thread. For each nprobe: recall@100 against the exact top
100 and the speed ratio. Goal: recall >= 0.99 at >= 10x brute force.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.universal_model_corpus import load_texts
from feedback_nlp.universal_model.vector_index import FaissVectors


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=200_000)
    p.add_argument("--seeds", type=int, default=4000)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--noise", type=float, default=0.5, help="norm of the perturbation of a seed embedding")
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--nprobe", default="8,16,32,64,128")
    a = p.parse_args()
    from feedback_nlp.universal_model.embedder import Embedder

    seed_texts, query_texts, source = load_texts()
    rng = np.random.default_rng(0)
    emb = Embedder("packaged:all-MiniLM-L6-v2")
    t = time.perf_counter()
    seeds = emb.encode([seed_texts[i] for i in rng.choice(len(seed_texts), a.seeds, replace=False)])
    queries = emb.encode(query_texts[:: max(1, len(query_texts) // a.queries)][: a.queries])
    print(f"embedded {a.seeds + len(queries)} real questions ({source}) in {time.perf_counter() - t:.0f} s", flush=True)
    dim = seeds.shape[1]
    vecs = seeds[rng.integers(0, a.seeds, a.size)]
    vecs = vecs + rng.normal(size=vecs.shape).astype(np.float32) * (a.noise / np.sqrt(dim))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    keys = np.arange(a.size, dtype=np.int64)

    exact = FaissVectors(dim, exact_max=a.size)
    exact.rebuild(keys, vecs)
    t = time.perf_counter()
    truth = exact.index.search(queries, a.k)[1]
    brute_s = time.perf_counter() - t
    t = time.perf_counter()
    ann = FaissVectors(dim, exact_max=1)
    ann.rebuild(keys, vecs)
    print(
        f"{a.size} vectors, dim {dim}: IVF with {ann.index.nlist} lists trained and filled in "
        f"{time.perf_counter() - t:.1f} s; brute force {len(queries) / brute_s:.0f} q/s",
        flush=True,
    )
    for nprobe in (int(x) for x in a.nprobe.split(",")):
        ann.index.nprobe = nprobe
        t = time.perf_counter()
        got = ann.index.search(queries, a.k)[1]
        ann_s = time.perf_counter() - t
        recall = np.mean([len(set(g) & set(w)) / a.k for g, w in zip(got, truth)])
        print(
            f"nprobe {nprobe:4d}: recall@{a.k} {recall:.4f}  {len(queries) / ann_s:8.0f} q/s  "
            f"{brute_s / ann_s:6.1f}x brute force  (goal: recall >= 0.99 at >= 10x)",
            flush=True,
        )


if __name__ == "__main__":
    main()
