"""Convert DSTC11 Track 2 (NatCS) intent-labelled customer utterances (CDLA-Permissive 2.0).

    python -m feedback_nlp.scripts.dstc11_to_questions [--src ../shared/data/dstc11_natcs] [--out data/dstc11]

Why: these are real customer turns from human customer-agent conversations (insurance,
banking, finance) in which the customer states the intent -- exactly what SeaCat's main
question is (002 §2.4). Writes, per domain file:
  questions-<domain>.jsonl    id, question, intent, domain   (question repository / queries)
  transcripts-<domain>.jsonl  one customer turn per transcript, label = intent and
                              main_question = the utterance  (validates through the transcript loader;
                              the full dialogues are not in the stored snapshot)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from feedback_nlp.core.io import atomic_write_jsonl

DEFAULT_SRC = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "dstc11_natcs"
FILES = {
    "insurance": "development.test-utterances.jsonl",
    "banking": "test-banking.test-utterances.jsonl",
    "finance": "test-finance.test-utterances.jsonl",
}


def to_questions(rows: list[dict], domain: str) -> list[dict]:
    return [
        {"id": r["utterance_id"], "question": r["utterance"], "intent": r["intent"], "domain": domain}
        for r in rows
        if str(r.get("utterance", "")).strip()
    ]


def to_transcripts(rows: list[dict]) -> list[dict]:
    return [
        {
            "id": r["utterance_id"],
            "turns": [{"speaker": "customer", "text": r["utterance"]}],
            "label": r["intent"],
            "main_question": r["utterance"],
        }
        for r in rows
        if str(r.get("utterance", "")).strip()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, default=DEFAULT_SRC)
    p.add_argument("--out", type=Path, default=Path("data/dstc11"))
    a = p.parse_args(argv)
    for domain, name in FILES.items():
        path = a.src / name
        if not path.is_file():
            print(f"error: {path} not found", file=sys.stderr)
            return 2
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        q = atomic_write_jsonl(a.out / f"questions-{domain}.jsonl", to_questions(rows, domain))
        t = atomic_write_jsonl(a.out / f"transcripts-{domain}.jsonl", to_transcripts(rows))
        print(f"{q}, {t}: {len(rows)} utterances, {len({r['intent'] for r in rows})} intents")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
