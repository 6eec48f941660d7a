"""CLI: write a reproducible synthetic demo data set for all three systems.

    python -m feedback_nlp.demo_data.generate --out data/demo --seed 0

Why: the training code must be runnable end to end without access to customer data. Each
record kind gets its own random stream derived from the seed, so changing one count does not
change the other files, and the same seed always gives byte-identical files. Files are written
atomically so a crashed run never leaves a half-written file next to good ones.
"""

from __future__ import annotations

import argparse
import random
from datetime import date
from pathlib import Path
from typing import Sequence

from feedback_nlp.core.io import atomic_write_jsonl
from feedback_nlp.demo_data.multilevel_issues import generate_feedback
from feedback_nlp.demo_data.product_safety import generate_claims
from feedback_nlp.demo_data.seacat import generate_transcripts, questions_from_transcripts

FILES = ("feedback.jsonl", "claims.jsonl", "transcripts.jsonl", "questions.jsonl")


def stream(seed: int, kind: str) -> random.Random:
    """An independent, reproducible RNG per record kind (str seeds are hashed stably by random)."""
    return random.Random(f"demo-data:{seed}:{kind}")


def generate_all(
    seed: int = 0,
    n_feedback: int = 1200,
    n_claims: int = 600,
    n_transcripts: int = 800,
    start: date = date(2026, 1, 1),
    months: int = 7,
) -> dict[str, list[dict]]:
    """All records by file name; `n_claims` counts labeled originals (traffic is 3x, plus translations)."""
    transcripts = generate_transcripts(stream(seed, "transcripts"), n_transcripts, start, months)
    return {
        "feedback.jsonl": generate_feedback(stream(seed, "feedback"), n_feedback, start, months),
        "claims.jsonl": generate_claims(stream(seed, "claims"), n_claims, start, months),
        "transcripts.jsonl": transcripts,
        "questions.jsonl": questions_from_transcripts(transcripts),
    }


def write_all(out: str | Path, records: dict[str, list[dict]]) -> dict[str, Path]:
    return {name: atomic_write_jsonl(Path(out) / name, rows) for name, rows in records.items()}


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return n


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Generate synthetic demo data (feedback, claims, transcripts, questions).")
    p.add_argument("--out", default="data/demo", help="output directory (default: data/demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-feedback", type=_positive, default=1200)
    p.add_argument("--n-claims", type=_positive, default=600, help="labeled original claims; traffic is 3x this")
    p.add_argument("--n-transcripts", type=_positive, default=800)
    p.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1), help="first month (YYYY-MM-DD)")
    p.add_argument("--months", type=_positive, default=7, help="number of months the timestamps span")
    a = p.parse_args(argv)
    records = generate_all(a.seed, a.n_feedback, a.n_claims, a.n_transcripts, a.start, a.months)
    paths = write_all(a.out, records)
    for name, path in paths.items():
        print(f"{path}: {len(records[name])} records")
    claims = records["claims.jsonl"]
    labeled = [c for c in claims if c["label"] is not None]
    print(
        f"  claims: {sum('source_id' not in c for c in labeled)} labeled originals "
        f"({sum(c['label'] for c in labeled if 'source_id' not in c)} positive), "
        f"{sum('source_id' in c for c in claims)} translations, {len(claims) - len(labeled)} unlabeled traffic"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
