"""Benchmark: noisy-negative mining (001 §3.1) -- chunked beta-balls vs a brute-force distance matrix.

    python bench/noisy_negatives.py                      # 20K unlabeled x 2K labeled, dim 384
    python bench/noisy_negatives.py --paper-scale        # 138.3K x 12.7K (001 Table 2); brute force needs ~4 GB

Each measurement runs in its own subprocess on the same synthetic embeddings (a seeded
Gaussian mixture, L2-normalised like Sentence-BERT output, 40% of the labeled set positive as
in 001 §2.1), so peak memory is that process's own high-water mark above its inputs:
- `chunked`: feedback_nlp.datamodules.noisy_negatives.mine_noisy_negatives at --chunk-size, at the full
  size and at a quarter of the unlabeled rows (bounded memory = the same peak at both sizes);
- `brute`: the reference -- the full (unlabeled x positives) and (positives x negatives)
  distance matrices in one piece, then the same ball test; its candidates must be identical;
- `embed`: the packaged all-MiniLM-L6-v2 embedding --embed-sample synthetic claims (~30 words,
  001 Table 2), extrapolated to all unlabeled + labeled texts: the time mining is compared to.
Goal (issue 4): chunked peak memory bounded by the chunk size, and mining time <= 10% of the
time to embed the same texts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PAPER = {"unlabeled": 138_300, "labeled": 12_700}


def embeddings(n: int, labeled: int, dim: int, seed: int):
    """(unlabeled, positives, negatives) float32, unit norm, generated in place chunk by chunk.

    Positives come from 16 of 64 clusters, negatives and unlabeled traffic from the other 48,
    plus 10% of the traffic near-duplicating positives (the comments mining must not take)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(64, dim)).astype(np.float32)

    def block(rows: int, lo: int, hi: int) -> np.ndarray:
        out = np.empty((rows, dim), dtype=np.float32)
        for i in range(0, rows, 8192):
            k = min(8192, rows - i)
            out[i : i + k] = centers[rng.integers(lo, hi, k)] + rng.normal(scale=1.5, size=(k, dim)).astype(np.float32)
            out[i : i + k] /= np.linalg.norm(out[i : i + k], axis=1, keepdims=True)
        return out

    n_pos = int(round(0.4 * labeled))
    pos, neg, unl = block(n_pos, 0, 16), block(labeled - n_pos, 16, 64), block(n, 16, 64)
    # 10% of the unlabeled rows are paraphrases of labeled positives: they must fall inside the balls
    near = rng.choice(n, n // 10, replace=False)
    unl[near] = pos[rng.integers(0, n_pos, len(near))] + rng.normal(scale=0.01, size=(len(near), dim)).astype(
        np.float32
    )
    unl[near] /= np.linalg.norm(unl[near], axis=1, keepdims=True)
    return unl, pos, neg


class PeakRSS:
    """High-water mark of this process's resident memory while the block runs (1 ms sampling)."""

    def __enter__(self) -> PeakRSS:
        import psutil

        self.proc, self.peak, self.stop = psutil.Process(), 0, False
        self.start = self.proc.memory_info().rss
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.stop:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        self.stop = True
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        self.extra_mb = (self.peak - self.start) / 2**20


def phase(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    if args.phase == "embed":
        import random

        from feedback_nlp.datamodules.noisy_negatives import embed_texts
        from feedback_nlp.demo_data.product_safety import generate_claims

        texts = [
            c["text"]
            for c in generate_claims(random.Random(0), args.embed_sample, n_unlabeled=0)
            if "source_id" not in c
        ][: args.embed_sample]
        embed_texts(texts[:8], "packaged:all-MiniLM-L6-v2", None, progress=False)  # load + warm up
        t, c = time.perf_counter(), time.process_time()
        embed_texts(texts, "packaged:all-MiniLM-L6-v2", None, batch_size=64, progress=False)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        return {
            "seconds_per_text": dt / len(texts),
            "cpu_seconds_per_text": dc / len(texts),
            "texts": len(texts),
            "words": float(np.mean([len(x.split()) for x in texts])),
        }
    n = args.unlabeled // 4 if args.phase == "chunked_quarter" else args.unlabeled
    u, p, neg = embeddings(n, args.labeled, args.dim, args.seed)
    from feedback_nlp.datamodules.noisy_negatives import _distances, _prep, mine_noisy_negatives

    with PeakRSS() as mem:
        t, c = time.perf_counter(), time.process_time()
        if args.phase.startswith("chunked"):
            cand = mine_noisy_negatives(u, p, neg, args.beta, chunk_size=args.chunk_size).candidates
        else:  # brute force: whole distance matrices at once, same formula
            U, P, N = (torch.from_numpy(x) for x in (u, p, neg))
            _, p_sq = _prep(P, "euclidean")
            radii = args.beta * _distances(P, p_sq, N, _prep(N, "euclidean")[1], "euclidean").amin(dim=1)
            d = _distances(U, _prep(U, "euclidean")[1], P, p_sq, "euclidean")
            cand = torch.nonzero((d > radii.unsqueeze(0)).all(dim=1)).flatten().numpy()
            del d
        dt, dc = time.perf_counter() - t, time.process_time() - c
    return {
        "seconds": dt,
        "cpu_seconds": dc,
        "peak_extra_mb": mem.extra_mb,
        "rows": n,
        "candidates": int(len(cand)),
        "checksum": int(np.sum(cand.astype(np.int64) * 2654435761 % 1000003)),
    }


def run_phase(name: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--phase", name] + [
        f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("phase", "paper_scale", "skip_brute")
    ]
    # large blocks via mmap: freed memory goes back to the OS and every new buffer shows in RSS,
    # so a phase cannot look cheap by reusing heap left over from generating its inputs
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "MALLOC_MMAP_THRESHOLD_": "65536",
    }
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"phase {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--unlabeled", type=int, default=20_000)
    ap.add_argument("--labeled", type=int, default=2_000)
    ap.add_argument("--dim", type=int, default=384, help="384: MiniLM; 768: multilingual mpnet / mBERT")
    ap.add_argument("--chunk-size", type=int, default=2048)
    ap.add_argument("--beta", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--embed-sample", type=int, default=256, help="texts actually embedded to time the encoder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--paper-scale", action="store_true", help="138.3K unlabeled x 12.7K labeled (001 Table 2)")
    ap.add_argument("--skip-brute", action="store_true", help="skip the brute-force reference (memory)")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(phase(args)))
        return
    if args.paper_scale:
        args.unlabeled, args.labeled = PAPER["unlabeled"], PAPER["labeled"]
    pos = int(round(0.4 * args.labeled))
    print(
        f"noisy-negative mining: {args.unlabeled:,} unlabeled x {args.labeled:,} labeled ({pos:,} positives), "
        f"dim {args.dim}, beta {args.beta}, chunk {args.chunk_size}, {args.threads} thread(s)"
    )
    res = {"chunked": run_phase("chunked", args), "chunked_quarter": run_phase("chunked_quarter", args)}
    if not args.skip_brute:
        res["brute"] = run_phase("brute", args)
    emb = run_phase("embed", args)
    n_texts = args.unlabeled + args.labeled
    embed_s, embed_cpu = emb["seconds_per_text"] * n_texts, emb["cpu_seconds_per_text"] * n_texts
    print(f"{'method':<20}{'rows':>9}{'wall s':>9}{'cpu s':>9}{'peak extra MB':>15}{'candidates':>12}")
    for name, r in res.items():
        print(
            f"{name:<20}{r['rows']:>9,}{r['seconds']:>9.2f}{r['cpu_seconds']:>9.2f}{r['peak_extra_mb']:>15.1f}"
            f"{r['candidates']:>12,}"
        )
    block_mb = args.chunk_size**2 * 4 / 2**20
    c, q = res["chunked"], res["chunked_quarter"]
    print(
        f"chunk block ({args.chunk_size}^2 float32): {block_mb:.1f} MB; chunked peak at full / quarter size: "
        f"{c['peak_extra_mb']:.1f} / {q['peak_extra_mb']:.1f} MB (bounded: does not grow with the rows)"
    )
    if "brute" in res:
        b = res["brute"]
        same = (b["candidates"], b["checksum"]) == (c["candidates"], c["checksum"])
        print(
            f"brute force / chunked: memory x{b['peak_extra_mb'] / max(c['peak_extra_mb'], 1e-9):.1f}, "
            f"time x{b['seconds'] / c['seconds']:.2f}; identical candidates: {same}"
        )
    print(
        f"embedding (packaged all-MiniLM-L6-v2, {emb['texts']} texts of ~{emb['words']:.0f} words): "
        f"{1 / emb['seconds_per_text']:.0f} texts/s wall, {1 / emb['cpu_seconds_per_text']:.0f} texts/s cpu -> "
        f"{embed_s:,.0f} s wall / {embed_cpu:,.0f} s cpu for all {n_texts:,} texts"
    )
    ratio, ratio_cpu = c["seconds"] / embed_s, c["cpu_seconds"] / embed_cpu
    print(
        f"mining time / embedding time: {ratio:.4f} wall, {ratio_cpu:.4f} cpu ({100 * max(ratio, ratio_cpu):.2f}% "
        f"at most; goal <= 10%: {'met' if max(ratio, ratio_cpu) <= 0.10 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
