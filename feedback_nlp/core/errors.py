"""One error type for bad input, from a training file, a file to score or an HTTP request.

Why one: users fix data, not stack traces, and the same bad record must read the same wherever
it is sent. Every problem names where it is (file and line, or the request's record index) and
the field; all problems of an input are listed at once (up to a limit) so one edit fixes them
all. A server answers 413 when a problem is over a configured limit, else 422.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUEST = "request"  # `Problem.path` of a record in an HTTP request body


class UserError(Exception):
    """Input a user can fix (a config key, a data file, a path, a flag, an export folder).

    Every such error type derives from this one, so every command answers it the same way: one
    `error: <message>` on stderr and exit code 2, never a traceback (cli/main.py). Anything else
    that escapes is a bug and keeps its traceback."""


@dataclass(frozen=True)
class Problem:
    """One bad field. `line`: the 1-based line of a file, or the 0-based index of a record in a
    request (-1: the request body as a whole; 0 for a file: the file as a whole)."""

    path: str
    line: int
    field: str
    message: str
    too_large: bool = False  # over a configured limit (HTTP 413), not malformed (422)

    def __str__(self) -> str:
        if self.path != REQUEST:
            return f"{self.path}:{self.line}: field '{self.field}': {self.message}"
        where = "body" if self.line < 0 else f"record {self.line}"
        return f"{where}: field '{self.field}': {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.line, "field": self.field, "message": self.message}


class DataValidationError(UserError, ValueError):
    """Every problem found in one input (a file or a request body)."""

    def __init__(self, problems: list[Problem], limit: int = 50, total: int | None = None):
        self.problems = list(problems)
        total = len(self.problems) if total is None else total
        shown = "\n  ".join(str(p) for p in self.problems[:limit])
        more = f"\n  ... and {total - limit} more" if total > limit else ""
        super().__init__(f"{total} problem(s) in input data:\n  {shown}{more}")

    @property
    def status(self) -> int:
        """The HTTP status a server answers with: 413 over a limit, else 422."""
        return 413 if any(p.too_large for p in self.problems) else 422
