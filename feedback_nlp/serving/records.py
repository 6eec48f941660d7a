"""The input contract of serving and predict.py: what a record must hold to be scored.

Why separate from the training schemas (feedback_nlp/core/records.py): a scoring request carries only
what the model reads. A claim needs `text` (optional `language`, `id`), feedback needs `text`,
a transcript needs `turns`, a question needs `question` (or `text`); no training label, date or
annotation is required, and other fields are ignored. The server (HTTP 422/413) and predict.py
(file:line:field) report problems from this one decoder, so both accept exactly the same records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

RECORD_KINDS = ("claim", "feedback", "transcript", "question")
SPEAKERS = ("customer", "agent")


@dataclass(frozen=True)
class TextRecord:
    """A claim (001) or a feedback (000): one text to score."""

    id: str
    text: str
    language: str | None = None


@dataclass(frozen=True)
class Turn:
    speaker: str
    text: str


@dataclass(frozen=True)
class TranscriptRecord:
    """A customer-agent transcript (002 §2.1) without its label."""

    id: str
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class QuestionRecord:
    """A question for the universal model (002 §3)."""

    id: str
    question: str

    @property
    def text(self) -> str:
        return self.question


@dataclass(frozen=True)
class RecordProblem:
    """One bad field of one record; `index` is the record's position in the request (0-based)
    or its line in a file (1-based, see `where`)."""

    index: int
    field: str
    message: str
    too_large: bool = False  # over a configured limit (HTTP 413), not malformed (422)

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


class RequestError(ValueError):
    """A request (or input file) that cannot be scored; `status` is its HTTP status code."""

    def __init__(self, problems: Sequence[RecordProblem], status: int | None = None):
        self.problems = list(problems)
        self.status = status or (413 if any(p.too_large for p in self.problems) else 422)
        super().__init__("; ".join(f"record {p.index}: field '{p.field}': {p.message}" for p in self.problems[:20]))


@dataclass(frozen=True)
class Limits:
    """Per-request limits: records per request and characters per text (None: unlimited).

    Args:
        max_records: Records per request (over it: HTTP 413; null: unlimited).
        max_chars: Characters per text (over it: HTTP 413; null: unlimited).
    """

    max_records: int | None = None
    max_chars: int | None = None


class _Bad(Exception):
    def __init__(self, field: str, message: str, too_large: bool = False):
        self.field, self.message, self.too_large = field, message, too_large


def _id(obj: Mapping[str, Any], default: str) -> str:
    if obj.get("id") is None:
        return default
    v = obj["id"]
    if isinstance(v, bool) or not isinstance(v, (str, int)) or (isinstance(v, str) and not v.strip()):
        raise _Bad("id", f"expected a non-empty string or integer, got {v!r}")
    return str(v)


def _text(obj: Mapping[str, Any], name: str, max_chars: int | None) -> str:
    if name not in obj or obj[name] is None:
        raise _Bad(name, "missing required field")
    v = obj[name]
    if not isinstance(v, str):
        raise _Bad(name, f"expected a string, got {type(v).__name__}")
    if not v.strip():
        raise _Bad(name, "empty text")
    if max_chars is not None and len(v) > max_chars:
        raise _Bad(name, f"{len(v)} characters, over the limit of {max_chars}", too_large=True)
    return v


def _claim(obj: Mapping[str, Any], rid: str, max_chars: int | None) -> TextRecord:
    lang = obj.get("language")
    if lang is not None and not isinstance(lang, str):
        raise _Bad("language", f"expected a string or null, got {type(lang).__name__}")
    return TextRecord(rid, _text(obj, "text", max_chars), lang)


def _feedback(obj: Mapping[str, Any], rid: str, max_chars: int | None) -> TextRecord:
    return TextRecord(rid, _text(obj, "text", max_chars))


def _transcript(obj: Mapping[str, Any], rid: str, max_chars: int | None) -> TranscriptRecord:
    raw = obj.get("turns")
    if not isinstance(raw, list) or not raw:
        raise _Bad("turns", "expected a non-empty list of {speaker, text}")
    turns = []
    for i, t in enumerate(raw):
        if not isinstance(t, Mapping):
            raise _Bad(f"turns[{i}]", "expected an object with speaker and text")
        if t.get("speaker") not in SPEAKERS:
            raise _Bad(f"turns[{i}].speaker", f"unknown speaker {t.get('speaker')!r} (expected customer or agent)")
        try:
            turns.append(Turn(t["speaker"], _text(t, "text", max_chars)))
        except _Bad as e:
            raise _Bad(f"turns[{i}].{e.field}", e.message, e.too_large) from None
    return TranscriptRecord(rid, tuple(turns))


def _question(obj: Mapping[str, Any], rid: str, max_chars: int | None) -> QuestionRecord:
    name = "question" if "question" in obj or "text" not in obj else "text"
    return QuestionRecord(rid, _text(obj, name, max_chars))


DECODERS: dict[str, Callable[[Mapping[str, Any], str, int | None], Any]] = {
    "claim": _claim,
    "feedback": _feedback,
    "transcript": _transcript,
    "question": _question,
}


def check_kind(kind: Any) -> str:
    if kind not in DECODERS:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {', '.join(RECORD_KINDS)}")
    return str(kind)


def decode_record(
    obj: Any,
    kind: str,
    index: int,
    default_id: str,
    max_chars: int | None = None,
    field_map: Mapping[str, str] | None = None,
) -> Any:
    """One JSON value -> a record of `kind`; raises RequestError naming `index` and the field."""
    if not isinstance(obj, Mapping):
        raise RequestError([RecordProblem(index, "<record>", f"expected a JSON object, got {type(obj).__name__}")])
    if field_map:
        obj = {**obj, **{dst: obj[src] for dst, src in field_map.items() if src in obj}}
    try:
        return DECODERS[kind](obj, _id(obj, default_id), max_chars)
    except _Bad as e:
        raise RequestError([RecordProblem(index, e.field, e.message, e.too_large)]) from None


def decode_request(payload: Any, kind: str, limits: Limits = Limits()) -> list[Any]:
    """A request body (a JSON list of records) -> records, or RequestError with every problem.

    A record without `id` gets its position ("0", "1", ...), so every row can be matched; two
    records with the same id are refused (their rows could not be told apart).
    """
    check_kind(kind)
    if isinstance(payload, Mapping) and isinstance(payload.get("records"), list):
        payload = payload["records"]
    if not isinstance(payload, list):
        raise RequestError(
            [RecordProblem(-1, "<body>", "expected a JSON list of records (or an object with a 'records' list)")]
        )
    if not payload:
        raise RequestError([RecordProblem(-1, "<body>", "no records")])
    if limits.max_records is not None and len(payload) > limits.max_records:
        raise RequestError(
            [
                RecordProblem(
                    -1, "<body>", f"{len(payload)} records, over the limit of {limits.max_records} per request", True
                )
            ]
        )
    records: list[Any] = []
    problems: list[RecordProblem] = []
    seen: dict[str, int] = {}
    for i, obj in enumerate(payload):
        try:
            rec = decode_record(obj, kind, i, str(i), limits.max_chars)
        except RequestError as e:
            problems += e.problems
            continue
        if rec.id in seen:
            problems.append(RecordProblem(i, "id", f"duplicate id {rec.id!r} (first at record {seen[rec.id]})"))
            continue
        seen[rec.id] = i
        records.append(rec)
    if problems:
        raise RequestError(problems)
    return records


@dataclass(frozen=True)
class LineProblem:
    path: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: field '{self.field}': {self.message}"


def iter_jsonl(
    path: str | Path, kind: str, field_map: Mapping[str, str] | None = None, max_chars: int | None = None
) -> Iterator[Any]:
    """Stream a JSONL file: yields records or LineProblems, one line at a time.

    Memory is flat in the number of lines, so ids are not checked for duplicates across the file
    (that would keep every id): output rows follow the input lines, one per valid line, and a
    record without `id` gets its line number.
    """
    check_kind(kind)
    path = Path(path)
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                yield LineProblem(str(path), lineno, "<line>", f"not valid UTF-8 (byte offset {e.start})")
                continue
            except json.JSONDecodeError as e:
                yield LineProblem(str(path), lineno, "<line>", f"invalid JSON: {e.msg} at column {e.colno}")
                continue
            try:
                yield decode_record(obj, kind, lineno, str(lineno), max_chars, field_map)
            except RequestError as e:
                p = e.problems[0]
                yield LineProblem(str(path), lineno, p.field, p.message)
