"""Property-based tests of the record readers (all four kinds): any line, any field value.

Why: users feed JSONL written by other teams. Whatever a line holds -- a date at the edge of the
representable range, a 400-digit number, 100,000 nested brackets, random bytes -- the reader
must either accept the record or report it as `file:line: field '...'` through
DataValidationError; never a traceback from deep inside json or datetime. Hand-written
examples missed these; the generators below are biased toward range edges on purpose.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedback_nlp.core.errors import DataValidationError
from feedback_nlp.core.records import PARSERS, load_records, read_records

VALID = {
    "feedback": {
        "id": "f0",
        "text": "No cable. Box opened.",
        "coarse": ["missing parts issue"],
        "granular": ["no cable"],
        "created_at": "2026-01-05T10:00:00",
        "language": "en",
    },
    "claim": {
        "id": "c0",
        "text": "Rash after wearing",
        "language": "en",
        "created_at": "2026-03-02T10:00:00",
        "label": 1,
        "case_type": "allergic_reaction",
        "escalated": False,
        "source_id": "s0",
    },
    "transcript": {
        "id": "t0",
        "turns": [{"speaker": "customer", "text": "Hi."}, {"speaker": "agent", "text": "Hello!"}],
        "label": "returns",
        "handle_time": 12.5,
        "created_at": "2026-01-05",
        "main_question": "Hi.",
    },
    "question": {"id": "q0", "question": "Where is my order?"},
}
KINDS = sorted(VALID)
assert set(KINDS) == set(PARSERS)  # a new record kind must be added here

MIN_NAIVE, MAX_NAIVE = datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)
# The first and last representable moments, and the issue's two examples, are always candidates.
naive_datetimes = st.one_of(
    st.sampled_from([MIN_NAIVE, MAX_NAIVE, datetime(9999, 12, 31, 23), datetime(1, 1, 1, 0)]),
    st.datetimes(min_value=MIN_NAIVE, max_value=MAX_NAIVE),
)
offsets = st.one_of(
    st.none(),
    st.sampled_from([timedelta(hours=-5), timedelta(hours=5)]),
    st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timedelta(minutes=m)),
)


def iso(naive: datetime, offset: timedelta | None) -> str:
    return (naive if offset is None else naive.replace(tzinfo=timezone(offset))).isoformat()


date_strings = st.builds(iso, naive_datetimes, offsets)
huge_ints = st.integers(min_value=300, max_value=4300).flatmap(
    lambda digits: st.sampled_from([int("9" * digits), -int("9" * digits)])
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    date_strings,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)
# Raw JSON text of a value: json.dumps cannot write what only a hand-edited file contains.
deep = st.integers(min_value=1, max_value=120_000).flatmap(
    lambda n: st.sampled_from(["[" * n + "]" * n, "[" * n, '{"a": ' * n + "1" + "}" * n])
)
too_many_digits = st.integers(min_value=4301, max_value=6000).map(lambda n: "9" * n)
raw_values = st.one_of(json_values.map(json.dumps), deep, too_many_digits)


def write_lines(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def record_text(fields: dict[str, str]) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in fields.items()) + "}"


def check_problems(path: Path, kind: str, bad_line: int, allowed_fields: set[str]):
    """The property: read_records returns, the good line 1 survives, every problem names the
    file, the bad line and one of the allowed fields; load_records raises the same as
    DataValidationError with `file:line: field` text."""
    records, problems = read_records(path, kind)
    assert records and records[0].id == VALID[kind]["id"]
    for p in problems:
        assert (p.path, p.line) == (str(path), bad_line)
        assert p.field.split("[")[0].split(".")[0] in allowed_fields, p
        assert p.message.strip()
    if problems:
        with pytest.raises(DataValidationError) as e:
            load_records(path, kind)
        assert f"{path}:{bad_line}: field '{problems[0].field}'" in str(e.value)
    return records, problems


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_any_value_in_any_field_is_accepted_or_named(tmp_path_factory, kind, data):
    base = VALID[kind]
    key = data.draw(st.sampled_from([*base, "extra_field"]), label="field")
    value = data.draw(raw_values, label="value")
    fields = {k: json.dumps(v) for k, v in base.items()}
    fields["id"] = json.dumps(base["id"] + "-2")  # not a duplicate of line 1, unless the draw makes it one
    fields[key] = value
    good = json.dumps(base).encode()
    path = write_lines(tmp_path_factory.mktemp(kind), [good, record_text(fields).encode()])
    check_problems(path, kind, 2, {key, "<line>"})


@pytest.mark.parametrize("kind", ["feedback", "claim", "transcript"])
@given(naive=naive_datetimes, offset=offsets)
def test_created_at_is_the_same_instant_in_utc_or_named_out_of_range(tmp_path_factory, kind, naive, offset):
    value = iso(naive, offset)
    row = {**VALID[kind], "id": "x2", "created_at": value}
    path = write_lines(tmp_path_factory.mktemp(kind), [json.dumps(VALID[kind]).encode(), json.dumps(row).encode()])
    try:  # the reference: naive arithmetic, which overflows exactly when the UTC instant is unrepresentable
        expected = naive - (offset or timedelta(0))
    except OverflowError:
        expected = None
    records, problems = check_problems(path, kind, 2, {"created_at"})
    if expected is None:
        assert len(problems) == 1 and "out of range" in problems[0].message and value in problems[0].message
    else:
        assert not problems and records[1].created_at == expected.replace(tzinfo=UTC)


@given(value=st.one_of(huge_ints, st.floats(), st.integers(-(10**6), 10**6)))
def test_handle_time_numbers_are_finite_floats_or_named(tmp_path_factory, value):
    row = {**VALID["transcript"], "id": "t2", "handle_time": value}
    path = write_lines(
        tmp_path_factory.mktemp("ht"), [json.dumps(VALID["transcript"]).encode(), json.dumps(row).encode()]
    )
    records, problems = check_problems(path, "transcript", 2, {"handle_time"})
    try:
        expected = float(value)
    except OverflowError:
        expected = float("inf")
    if expected in (float("inf"), float("-inf")) or expected != expected:
        assert len(problems) == 1 and problems[0].field == "handle_time"
    else:
        assert not problems and records[1].handle_time == expected


malformed_lines = st.one_of(
    deep.map(str.encode),
    too_many_digits.map(str.encode),
    st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b and b.strip()),
    st.text(min_size=1, max_size=40).filter(lambda s: "\n" not in s and s.strip()).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
)


@pytest.mark.parametrize("kind", KINDS)
@given(line=malformed_lines)
def test_any_line_is_accepted_or_named(tmp_path_factory, kind, line):
    path = write_lines(tmp_path_factory.mktemp(kind), [json.dumps(VALID[kind]).encode(), line])
    check_problems(path, kind, 2, {"<line>", *VALID[kind], "label", "text", "turns", "question", "created_at"})


@pytest.mark.parametrize(
    "line,needle",
    [
        (b"[" * 100_000, "nested deeper than"),
        (b'{"id": "x", "text": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested deeper than"),
        (b'{"id": ' + b"9" * 5000 + b"}", "digits"),
    ],
    ids=["100000-brackets", "nested-value", "5000-digit-int"],
)
def test_issue_examples_of_unparseable_lines(tmp_path, line, needle):
    path = write_lines(tmp_path, [json.dumps(VALID["feedback"]).encode(), line])
    with pytest.raises(DataValidationError) as e:
        load_records(path, "feedback")
    [p] = e.value.problems
    assert (p.line, p.field) == (2, "<line>") and needle in p.message


@pytest.mark.parametrize(
    "kind,field,value,needle",
    [
        ("feedback", "created_at", "9999-12-31T23:00:00-05:00", "out of range"),
        ("claim", "created_at", "0001-01-01T00:00:00+05:00", "out of range"),
        ("transcript", "created_at", "9999-12-31T23:00:00-05:00", "out of range"),
        ("transcript", "handle_time", int("9" * 400), "too large"),
    ],
    ids=["feedback-9999", "claim-0001", "transcript-9999", "transcript-400-digits"],
)
def test_issue_examples_of_bad_values(tmp_path, kind, field, value, needle):
    path = write_lines(tmp_path, [json.dumps({**VALID[kind], field: value}).encode()])
    with pytest.raises(DataValidationError) as e:
        load_records(path, kind)
    [p] = e.value.problems
    assert (p.line, p.field) == (1, field) and needle in p.message
    assert str(e.value).count(f"{path}:1: field '{field}'") == 1
