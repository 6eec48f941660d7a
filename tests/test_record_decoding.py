"""The one record decoder (feedback_nlp/core/records.py) that train, predict and serve share,
on hand-made records: the same bad input gets the same message wherever it is sent."""

from __future__ import annotations

import pytest

from feedback_nlp.core.errors import DataValidationError
from feedback_nlp.core.records import (
    Limits,
    QuestionRecord,
    TextRecord,
    TranscriptRecord,
    Turn,
    decode_request,
    iter_jsonl,
)


def test_a_claim_needs_only_text():
    got = decode_request(
        [{"text": "the heel broke"}, {"id": 5, "text": "ok", "language": "de", "label": None}], "claim"
    )
    assert got == [TextRecord("0", "the heel broke"), TextRecord("5", "ok", "de")]


def test_every_problem_is_named_by_index_and_field():
    with pytest.raises(DataValidationError) as e:
        decode_request([{"text": "ok"}, {"text": 3}, {"id": True, "text": "x"}, {"turns": []}], "claim")
    assert e.value.status == 422
    assert [(p.line, p.field) for p in e.value.problems] == [(1, "text"), (2, "id"), (3, "text")]


def test_limits_give_413():
    with pytest.raises(DataValidationError) as e:
        decode_request([{"text": "a"}] * 3, "feedback", Limits(max_records=2))
    assert e.value.status == 413 and e.value.problems[0].field == "<body>"
    with pytest.raises(DataValidationError) as e:
        decode_request([{"text": "abc"}, {"text": "abcd"}], "feedback", Limits(max_chars=3))
    assert e.value.status == 413 and (e.value.problems[0].line, e.value.problems[0].field) == (1, "text")
    with pytest.raises(DataValidationError) as e:  # a malformed record next to a long one: still 413 (too large first)
        decode_request([{"turns": [{"speaker": "customer", "text": "abcd"}]}], "transcript", Limits(max_chars=3))
    assert e.value.status == 413 and e.value.problems[0].field == "turns[0].text"


def test_transcripts_and_questions():
    t = decode_request(
        [{"id": "t", "turns": [{"speaker": "agent", "text": "Hi."}, {"speaker": "customer", "text": "Where?"}]}],
        "transcript",
    )
    assert t == [TranscriptRecord("t", (Turn("agent", "Hi."), Turn("customer", "Where?")))]
    with pytest.raises(DataValidationError, match=r"turns\[1\]\.speaker"):
        decode_request(
            [{"turns": [{"speaker": "agent", "text": "Hi."}, {"speaker": "bot", "text": "x"}]}], "transcript"
        )
    q = decode_request([{"question": "Where is my order?"}, {"text": "Refund?"}], "question")
    assert q == [QuestionRecord("0", "Where is my order?"), QuestionRecord("1", "Refund?")] and q[1].text == "Refund?"


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown record kind"):
        decode_request([{"text": "x"}], "tweet")


def test_jsonl_stream_reports_file_line_and_field(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_bytes(b'{"text": "ok"}\n\n{"narrative": "mapped", "id": "n"}\n{bad\n{"id": "n", "text": "dup"}\n\xff\n')
    items = list(iter_jsonl(p, "claim", {"text": "narrative"}))
    recs = [i for i in items if isinstance(i, TextRecord)]
    probs = [str(i) for i in items if not isinstance(i, TextRecord)]
    assert recs == [TextRecord("1", "ok"), TextRecord("n", "mapped"), TextRecord("n", "dup")]  # ids may repeat
    assert probs == [
        f"{p}:4: field '<line>': invalid JSON: Expecting property name enclosed in double quotes at column 2",
        f"{p}:6: field '<line>': not valid UTF-8 (byte offset 0)",
    ]


BAD_LINES = [
    (b'{"id":"c2"', "invalid JSON: Expecting ',' delimiter at column 11"),
    (
        b'{"id": "c3", "text": "hot \\ud800 plate", "language": "en", "created_at": "2026-01-01", "label": 1}',
        "character 4 is a lone UTF-16 surrogate (not encodable as UTF-8)",
    ),
    (b"[" * 1000 + b"]" * 1000, "invalid JSON: arrays/objects nested deeper than 32 levels"),
    (b'{"id": ' + b"9" * 5000 + b', "text": "x"}', "invalid JSON: an integer of more than 4300 digits"),
    (b'{"a": ' * 40 + b"1" + b"}" * 40, "invalid JSON: arrays/objects nested deeper than 32 levels"),
]


@pytest.mark.parametrize(
    "line,message", BAD_LINES, ids=["truncated", "surrogate", "deep-list", "big-int", "deep-object"]
)
def test_training_and_scoring_readers_give_the_same_message(tmp_path, line, message):
    """train (read_records) and predict (iter_jsonl) read the same bad line the same way."""
    from feedback_nlp.core.records import read_records

    p = tmp_path / "claims.jsonl"
    p.write_bytes(
        b'{"id": "ok", "text": "fine", "language": "en", "created_at": "2026-01-01", "label": 0}\n' + line + b"\n"
    )
    _, train_problems = read_records(p, "claim")
    scored = [i for i in iter_jsonl(p, "claim") if not isinstance(i, TextRecord)]
    assert [str(x) for x in train_problems] == [str(x) for x in scored]
    assert len(scored) == 1 and scored[0].line == 2 and scored[0].message == message, scored


def test_request_records_with_unencodable_text_are_refused_by_index_and_field():
    with pytest.raises(DataValidationError) as e:
        decode_request([{"text": "fine"}, {"text": "hot \ud800 plate"}, {"id": "x\udfff", "text": "ok"}], "claim")
    assert e.value.status == 422
    assert [(p.line, p.field) for p in e.value.problems] == [(1, "text"), (2, "id")]
    assert (
        str(e.value.problems[0])
        == "record 1: field 'text': character 4 is a lone UTF-16 surrogate (not encodable as UTF-8)"
    )


def test_request_body_json_errors_name_the_body():
    from feedback_nlp.core.records import decode_body

    for body, message in [
        (b"[" * 1000 + b"]" * 1000, "nested deeper than 32 levels"),
        (b'[{"id": ' + b"7" * 5000 + b', "text": "x"}]', "more than 4300 digits"),
        (b"\xff[]", "not valid UTF-8"),
        (b"[{]", "invalid JSON"),
    ]:
        with pytest.raises(DataValidationError, match="body: field '<body>'") as e:
            decode_body(body)
        assert message in str(e.value) and e.value.status == 422
