"""The one place that turns JSON (file lines or request bodies) into records, for every task.

Why one: training files, files to score and HTTP requests are written by other teams, and the
same bad record must get the same `file:line:field` (or `record N: field`) message wherever it
is sent; two decoders had already drifted apart (a line's JSON error column differed). Two
contracts share the field checks:

- training records (`Feedback`, `Claim`, `Transcript`, `Question`): everything a task trains
  and evaluates on, labels and dates included (`read_records`, `load_records`);
- scoring records (`TextRecord`, `TranscriptRecord`, `QuestionRecord`): only what a model reads,
  no label or date required, other fields ignored (`decode_request` for a request body,
  `iter_jsonl` for a file to score).

Every string a model or a log reads must be encodable as UTF-8: JSON allows a lone UTF-16
surrogate (`"\\ud800"`), which tokenizers and Parquet refuse, so it is a field error here.
JSON nested deeper than `MAX_DEPTH` or holding an integer over Python's digit limit is a line
(or body) error, never a crash.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping, Sequence, overload

from feedback_nlp.core.errors import REQUEST, DataValidationError, Problem

CASE_TYPES = ("allergic_reaction", "chemical_smell", "injury", "not_product_safety")
SPEAKERS = ("customer", "agent")
MAX_DEPTH = 32  # nesting of JSON arrays/objects a record may have (records need 3)
RECORD_KINDS = ("claim", "feedback", "transcript", "question")


class _Bad(Exception):
    def __init__(self, field: str, message: str, too_large: bool = False):
        self.field, self.message, self.too_large = field, message, too_large


# --- JSON -------------------------------------------------------------------------------------


def _depth_ok(obj: Any, limit: int) -> bool:
    """Whether `obj` nests at most `limit` containers deep (iterative: no recursion to exhaust)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return True


def parse_json(raw: bytes | str, where: str = "<line>") -> Any:
    """One JSON text (a file line without its line break, or a request body) -> a Python value.

    Raises _Bad naming `where` for bytes that are not UTF-8, invalid JSON (with the column in
    that text), nesting deeper than MAX_DEPTH and integers over Python's digit limit."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _Bad(where, f"not valid UTF-8 (byte offset {e.start})") from None
    raw = raw.rstrip("\r\n")
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as e:
        raise _Bad(where, f"invalid JSON: {e.msg} at column {e.colno}") from None
    except RecursionError:
        raise _Bad(where, f"invalid JSON: arrays/objects nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # an integer over Python's digit limit (sys.get_int_max_str_digits)
        raise _Bad(where, f"invalid JSON: an integer of more than {sys.get_int_max_str_digits()} digits") from None
    if not _depth_ok(obj, MAX_DEPTH):
        raise _Bad(where, f"invalid JSON: arrays/objects nested deeper than {MAX_DEPTH} levels")
    return obj


# --- fields -----------------------------------------------------------------------------------


def _encodable(v: str, name: str) -> str:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as e:
        raise _Bad(name, f"character {e.start} is a lone UTF-16 surrogate (not encodable as UTF-8)") from None
    return v


def _id(obj: Mapping[str, Any], name: str = "id", default: str | None = None) -> str:
    v = obj.get(name)
    if v is None and default is not None:
        return default
    if isinstance(v, bool) or not isinstance(v, (str, int)) or (isinstance(v, str) and not v.strip()):
        raise _Bad(name, f"expected a non-empty string or integer, got {_short(v)}")
    return _encodable(str(v), name)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _text(obj: Mapping[str, Any], name: str, max_chars: int | None = None) -> str:
    if name not in obj or obj[name] is None:
        raise _Bad(name, "missing required field")
    v = obj[name]
    if not isinstance(v, str):
        raise _Bad(name, f"expected a string, got {type(v).__name__}")
    if not v.strip():
        raise _Bad(name, "empty text")
    if max_chars is not None and len(v) > max_chars:
        raise _Bad(name, f"{len(v)} characters, over the limit of {max_chars}", too_large=True)
    return _encodable(v, name)


def _opt_str(obj: Mapping[str, Any], name: str) -> str | None:
    v = obj.get(name)
    if v is None:
        return None
    if not isinstance(v, str):
        raise _Bad(name, f"expected a string or null, got {type(v).__name__}")
    return _encodable(v, name)


def _str_list(obj: Mapping[str, Any], name: str) -> list[str]:
    if name not in obj:
        raise _Bad(name, "missing required field")
    v = obj[name]
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise _Bad(name, "expected a list of non-empty strings")
    return [_encodable(x.strip(), f"{name}[{i}]") for i, x in enumerate(v)]


def parse_datetime(value: Any, name: str = "created_at") -> datetime:
    """ISO-8601 -> timezone-aware UTC datetime (naive values are taken as UTC)."""
    if not isinstance(value, str) or not value.strip():
        raise _Bad(name, f"expected an ISO-8601 date string, got {_short(value)}")
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _Bad(name, f"unparseable ISO-8601 date {_short(value)}") from None
    try:
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 is in year 10000 in UTC
        raise _Bad(name, f"date {value!r} is out of range in UTC (years 1-9999)") from None


def _opt_date(obj: Mapping[str, Any], name: str) -> datetime | None:
    return None if obj.get(name) is None else parse_datetime(obj[name], name)


def _number(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(name, f"expected a finite number, got {_short(v)}")
    try:
        f = float(v)
    except OverflowError:  # an integer beyond float range (about 1.8e308)
        raise _Bad(name, f"number too large ({len(str(abs(v)))}-digit integer), expected a finite number") from None
    if not math.isfinite(f):
        raise _Bad(name, f"expected a finite number, got {v!r}")
    return f


def _extra(obj: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in known}


@dataclass(frozen=True)
class Turn:
    speaker: str
    text: str


def _turns(obj: Mapping[str, Any], max_chars: int | None = None) -> list[Turn]:
    raw = obj.get("turns")
    if not isinstance(raw, list) or not raw:
        raise _Bad("turns", "expected a non-empty list of {speaker, text}")
    turns = []
    for i, t in enumerate(raw):
        if not isinstance(t, Mapping):
            raise _Bad(f"turns[{i}]", "expected an object with speaker and text")
        if t.get("speaker") not in SPEAKERS:
            raise _Bad(
                f"turns[{i}].speaker", f"unknown speaker {_short(t.get('speaker'))} (expected customer or agent)"
            )
        try:
            turns.append(Turn(t["speaker"], _text(t, "text", max_chars)))
        except _Bad as e:
            raise _Bad(f"turns[{i}].{e.field}", e.message, e.too_large) from None
    return turns


# --- training records -------------------------------------------------------------------------


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


def parse_feedback(obj: Mapping[str, Any]) -> Feedback:
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


def parse_claim(obj: Mapping[str, Any]) -> Claim:
    known = ("id", "text", "language", "created_at", "label", "case_type", "escalated", "source_id")
    if "label" not in obj:
        raise _Bad("label", "missing required field (use null for unlabeled)")
    label = obj["label"]
    if label is not None and (isinstance(label, bool) or label not in (0, 1)):
        raise _Bad("label", f"expected 1, 0 or null, got {_short(label)}")
    case_type = _opt_str(obj, "case_type")
    if case_type is not None and case_type not in CASE_TYPES:
        raise _Bad("case_type", f"expected one of {', '.join(CASE_TYPES)}, got {_short(case_type)}")
    escalated = obj.get("escalated")
    if escalated is not None and not isinstance(escalated, bool):
        raise _Bad("escalated", f"expected true/false, got {_short(escalated)}")
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


def parse_transcript(obj: Mapping[str, Any]) -> Transcript:
    known = ("id", "turns", "label", "handle_time", "created_at", "main_question")
    turns = _turns(obj)
    label = obj.get("label")
    if isinstance(label, bool) or not isinstance(label, (str, int)) or (isinstance(label, str) and not label.strip()):
        raise _Bad("label", f"expected a non-empty string, got {_short(label)}")
    ht = obj.get("handle_time")
    return Transcript(
        _id(obj),
        turns,
        _encodable(str(label), "label"),
        None if ht is None else _number(ht, "handle_time"),
        _opt_date(obj, "created_at"),
        _opt_str(obj, "main_question"),
        _extra(obj, known),
    )


def parse_question(obj: Mapping[str, Any]) -> Question:
    return Question(_id(obj), _text(obj, "question"), _extra(obj, ("id", "question")))


PARSERS: dict[str, Callable[[Mapping[str, Any]], Record]] = {
    "feedback": parse_feedback,
    "claim": parse_claim,
    "transcript": parse_transcript,
    "question": parse_question,
}


def _mapped(obj: Mapping[str, Any], field_map: Mapping[str, str] | None) -> Mapping[str, Any]:
    """`field_map` renames source fields to schema fields ({"text": "narrative"} reads `narrative`
    as `text`), so files from other teams load by config override, not code change."""
    if not field_map:
        return obj
    return {**obj, **{dst: obj[src] for dst, src in field_map.items() if src in obj}}


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line without its break) of every non-blank line, streamed."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if raw.strip():
                yield lineno, raw


def read_id_list(path: str | Path) -> list[tuple[int, str]]:
    """(line, id) of an id list: one id per line, plain or as a JSON object with `id` (blank
    lines skipped). The one reader of the deletion lists `compare`, `repo delete` and
    `repo update` take; a bad line is a `file:line: field 'id'` error."""
    out: list[tuple[int, str]] = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        if text.startswith("{"):
            try:
                text = str(json.loads(text)["id"])
            except (ValueError, KeyError, TypeError):
                raise DataValidationError(
                    [Problem(str(path), lineno, "id", "expected an id or a JSON object with 'id'")]
                ) from None
        out.append((lineno, text))
    return out


def read_records(
    path: str | Path, kind: str, field_map: Mapping[str, str] | None = None
) -> tuple[list[Record], list[Problem]]:
    """Parse a JSONL file of `kind` training records; return the valid records and every problem."""
    if kind not in PARSERS:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {sorted(PARSERS)}")
    path = Path(path)
    if not path.is_file():
        return [], [Problem(str(path), 0, "<file>", "file not found")]
    parse = PARSERS[kind]
    problems: list[Problem] = []
    records: list[Record] = []
    seen: dict[str, int] = {}
    for lineno, raw in _lines(path):
        try:
            obj = parse_json(raw)
            if not isinstance(obj, dict):
                raise _Bad("<line>", "expected a JSON object")
            rec = parse(_mapped(obj, field_map))
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


# --- scoring records --------------------------------------------------------------------------


@dataclass(frozen=True)
class TextRecord:
    """A claim (001) or a feedback (000) to score: one text."""

    id: str
    text: str
    language: str | None = None
    escalated: bool | None = None  # a claim's FCC flag (001 §4.2), kept in the prediction log


@dataclass(frozen=True)
class TranscriptRecord:
    """A customer-agent transcript (002 §2.1) to score, without its label."""

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


ScoringRecord = TextRecord | TranscriptRecord | QuestionRecord


@dataclass(frozen=True)
class Limits:
    """Per-request limits: records per request and characters per text (None: unlimited).

    Args:
        max_records: Records per request (over it: HTTP 413; null: unlimited).
        max_chars: Characters per text (over it: HTTP 413; null: unlimited).
    """

    max_records: int | None = None
    max_chars: int | None = None


def _score_claim(obj: Mapping[str, Any], rid: str, max_chars: int | None) -> TextRecord:
    escalated = obj.get("escalated")
    if escalated is not None and not isinstance(escalated, bool):
        raise _Bad("escalated", f"expected true/false, got {_short(escalated)}")
    return TextRecord(rid, _text(obj, "text", max_chars), _opt_str(obj, "language"), escalated)


def _score_feedback(obj: Mapping[str, Any], rid: str, max_chars: int | None) -> TextRecord:
    return TextRecord(rid, _text(obj, "text", max_chars), _opt_str(obj, "language"))


def _score_transcript(obj: Mapping[str, Any], rid: str, max_chars: int | None) -> TranscriptRecord:
    return TranscriptRecord(rid, tuple(_turns(obj, max_chars)))


def _score_question(obj: Mapping[str, Any], rid: str, max_chars: int | None) -> QuestionRecord:
    name = "question" if "question" in obj or "text" not in obj else "text"
    return QuestionRecord(rid, _text(obj, name, max_chars))


DECODERS: dict[str, Callable[[Mapping[str, Any], str, int | None], ScoringRecord]] = {
    "claim": _score_claim,
    "feedback": _score_feedback,
    "transcript": _score_transcript,
    "question": _score_question,
}


def check_kind(kind: Any) -> str:
    if kind not in DECODERS:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {', '.join(RECORD_KINDS)}")
    return str(kind)


def _scoring_record(
    obj: Any, kind: str, default_id: str, max_chars: int | None, field_map: Mapping[str, str] | None
) -> ScoringRecord:
    if not isinstance(obj, Mapping):
        raise _Bad("<record>", f"expected a JSON object, got {type(obj).__name__}")
    obj = _mapped(obj, field_map)
    return DECODERS[kind](obj, _id(obj, default=default_id), max_chars)


def decode_body(body: bytes) -> Any:
    """A request body -> its JSON value, or DataValidationError naming the body."""
    try:
        return parse_json(body, "<body>")
    except _Bad as e:
        raise DataValidationError([Problem(REQUEST, -1, e.field, e.message)]) from None


def decode_request(payload: Any, kind: str, limits: Limits = Limits()) -> list[ScoringRecord]:
    """A request body's JSON (a list of records) -> records, or DataValidationError with every problem.

    A record without `id` gets its position ("0", "1", ...), so every row can be matched; two
    records with the same id are refused (their rows could not be told apart).
    """
    check_kind(kind)
    if isinstance(payload, Mapping) and isinstance(payload.get("records"), list):
        payload = payload["records"]
    if not isinstance(payload, list):
        message = "expected a JSON list of records (or an object with a 'records' list)"
        raise DataValidationError([Problem(REQUEST, -1, "<body>", message)])
    if not payload:
        raise DataValidationError([Problem(REQUEST, -1, "<body>", "no records")])
    if limits.max_records is not None and len(payload) > limits.max_records:
        message = f"{len(payload)} records, over the limit of {limits.max_records} per request"
        raise DataValidationError([Problem(REQUEST, -1, "<body>", message, too_large=True)])
    records: list[ScoringRecord] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, obj in enumerate(payload):
        try:
            rec = _scoring_record(obj, kind, str(i), limits.max_chars, None)
        except _Bad as e:
            problems.append(Problem(REQUEST, i, e.field, e.message, e.too_large))
            continue
        if rec.id in seen:
            problems.append(Problem(REQUEST, i, "id", f"duplicate id {rec.id!r} (first at record {seen[rec.id]})"))
            continue
        seen[rec.id] = i
        records.append(rec)
    if problems:
        raise DataValidationError(problems)
    return records


def iter_jsonl(
    path: str | Path, kind: str, field_map: Mapping[str, str] | None = None, max_chars: int | None = None
) -> Iterator[ScoringRecord | Problem]:
    """Stream a JSONL file to score: yields a record or a Problem per non-blank line.

    Memory is flat in the number of lines, so ids are not checked for duplicates across the file
    (that would keep every id): output rows follow the input lines, one per valid line, and a
    record without `id` gets its line number.
    """
    check_kind(kind)
    path = Path(path)
    for lineno, raw in _lines(path):
        yield decode_line(raw, str(path), lineno, kind, field_map, max_chars)


def decode_line(
    raw: bytes | str,
    path: str,
    lineno: int,
    kind: str,
    field_map: Mapping[str, str] | None = None,
    max_chars: int | None = None,
) -> ScoringRecord | Problem:
    """One non-blank line of a file to score -> its record, or a Problem naming `path:lineno:field`.

    iter_jsonl's step, public for readers that split files themselves (batch scoring's Ray read
    tasks), so a line gets the same record or the same message wherever it is read."""
    try:
        return _scoring_record(parse_json(raw), kind, str(lineno), max_chars, field_map)
    except _Bad as e:
        return Problem(path, lineno, e.field, e.message, e.too_large)


def decode_row(
    obj: Any,
    path: str,
    row: int,
    kind: str,
    field_map: Mapping[str, str] | None = None,
    max_chars: int | None = None,
) -> ScoringRecord | Problem:
    """One already-parsed row (a Parquet row as a dict; `row` 1-based, its default id) -> its record,
    or a Problem naming `path:row:field`: the field checks of a JSONL line, without the JSON step."""
    try:
        return _scoring_record(obj, kind, str(row), max_chars, field_map)
    except _Bad as e:
        return Problem(path, row, e.field, e.message, e.too_large)
