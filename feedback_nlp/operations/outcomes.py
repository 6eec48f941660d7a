"""Outcome labels: the inspection team's decisions, arriving days or weeks after the prediction.

Why validated here, line by line: the file comes from another team's system; a bad line must
read `file:line: field 'label': ...` before any KPI is computed, like every other input of the
project (core/errors.py). A record: `id` (the scored record's id), `label` (product safety: 1/0
or true/false; other tasks: the true class), `labelled_at` (ISO-8601), and optionally
`escalated` (the FCC flag, if it is known only later). JSONL, or Parquet with those columns
(the "line" of a Parquet problem is its 1-based row). An id labelled twice keeps the decision
with the latest `labelled_at` (a revised decision).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Iterator

from feedback_nlp.core.errors import DataValidationError, Problem, UserError


class OutcomeFileError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class Outcome:
    id: str
    label: int | str
    labelled_at: datetime
    escalated: bool | None = None


def _objects(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(line or row number, object, JSON error) of a JSONL or Parquet file."""
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as e:
            raise OutcomeFileError(f"{path}: not a readable Parquet file ({e})") from None
        for i, row in enumerate(table.to_pylist(), start=1):
            at = row.get("labelled_at")
            if isinstance(at, datetime):
                row["labelled_at"] = at.isoformat()
            yield i, row, None
        return
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                yield lineno, json.loads(raw.decode("utf-8")), None
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                yield lineno, None, f"invalid JSON ({e})"


def _outcome(obj: Any, binary: bool) -> tuple[Outcome | None, str, str]:
    """(outcome, bad field, message); the outcome is None when a field is bad."""
    if not isinstance(obj, dict):
        return None, "<line>", "expected a JSON object"
    rid = obj.get("id")
    if isinstance(rid, bool) or not isinstance(rid, (str, int)) or not str(rid).strip():
        return None, "id", f"expected a non-empty string or integer, got {rid!r}"
    if "label" not in obj:
        return None, "label", "missing required field"
    label = obj["label"]
    if binary:
        if label not in (0, 1) or (isinstance(label, float) and not label.is_integer()):
            return None, "label", f"expected 1, 0, true or false (product safety), got {label!r}"
        label = int(label)
    elif isinstance(label, bool) or not isinstance(label, (str, int)) or not str(label).strip():
        return None, "label", f"expected a non-empty class name, got {label!r}"
    else:
        label = str(label)
    at = obj.get("labelled_at")
    if not isinstance(at, str) or not at.strip():
        return None, "labelled_at", f"expected an ISO-8601 date string, got {at!r}"
    try:
        when = datetime.fromisoformat(at.strip())
    except ValueError:
        return None, "labelled_at", f"unparseable ISO-8601 date {at!r}"
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    escalated = obj.get("escalated")
    if escalated is not None and not isinstance(escalated, bool):
        return None, "escalated", f"expected true/false, got {escalated!r}"
    return Outcome(str(rid), label, when, escalated), "", ""


def read_outcomes(paths: list[Path], binary: bool, limit: int = 50) -> dict[str, Outcome]:
    """id -> its latest outcome over every file; DataValidationError listing every bad line."""
    problems: list[Problem] = []
    out: dict[str, Outcome] = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise OutcomeFileError(f"--outcomes {path}: no such file")
        for line, obj, json_error in _objects(path):
            if json_error:
                problems.append(Problem(str(path), line, "<line>", json_error))
                continue
            outcome, field, message = _outcome(obj, binary)
            if outcome is None:
                problems.append(Problem(str(path), line, field, message))
                continue
            old = out.get(outcome.id)
            if old is None or outcome.labelled_at >= old.labelled_at:
                out[outcome.id] = outcome
    if problems:
        raise DataValidationError(problems, limit=limit)
    return out
