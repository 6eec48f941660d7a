"""Split properties: disjoint, month boundary, translations follow sources, stable on append."""

from datetime import UTC, datetime

from feedback_nlp.core.records import Claim
from feedback_nlp.datamodules.splits import hash_unit, make_splits, random_split, time_split


def claim(i, month, label=1, source=None, day=15):
    return Claim(
        id=str(i),
        text=f"text {i}",
        language="en",
        created_at=datetime(2026, month, day, tzinfo=UTC),
        label=label,
        source_id=source,
    )


def corpus(n=600):
    recs = [claim(i, 1 + i % 6, label=None if i % 5 == 0 else i % 2) for i in range(n)]
    recs += [claim(f"{i}-de", 1 + i % 6, label=recs[i].label, source=str(i)) for i in range(0, n, 3)]
    return recs


def ids(xs):
    return {r.id for r in xs}


def test_time_split_month_boundary_and_traffic():
    recs = corpus()
    s = time_split(recs, seed=1)
    assert s.test_month == "2026-06"
    assert all(r.created_at.month == 6 and r.label is not None for r in s.test)
    assert ids(s.traffic) == {r.id for r in recs if r.created_at.month == 6}
    assert all(r.created_at.month < 6 and r.label is not None for r in s.train + s.dev)
    assert not (ids(s.train) & ids(s.dev)) and not (ids(s.train + s.dev) & ids(s.test))
    assert 0.05 < len(s.dev) / (len(s.dev) + len(s.train)) < 0.15  # 90:10


def test_boundary_is_calendar_month_not_30_days():
    recs = [claim("a", 5, day=31), claim("b", 6, day=1), claim("c", 6, day=30)]
    s = time_split(recs)
    assert ids(s.test) == {"b", "c"} and "a" in ids(s.train + s.dev)


def test_translations_follow_source():
    recs = corpus()
    for s in (time_split(recs, seed=3), random_split(recs, seed=3, dev_fraction=0.1)):
        where = {r.id: name for name in ("train", "dev", "test") for r in getattr(s, name)}
        for r in recs:
            if r.source_id and r.source_id in where:
                assert where[r.id] == where[r.source_id]


def test_assignment_stable_when_records_appended():
    recs = corpus(300)
    before = time_split(recs, seed=0)
    more = recs + [claim(f"new{i}", 1 + i % 5) for i in range(100)]
    after = time_split(more, seed=0)
    assert ids(before.train) <= ids(after.train) and ids(before.dev) <= ids(after.dev)
    r_before, r_after = random_split(recs, 0), random_split(more, 0)
    assert ids(r_before.test) <= ids(r_after.test) and ids(r_before.train) <= ids(r_after.train)


def test_random_split_ratio_and_seed():
    recs = [claim(i, 1) for i in range(2000)]
    s = random_split(recs, seed=5)
    assert abs(len(s.test) / 2000 - 0.2) < 0.03
    assert ids(random_split(recs, seed=6).test) != ids(s.test)


def test_hash_unit_is_the_documented_sha256_draw_in_every_process():
    """Splits must not move between runs: hash_unit is sha256("seed:key")'s first 8 bytes / 2**64,
    never Python's per-process salted hash(). Rebuilt here, and compared across interpreters
    started with different PYTHONHASHSEED."""
    import hashlib
    import os
    import subprocess
    import sys

    keys = ["x", "claim-42", "ü-ñ", ""]
    for seed in (0, 1, 2):
        for key in keys:
            digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
            assert hash_unit(key, seed) == int.from_bytes(digest[:8], "big") / 2**64
    assert hash_unit("x", 1) != hash_unit("x", 2)
    code = f"from feedback_nlp.datamodules.splits import hash_unit; print([hash_unit(k, 1) for k in {keys!r}])"
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(h)},
        ).stdout.strip()
        for h in (1, 2)
    }
    assert outs == {str([hash_unit(k, 1) for k in keys])}


def test_auto_uses_random_for_undated():
    from feedback_nlp.core.records import Feedback

    recs = [Feedback(str(i), "t", ["a"], ["b"]) for i in range(50)]
    s = make_splits(recs, "auto", seed=0)
    assert len(s.train) + len(s.dev) + len(s.test) == 50 and s.test_month is None and s.dev
