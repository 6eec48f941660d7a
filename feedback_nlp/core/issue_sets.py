"""Issue lists <-> the comma-separated text a seq2seq model reads and writes (000 §3.2).

Why: 000 §3.2 — "we use comma to separate multiple issues"; the model's output text becomes an
issue *set* before any metric sees it: split on commas, trimmed, and de-duplicated
case-insensitively (a model that repeats "size issue" twice has named one issue, not two).
"""

from __future__ import annotations

from typing import Iterable

from feedback_nlp.core.vocabulary import ISSUE_SEPARATOR

SEPARATOR = ISSUE_SEPARATOR


def join_issues(issues: Iterable[str]) -> str:
    """The target text for a list of issues: "size issue, not as described".

    A comma inside one issue would read back as two issues, so it becomes a space here; the
    metrics compare against the annotated list itself, never against this text.
    """
    return SEPARATOR.join(" ".join(i.replace(",", " ").split()) for i in issues if i and i.strip())


def parse_issues(text: str) -> list[str]:
    """Generated text -> issue set: split on commas, trim, drop empties, first spelling wins."""
    seen: set[str] = set()
    out: list[str] = []
    for piece in text.split(","):
        issue = " ".join(piece.split())
        if issue and issue.casefold() not in seen:
            seen.add(issue.casefold())
            out.append(issue)
    return out


def dedupe_issues(issues: Iterable[str]) -> list[str]:
    """An annotated or predicted list as a set, by the same rule as `parse_issues`."""
    return parse_issues(",".join(i.replace(",", " ") for i in issues))
