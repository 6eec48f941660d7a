"""Train/dev/test(/traffic) splits shared by all three systems.

Why: 001 §4.1 evaluates on the most recent month to estimate near-future production
performance; 000 §4.1 uses a random 80:20 split for undated data. Both assign by a seeded hash
of the id, so a record keeps its split when new records are appended, and a translation
(`source_id`) always follows its source so no comment leaks across splits in another language.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Sequence


@dataclass
class Splits:
    train: list = field(default_factory=list)
    dev: list = field(default_factory=list)
    test: list = field(default_factory=list)
    traffic: list = field(default_factory=list)
    test_month: str | None = None

    def sizes(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("train", "dev", "test", "traffic")}


def hash_unit(key: str, seed: int) -> float:
    """A stable pseudo-random number in [0, 1) for `key`, independent of other records."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _month(dt: datetime) -> str:
    return f"{dt.year:04d}-{dt.month:02d}"


def _root_id(rec: Any, by_id: dict[str, Any]) -> str:
    """The id of the original comment: a translation's source (followed transitively)."""
    seen, cur = set(), rec
    while getattr(cur, "source_id", None) and cur.source_id in by_id and cur.id not in seen:
        seen.add(cur.id)
        cur = by_id[cur.source_id]
    return cur.id


def _is_labeled(rec: Any) -> bool:
    return getattr(rec, "label", 0) is not None


def time_split(
    records: Sequence[Any],
    seed: int = 0,
    dev_fraction: float = 0.1,
    test_month: str | None = None,
    labeled: Callable[[Any], bool] = _is_labeled,
) -> Splits:
    """001 §4.1: test = labeled records of the last calendar month; train/dev 90:10 before it.

    traffic = every record (labeled or not) of the test month. The test month is the last month
    holding a labeled record unless given as "YYYY-MM". A translation takes its source's month
    and split. Records without `created_at` raise: use `random_split` for undated data.
    """
    by_id = {r.id: r for r in records}
    undated = [r.id for r in records if getattr(r, "created_at", None) is None]
    if undated:
        raise ValueError(
            f"time_split needs created_at on every record; missing on ids {undated[:5]}"
            " (use split: random for undated data)"
        )
    root = {r.id: _root_id(r, by_id) for r in records}
    month = {r.id: _month(by_id[root[r.id]].created_at) for r in records}
    labeled_months = sorted({month[r.id] for r in records if labeled(r)})
    if not labeled_months:
        raise ValueError("time_split: no labeled records")
    test_month = test_month or labeled_months[-1]
    out = Splits(test_month=test_month)
    for r in records:
        if month[r.id] == test_month:
            out.traffic.append(r)
            if labeled(r):
                out.test.append(r)
        elif month[r.id] < test_month and labeled(r):
            (out.dev if hash_unit(root[r.id], seed) < dev_fraction else out.train).append(r)
    return out


def random_split(
    records: Sequence[Any], seed: int = 0, test_fraction: float = 0.2, dev_fraction: float = 0.0
) -> Splits:
    """000 §4.1: seeded 80:20 train/test by hashed id (translations follow their source).

    With `dev_fraction` > 0, that share of the non-test part becomes dev (a second hash draw).
    """
    by_id = {r.id: r for r in records}
    out = Splits()
    for r in records:
        rid = _root_id(r, by_id)
        if hash_unit(rid, seed) < test_fraction:
            out.test.append(r)
        elif dev_fraction and hash_unit(rid, seed + 7919) < dev_fraction:
            out.dev.append(r)
        else:
            out.train.append(r)
    return out


def make_splits(
    records: Sequence[Any],
    kind: str = "auto",
    seed: int = 0,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.2,
    test_month: str | None = None,
) -> Splits:
    """Pick the split by config: `time`, `random`, or `auto` (time when every record is dated)."""
    if kind == "auto":
        kind = "time" if records and all(getattr(r, "created_at", None) for r in records) else "random"
    if kind == "time":
        return time_split(records, seed, dev_fraction, test_month)
    if kind == "random":
        return random_split(records, seed, test_fraction, dev_fraction)
    raise ValueError(f"unknown split kind {kind!r}; expected time, random or auto")
