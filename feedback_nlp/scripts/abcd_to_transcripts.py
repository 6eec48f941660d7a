"""Convert ABCD (asappresearch/abcd, MIT) conversations into transcript JSONL for SeaCat (002 §2).

    python -m feedback_nlp.scripts.abcd_to_transcripts [--src ../shared/data/abcd_sample/abcd_sample.json] \
        [--out data/abcd/transcripts.jsonl] [--label flow|subflow]

Why: ABCD is real e-commerce customer <-> agent chat labelled with its flow (10) / subflow
(55) -- a public analogue of the paper's product/service labels. Only the 3-conversation
sample is stored here, so this is for the loader and a smoke run; the converter reads the
full abcd_v1.1.json too (a dict of splits). `action` turns (system events) are dropped;
consecutive turns of one speaker stay separate turns.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from feedback_nlp.core.io import atomic_write_jsonl

DEFAULT_SRC = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "abcd_sample" / "abcd_sample.json"


def convert(conversations: list[dict[str, Any]], label: str = "flow") -> list[dict[str, Any]]:
    out = []
    for c in conversations:
        turns = [
            {"speaker": spk, "text": text.strip()}
            for spk, text in c["original"]
            if spk in ("customer", "agent") and text.strip()
        ]
        if turns:
            out.append(
                {
                    "id": f"abcd-{c['convo_id']}",
                    "turns": turns,
                    "label": c["scenario"][label],
                    "flow": c["scenario"]["flow"],
                    "subflow": c["scenario"]["subflow"],
                }
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, default=DEFAULT_SRC)
    p.add_argument("--out", type=Path, default=Path("data/abcd/transcripts.jsonl"))
    p.add_argument("--label", choices=("flow", "subflow"), default="flow")
    a = p.parse_args(argv)
    if not a.src.is_file():
        print(f"error: {a.src} not found", file=sys.stderr)
        return 2
    data = json.loads(a.src.read_text(encoding="utf-8"))
    conversations = data if isinstance(data, list) else [c for split in data.values() for c in split]
    rows = convert(conversations, a.label)
    print(f"{atomic_write_jsonl(a.out, rows)}: {len(rows)} transcripts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
