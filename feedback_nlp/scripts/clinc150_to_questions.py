"""Convert CLINC150 (clinc/oos-eval, CC BY 3.0) into question-repository JSONL (002 §3.1).

    python -m feedback_nlp.scripts.clinc150_to_questions [--src ../shared/data/clinc150] [--out data/clinc150]
        [--include-oos]

Why: CLINC150 is the closest public match to the paper's repository -- real customer-style
queries with 150 intent classes (paper: 152 product/service classes), so the universal model
and the Random Forest can be compared on real text. Writes train/val/test.jsonl with fields
id, question, intent, domain; out-of-scope queries are left out unless --include-oos.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from feedback_nlp.core.io import atomic_write_jsonl

DEFAULT_SRC = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "clinc150"


def convert(data: dict, domains: dict[str, list[str]], include_oos: bool = False) -> dict[str, list[dict]]:
    """{split: question rows} from data_full.json's {split: [[text, intent], ...]}."""
    domain_of = {intent: d for d, intents in domains.items() for intent in intents}
    out: dict[str, list[dict]] = {}
    for split in ("train", "val", "test"):
        pairs = list(data[split]) + (list(data.get(f"oos_{split}", [])) if include_oos else [])
        out[split] = [
            {"id": f"clinc-{split}-{i:05d}", "question": text, "intent": intent, "domain": domain_of.get(intent, "oos")}
            for i, (text, intent) in enumerate(pairs)
        ]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, default=DEFAULT_SRC, help="folder with data_full.json and domains.json")
    p.add_argument("--out", type=Path, default=Path("data/clinc150"))
    p.add_argument("--include-oos", action="store_true", help="add the out-of-scope queries (intent 'oos')")
    a = p.parse_args(argv)
    for name in ("data_full.json", "domains.json"):
        if not (a.src / name).is_file():
            print(f"error: {a.src / name} not found (CLINC150 from github.com/clinc/oos-eval)", file=sys.stderr)
            return 2
    data = json.loads((a.src / "data_full.json").read_text(encoding="utf-8"))
    domains = json.loads((a.src / "domains.json").read_text(encoding="utf-8"))
    for split, rows in convert(data, domains, a.include_oos).items():
        path = atomic_write_jsonl(a.out / f"{split}.jsonl", rows)
        print(f"{path}: {len(rows)} questions, {len({r['intent'] for r in rows})} intents")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
