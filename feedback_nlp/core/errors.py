"""One error type for bad input data, raised before any training starts.

Why: users fix data, not stack traces. Every problem names file, line and field, and all
problems of a file are listed at once (up to a limit) so one edit-run cycle fixes them all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: field '{self.field}': {self.message}"


class DataValidationError(ValueError):
    """Raised with every problem found in one input file."""

    def __init__(self, problems: list[Problem], limit: int = 50, total: int | None = None):
        self.problems = problems
        total = len(problems) if total is None else total
        shown = "\n  ".join(str(p) for p in problems[:limit])
        more = f"\n  ... and {total - limit} more" if total > limit else ""
        super().__init__(f"{total} problem(s) in input data:\n  {shown}{more}")
