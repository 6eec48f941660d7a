"""The input contract shared by serve and predict.py (feedback_nlp/serving/records.py), on hand-made records."""

from __future__ import annotations

import pytest

from feedback_nlp.serving.records import (
    Limits,
    QuestionRecord,
    RequestError,
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
    with pytest.raises(RequestError) as e:
        decode_request([{"text": "ok"}, {"text": 3}, {"id": True, "text": "x"}, {"turns": []}], "claim")
    assert e.value.status == 422
    assert [(p.index, p.field) for p in e.value.problems] == [(1, "text"), (2, "id"), (3, "text")]


def test_limits_give_413():
    with pytest.raises(RequestError) as e:
        decode_request([{"text": "a"}] * 3, "feedback", Limits(max_records=2))
    assert e.value.status == 413 and e.value.problems[0].field == "<body>"
    with pytest.raises(RequestError) as e:
        decode_request([{"text": "abc"}, {"text": "abcd"}], "feedback", Limits(max_chars=3))
    assert e.value.status == 413 and (e.value.problems[0].index, e.value.problems[0].field) == (1, "text")
    with pytest.raises(RequestError) as e:  # a malformed record next to a long one: still 413 (too large first)
        decode_request([{"turns": [{"speaker": "customer", "text": "abcd"}]}], "transcript", Limits(max_chars=3))
    assert e.value.status == 413 and e.value.problems[0].field == "turns[0].text"


def test_transcripts_and_questions():
    t = decode_request(
        [{"id": "t", "turns": [{"speaker": "agent", "text": "Hi."}, {"speaker": "customer", "text": "Where?"}]}],
        "transcript",
    )
    assert t == [TranscriptRecord("t", (Turn("agent", "Hi."), Turn("customer", "Where?")))]
    with pytest.raises(RequestError, match=r"turns\[1\]\.speaker"):
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
