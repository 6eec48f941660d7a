"""Record schemas shared by the three systems, and a validating JSONL reader.

Why: every task reads JSONL written by other teams. Validating all of a file up front, with
file:line:field errors, means a bad record stops the run before a GPU hour is spent, and no
task module has to defend against malformed input.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence, overload

from feedback_nlp.core.errors import DataValidationError, Problem

CASE_TYPES = ("allergic_reaction", "chemical_smell", "injury", "not_product_safety")
SPEAKERS = ("customer", "agent")


@dataclass
class Feedback:
    """000 §3.1: one customer feedback with its L-Coarse and L-Granular issues."""

    id: str
    text: str
    coarse: list[str]
    granular: list[str]
    created_at: datetime | None = None
    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Claim:
    """001 §3: a customer claim; label 1 = product safety, 0 = not, None = unlabeled traffic."""

    id: str
    text: str
    language: str
    created_at: datetime
    label: int | None
    case_type: str | None = None
    escalated: bool | None = None
    source_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Turn:
    speaker: str
    text: str


@dataclass
class Transcript:
    """002 §2.1: a customer-agent transcript labeled with its product/service."""

    id: str
    turns: list[Turn]
    label: str
    handle_time: float | None = None
    created_at: datetime | None = None
    main_question: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Question:
    """002 §3.1: one entry of the question repository: a question and its labels."""

    id: str
    question: str
    labels: dict[str, Any] = field(default_factory=dict)


Record = Feedback | Claim | Transcript | Question


class _Bad(Exception):
    def __init__(self, field: str, message: str):
        self.field, self.message = field, message


def parse_datetime(value: Any, name: str = "created_at") -> datetime:
    """ISO-8601 -> timezone-aware UTC datetime (naive values are taken as UTC)."""
    if not isinstance(value, str) or not value.strip():
        raise _Bad(name, f"expected an ISO-8601 date string, got {value!r}")
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _Bad(name, f"unparseable ISO-8601 date {value!r}") from None
    try:
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 is in year 10000 in UTC
        raise _Bad(name, f"date {value!r} is out of range in UTC (years 1-9999)") from None


def _id(obj: Mapping, name: str = "id") -> str:
    v = obj.get(name)
    if isinstance(v, bool) or not isinstance(v, (str, int)) or (isinstance(v, str) and not v.strip()):
        raise _Bad(name, f"expected a non-empty string or integer, got {v!r}")
    return str(v)


def _text(obj: Mapping, name: str) -> str:
    if name not in obj:
        raise _Bad(name, "missing required field")
    v = obj[name]
    if not isinstance(v, str):
        raise _Bad(name, f"expected a string, got {type(v).__name__}")
    if not v.strip():
        raise _Bad(name, "empty text")
    return v


def _opt_str(obj: Mapping, name: str) -> str | None:
    v = obj.get(name)
    if v is None:
        return None
    if not isinstance(v, str):
        raise _Bad(name, f"expected a string or null, got {type(v).__name__}")
    return v


def _str_list(obj: Mapping, name: str) -> list[str]:
    if name not in obj:
        raise _Bad(name, "missing required field")
    v = obj[name]
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise _Bad(name, "expected a list of non-empty strings")
    return [x.strip() for x in v]


def _opt_date(obj: Mapping, name: str) -> datetime | None:
    return None if obj.get(name) is None else parse_datetime(obj[name], name)


def _number(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(name, f"expected a finite number, got {v!r}")
    try:
        f = float(v)
    except OverflowError:  # an integer beyond float range (about 1.8e308)
        raise _Bad(name, f"number too large ({len(str(abs(v)))}-digit integer), expected a finite number") from None
    if not math.isfinite(f):
        raise _Bad(name, f"expected a finite number, got {v!r}")
    return f


def _extra(obj: Mapping, known: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in known}


def parse_feedback(obj: Mapping) -> Feedback:
    known = ("id", "text", "coarse", "granular", "created_at", "language")
    return Feedback(
        _id(obj),
        _text(obj, "text"),
        _str_list(obj, "coarse"),
        _str_list(obj, "granular"),
        _opt_date(obj, "created_at"),
        _opt_str(obj, "language"),
        _extra(obj, known),
    )


def parse_claim(obj: Mapping) -> Claim:
    known = ("id", "text", "language", "created_at", "label", "case_type", "escalated", "source_id")
    if "label" not in obj:
        raise _Bad("label", "missing required field (use null for unlabeled)")
    label = obj["label"]
    if label is not None and (isinstance(label, bool) or label not in (0, 1)):
        raise _Bad("label", f"expected 1, 0 or null, got {label!r}")
    case_type = _opt_str(obj, "case_type")
    if case_type is not None and case_type not in CASE_TYPES:
        raise _Bad("case_type", f"expected one of {', '.join(CASE_TYPES)}, got {case_type!r}")
    escalated = obj.get("escalated")
    if escalated is not None and not isinstance(escalated, bool):
        raise _Bad("escalated", f"expected true/false, got {escalated!r}")
    source_id = None if obj.get("source_id") is None else _id(obj, "source_id")
    if "created_at" not in obj:
        raise _Bad("created_at", "missing required field")
    return Claim(
        _id(obj),
        _text(obj, "text"),
        _text(obj, "language"),
        parse_datetime(obj["created_at"]),
        None if label is None else int(label),
        case_type,
        escalated,
        source_id,
        _extra(obj, known),
    )


def parse_transcript(obj: Mapping) -> Transcript:
    known = ("id", "turns", "label", "handle_time", "created_at", "main_question")
    turns_raw = obj.get("turns")
    if not isinstance(turns_raw, list) or not turns_raw:
        raise _Bad("turns", "expected a non-empty list of {speaker, text}")
    turns = []
    for i, t in enumerate(turns_raw):
        if not isinstance(t, Mapping):
            raise _Bad(f"turns[{i}]", "expected an object with speaker and text")
        if t.get("speaker") not in SPEAKERS:
            raise _Bad(f"turns[{i}].speaker", f"unknown speaker {t.get('speaker')!r} (expected customer or agent)")
        try:
            turns.append(Turn(t["speaker"], _text(t, "text")))
        except _Bad as e:
            raise _Bad(f"turns[{i}].{e.field}", e.message) from None
    label = obj.get("label")
    if isinstance(label, bool) or not isinstance(label, (str, int)) or (isinstance(label, str) and not label.strip()):
        raise _Bad("label", f"expected a non-empty string, got {label!r}")
    ht = obj.get("handle_time")
    return Transcript(
        _id(obj),
        turns,
        str(label),
        None if ht is None else _number(ht, "handle_time"),
        _opt_date(obj, "created_at"),
        _opt_str(obj, "main_question"),
        _extra(obj, known),
    )


def parse_question(obj: Mapping) -> Question:
    return Question(_id(obj), _text(obj, "question"), _extra(obj, ("id", "question")))


PARSERS: dict[str, Callable[[Mapping], Record]] = {
    "feedback": parse_feedback,
    "claim": parse_claim,
    "transcript": parse_transcript,
    "question": parse_question,
}


def read_records(
    path: str | Path, kind: str, field_map: Mapping[str, str] | None = None
) -> tuple[list[Record], list[Problem]]:
    """Parse a JSONL file of `kind` records; return the valid records and every problem found.

    `field_map` renames source fields to schema fields ({"text": "narrative"} reads `narrative`
    as `text`), so files from other teams load by config override, not code change.
    """
    if kind not in PARSERS:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {sorted(PARSERS)}")
    path = Path(path)
    if not path.is_file():
        return [], [Problem(str(path), 0, "<file>", "file not found")]
    parse, problems, records, seen = PARSERS[kind], [], [], dict[str, int]()
    with path.open("rb") as f:
        raw_lines = f.read().split(b"\n")
    for lineno, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(Problem(str(path), lineno, "<line>", f"not valid UTF-8 (byte offset {e.start})"))
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(Problem(str(path), lineno, "<line>", f"invalid JSON: {e.msg} at column {e.colno}"))
            continue
        except RecursionError:
            problems.append(Problem(str(path), lineno, "<line>", "invalid JSON: arrays/objects nested too deeply"))
            continue
        except ValueError as e:  # a number over Python's 4300-digit int limit
            problems.append(Problem(str(path), lineno, "<line>", f"invalid JSON: {str(e).split(';')[0]}"))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(str(path), lineno, "<line>", "expected a JSON object"))
            continue
        if field_map:
            obj = {**obj, **{dst: obj[src] for dst, src in field_map.items() if src in obj}}
        try:
            rec = parse(obj)
        except _Bad as e:
            problems.append(Problem(str(path), lineno, e.field, e.message))
            continue
        if rec.id in seen:
            problems.append(Problem(str(path), lineno, "id", f"duplicate id {rec.id!r} (first on line {seen[rec.id]})"))
            continue
        seen[rec.id] = lineno
        records.append(rec)
    if not records and not problems:
        problems.append(Problem(str(path), 0, "<file>", "no records"))
    return records, problems


# the record type follows from the kind, so callers get list[Question] for "question", etc.
@overload
def load_records(
    path: str | Path, kind: Literal["feedback"], field_map: Mapping[str, str] | None = None, limit: int = 50
) -> list[Feedback]: ...
@overload
def load_records(
    path: str | Path, kind: Literal["claim"], field_map: Mapping[str, str] | None = None, limit: int = 50
) -> list[Claim]: ...
@overload
def load_records(
    path: str | Path, kind: Literal["transcript"], field_map: Mapping[str, str] | None = None, limit: int = 50
) -> list[Transcript]: ...
@overload
def load_records(
    path: str | Path, kind: Literal["question"], field_map: Mapping[str, str] | None = None, limit: int = 50
) -> list[Question]: ...
@overload
def load_records(
    path: str | Path, kind: str, field_map: Mapping[str, str] | None = None, limit: int = 50
) -> list[Record]: ...
def load_records(
    path: str | Path, kind: str, field_map: Mapping[str, str] | None = None, limit: int = 50
) -> Sequence[Record]:  # a list; Sequence so that each overload's list[...] fits it
    """Read and validate a JSONL file of `kind` records; raise DataValidationError listing problems."""
    records, problems = read_records(path, kind, field_map)
    if problems:
        raise DataValidationError(problems, limit=limit)
    return records
