"""Build the question repository (002 §3.1): SeaCat tags each transcript's main question.

    python -m feedback_nlp.scripts.build_question_repository --transcripts data/demo/transcripts.jsonl \
        --export exports/seacat_demo --out data/demo/repository.jsonl [--rule rule2]
    python -m feedback_nlp.scripts.build_question_repository --transcripts ... \
        --checkpoint outputs/seacat_demo/<run>/checkpoints/last.ckpt ...

Writes question JSONL (id, question, <label field>, handle_time) -- the universal model's
repository format (feedback_nlp/cli/repo.py repository.path=...). Input is validated
first (file:line:field errors); a progress bar shows the tagging.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transcripts", required=True, help="transcript JSONL")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--export", help="SeaCat export directory (export_for_serving)")
    src.add_argument("--checkpoint", help="SeaCat Lightning checkpoint (.ckpt)")
    p.add_argument("--out", required=True, help="question JSONL to write")
    p.add_argument("--rule", choices=("rule1", "rule2"), default="rule2", help="002 §2.4 (default: rule2)")
    p.add_argument("--label-field", default="product", help="field name for the transcript label")
    p.add_argument(
        "--field-map", default=None, help='JSON object: schema field -> source field, e.g. {"turns": "dialog"}'
    )
    p.add_argument("--batch-size", type=int, default=16)
    a = p.parse_args(argv)

    from feedback_nlp.core.errors import DataValidationError
    from feedback_nlp.core.model_factory import ModelNotAvailableError
    from feedback_nlp.core.records import load_records
    from feedback_nlp.lightning_modules.seacat_serving import SeaCatPredictor, load_predictor_from_checkpoint
    from feedback_nlp.universal_model.question_repository import extract_questions, save_questions

    try:
        transcripts = load_records(a.transcripts, "transcript", json.loads(a.field_map) if a.field_map else None)
        predictor = (
            SeaCatPredictor.load(Path(a.export), a.batch_size)
            if a.export
            else load_predictor_from_checkpoint(a.checkpoint, a.batch_size)
        )
    except (DataValidationError, ModelNotAvailableError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    questions = extract_questions(transcripts, predictor, a.rule, a.label_field, progress=True)
    path = save_questions(a.out, questions)
    print(f"{path}: {len(questions)} questions from {len(transcripts)} transcripts ({a.rule})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
