"""The repository's label schema: which labels are voted on, and what a valid value is.

Why checked at the door: a label is only useful if every question's value can be voted on
(categorical: a string or an integer) or averaged (numeric: a finite number). `NaN`,
`"slow"` for a handle time or a list for a product would otherwise surface deep in the
voting (`unhashable type: 'list'`) after files were written. Every problem names file,
line and field, and nothing is written while any remains.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from feedback_nlp.core.errors import DataValidationError, Problem
from feedback_nlp.core.records import Question


def label_problem(kind: str, value: Any) -> str | None:
    """Why `value` is not a valid `kind` label (None if it is; a missing value is allowed)."""
    if value is None:
        return None
    if kind == "categorical":
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return f"categorical label must be a string or an integer, got {type(value).__name__} {value!r}"
        if isinstance(value, str) and not value.strip():
            return "categorical label must be a non-empty string"
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"numeric label must be a finite number, got {type(value).__name__} {value!r}"
    if not math.isfinite(value):
        return f"numeric label must be a finite number, got {value!r}"
    return None


def line_numbers(path: str | Path) -> dict[str, int]:
    """id -> 1-based line of a JSONL file (for errors found after parsing)."""
    out: dict[str, int] = {}
    with Path(path).open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict) and "id" in obj:
                out.setdefault(str(obj["id"]), lineno)
    return out


def check_labels(
    questions: Sequence[Question],
    categorical: Iterable[str],
    numeric: Iterable[str],
    path: str | Path = "<questions>",
    existing_ids: Mapping[str, Any] | None = None,
) -> None:
    """Raise DataValidationError (file:line:field) for wrong label types or ids already stored."""
    schema = {**{n: "categorical" for n in categorical}, **{n: "numeric" for n in numeric}}
    bad: list[tuple[str, str, str]] = []
    for q in questions:
        if existing_ids is not None and q.id in existing_ids:
            bad.append((q.id, "id", f"duplicate id {q.id!r}: already in the repository"))
        for name, kind in schema.items():
            why = label_problem(kind, q.labels.get(name))
            if why:
                bad.append((q.id, name, why))
    if bad:
        lines = line_numbers(path) if Path(path).is_file() else {}
        raise DataValidationError([Problem(str(path), lines.get(i, 0), f, m) for i, f, m in bad])


def schema_labels(q: Question, categorical: Iterable[str], numeric: Iterable[str]) -> dict[str, Any]:
    """The labels the schema knows (other fields of the input are not stored)."""
    names = [*categorical, *numeric]
    return {n: q.labels[n] for n in names if q.labels.get(n) is not None}
