"""002 §3.1: the question repository -- each transcript's main question with its labels.

Why: the universal model needs no training because the repository carries the knowledge:
SeaCat (002 §2) tags the main question of every historical transcript, and the question is
stored with whatever labels that contact had (product/service, handle time, ...). Records
are plain question JSONL (`id`, `question`, one field per label), the same format the
evaluation reads, so a repository can also come from any other source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from feedback_nlp.core.io import atomic_write_jsonl
from feedback_nlp.core.records import Question, Transcript, load_records
from feedback_nlp.datamodules.splits import hash_unit


def load_questions(path: str | Path, field_map: Mapping[str, str] | None = None) -> list[Question]:
    """Validated question records (file:line:field errors); every non-id/question field is a label."""
    return load_records(path, "question", dict(field_map or {}) or None)


def question_rows(questions: Iterable[Question]) -> list[dict[str, Any]]:
    return [{"id": q.id, "question": q.question, **q.labels} for q in questions]


def save_questions(path: str | Path, questions: Iterable[Question]) -> Path:
    return atomic_write_jsonl(path, question_rows(questions))


def transcript_labels(t: Transcript, label_field: str = "product") -> dict[str, Any]:
    """The labels a contact carries into the repository (002 §2.1: product/service, handle time)."""
    labels: dict[str, Any] = {label_field: t.label}
    if t.handle_time is not None:
        labels["handle_time"] = t.handle_time
    return labels


def extract_questions(
    transcripts: Sequence[Transcript],
    predictor: Any,
    rule: str = "rule2",
    label_field: str = "product",
    progress: bool = True,
) -> list[Question]:
    """002 §3.1: run SeaCat over transcripts, keep each main question (rule 1 or 2) + labels.

    `predictor` is a SeaCatPredictor (lightning_modules/seacat_serving.py). Transcripts
    without a customer sentence yield no question.
    """
    rows = predictor.predict(list(transcripts), progress=progress)
    out = []
    for t, row in zip(transcripts, rows):
        question = row["main_question"][rule]
        if question:
            out.append(Question(f"q-{t.id}", question, transcript_labels(t, label_field)))
    return out


def split_questions(
    questions: Sequence[Question], test_fraction: float = 0.2, seed: int = 0
) -> tuple[list[Question], list[Question]]:
    """(repository, queries) by a seeded hash of the id: stable when the file grows."""
    repo: list[Question] = []
    queries: list[Question] = []
    for q in questions:
        (queries if hash_unit(q.id, seed) < test_fraction else repo).append(q)
    return repo, queries


def subsample(questions: Sequence[Question], n: int, seed: int = 0) -> list[Question]:
    """The `n` questions with the smallest seeded hash: nested across sizes (the 3K repository
    is part of the 6K one), as when a repository grows over time (002 Table 1)."""
    if n >= len(questions):
        return list(questions)
    ranked = sorted(questions, key=lambda q: hash_unit(q.id, seed + 104729))
    return ranked[:n]
