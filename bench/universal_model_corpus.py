"""Shared corpus for the question-repository benchmarks (not a benchmark itself).

Real CLINC150 (+ DSTC11) customer questions from ../shared/data (or the test fixture),
grown to the requested size by copies with one word replaced by a random word of the
corpus, so vocabulary and length distribution stay those of real questions. Queries: the
CLINC150 test split (never in the repository).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from feedback_nlp.universal_model.text import tokenize

ROOT = Path(__file__).resolve().parent.parent
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
    return (
        [r["question"] for r in rows if r["split"] == "train"],
        [r["question"] for r in rows if r["split"] == "test"],
        "tests/fixtures/clinc150_sample.jsonl",
    )


def grow(seed_texts: list[str], size: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    docs = [tokenize(t) for t in seed_texts]
    docs = [d for d in docs if d]
    vocab = sorted({w for d in docs for w in d})
    out = [" ".join(d) for d in docs[:size]]
    while len(out) < size:
        d = list(rng.choice(docs))
        d[rng.randrange(len(d))] = rng.choice(vocab)
        out.append(" ".join(d))
    return out
