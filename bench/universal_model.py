"""Benchmark: universal-model retrieval (002 §3.2, K = 100) -- our BM25 index vs rank-bm25.

    python bench/universal_model.py                       # 100K questions, K = 100
    python bench/universal_model.py --size 1000000 --ref-queries 20

Both run in this process on the same repository and queries: rank_bm25.BM25Okapi (the
reference) and feedback_nlp.universal_model.bm25.BM25Index with the same tokenizer. Prints queries/s of
each, their ratio, tie-aware top-K parity on the queries the reference scored, build times
and the cost of adding questions (ours: incremental; rank-bm25: rebuild).

Repository: the real CLINC150 (+ DSTC11) queries from ../shared/data (or the test fixture),
grown to --size by copies with one word replaced by a random word of the corpus, so the
vocabulary and length distribution stay those of real customer questions. Queries: the
CLINC150 test split (never in the repository).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from feedback_nlp.universal_model.bm25 import BM25Index, same_top_k, tokenize

SHARED = ROOT.parent / "shared" / "data"


def load_texts() -> tuple[list[str], list[str], str]:
    """(repository seed texts, query texts, source description)."""
    clinc = SHARED / "clinc150" / "data_full.json"
    if clinc.is_file():
        data = json.loads(clinc.read_text(encoding="utf-8"))
        repo = [t for split in ("train", "val", "oos_train", "oos_val", "oos_test") for t, _ in data[split]]
        for f in sorted((SHARED / "dstc11_natcs").glob("*.jsonl")):
            repo += [json.loads(x)["utterance"] for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
        return repo, [t for t, _ in data["test"]], "CLINC150 + DSTC11 (../shared/data)"
    rows = [json.loads(x) for x in (ROOT / "tests/fixtures/clinc150_sample.jsonl").read_text().splitlines()]
    return ([r["question"] for r in rows if r["split"] == "train"],
            [r["question"] for r in rows if r["split"] == "test"], "tests/fixtures/clinc150_sample.jsonl")


def grow(seed_docs: list[list[str]], size: int, rng: random.Random) -> list[list[str]]:
    vocab = sorted({w for d in seed_docs for w in d})
    out = [list(d) for d in seed_docs[:size]]
    while len(out) < size:
        d = list(rng.choice(seed_docs))
        if d:
            d[rng.randrange(len(d))] = rng.choice(vocab)
        out.append(d)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=100_000, help="repository questions (default 100K)")
    p.add_argument("--k", type=int, default=100, help="top-K (002 §3.2: 100)")
    p.add_argument("--queries", type=int, default=2000, help="queries timed for our index")
    p.add_argument("--ref-queries", type=int, default=60, help="queries timed for rank-bm25 (slow)")
    p.add_argument("--add", type=int, default=1000, help="questions added after the build")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    from rank_bm25 import BM25Okapi

    rng = random.Random(a.seed)
    seed_texts, query_texts, source = load_texts()
    corpus = grow([tokenize(t) for t in seed_texts], a.size + a.add, rng)
    base, extra = corpus[:a.size], corpus[a.size:]
    queries = [tokenize(q) for q in query_texts]
    rng.shuffle(queries)
    print(f"repository: {a.size} questions from {source}; {len(queries)} real queries; K={a.k}", flush=True)

    t = time.perf_counter(); ref = BM25Okapi(base); ref_build = time.perf_counter() - t
    t = time.perf_counter(); ours = BM25Index.from_texts(base); ours.top_k(queries[0], a.k)
    ours_build = time.perf_counter() - t

    ref_q = queries[:a.ref_queries]
    t = time.perf_counter()
    ref_scores = [ref.get_scores(q) for q in ref_q]
    ref_top = [np.argsort(s)[::-1][:a.k] for s in ref_scores]
    ref_s = (time.perf_counter() - t) / len(ref_q)
    our_q = (queries * (a.queries // len(queries) + 1))[:a.queries]
    t = time.perf_counter()
    for q in our_q:
        ours.top_k(q, a.k)
    ours_s = (time.perf_counter() - t) / len(our_q)
    parity = np.mean([same_top_k(s, ours.top_k(q, a.k)[0], a.k) for q, s in zip(ref_q, ref_scores)])
    exact_sets = np.mean([set(r[s[r] != 0].tolist()) == set(ours.top_k(q, a.k)[0].tolist())
                          for q, s, r in zip(ref_q, ref_scores, ref_top)])

    t = time.perf_counter(); ours.add(extra); ours.top_k(queries[0], a.k); ours_add = time.perf_counter() - t
    t = time.perf_counter(); ref2 = BM25Okapi(base + extra); ref_add = time.perf_counter() - t
    parity_after = np.mean([same_top_k(ref2.get_scores(q), ours.top_k(q, a.k)[0], a.k) for q in ref_q[:20]])

    print(f"rank-bm25 BM25Okapi : {1 / ref_s:10.1f} queries/s  ({len(ref_q)} queries), build {ref_build:.2f} s")
    print(f"ours (BM25Index)    : {1 / ours_s:10.1f} queries/s  ({len(our_q)} queries), build {ours_build:.2f} s")
    print(f"speed-up            : {ref_s / ours_s:10.1f}x   (goal >= 100x)")
    print(f"top-{a.k} parity     : {100 * parity:.1f}% of queries (tie-aware; goal >= 99%); identical sets "
          f"{100 * exact_sets:.1f}%")
    print(f"add {a.add} questions : ours {ours_add:.3f} s (incremental) vs rank-bm25 rebuild {ref_add:.2f} s; "
          f"parity after add {100 * parity_after:.1f}% (20 queries)")


if __name__ == "__main__":
    main()
