"""Every bad-input class is rejected with file, line and field, all problems listed at once."""

import json

import pytest

from feedback_nlp.core.errors import DataValidationError
from feedback_nlp.core.records import Claim, Feedback, Transcript, load_records


def write(tmp_path, lines, name="in.jsonl"):
    p = tmp_path / name
    p.write_bytes(
        b"\n".join(x if isinstance(x, bytes) else (x if isinstance(x, str) else json.dumps(x)).encode() for x in lines)
        + b"\n"
    )
    return p


FB = {"id": "f1", "text": "No cable. Box opened.", "coarse": ["missing parts issue"], "granular": ["no cable"]}
CL = {"id": "c1", "text": "Rash after wearing", "language": "en", "created_at": "2026-03-02T10:00:00", "label": 1}
TR = {
    "id": "t1",
    "turns": [{"speaker": "customer", "text": "Hi."}, {"speaker": "agent", "text": "Hello!"}],
    "label": "returns",
}


def problems(path, kind):
    with pytest.raises(DataValidationError) as e:
        load_records(path, kind)
    return e.value.problems, str(e.value)


def test_valid_records_parse_and_keep_extra_fields(tmp_path):
    p = write(tmp_path, [{**FB, "summary": "missing cable", "language": "en", "created_at": "2026-01-05"}])
    (rec,) = load_records(p, "feedback")
    assert isinstance(rec, Feedback) and rec.coarse == ["missing parts issue"]
    assert rec.extra == {"summary": "missing cable"} and rec.created_at.year == 2026
    (c,) = load_records(write(tmp_path, [{**CL, "escalated": True, "source_id": 7}], "c.jsonl"), "claim")
    assert isinstance(c, Claim) and c.label == 1 and c.source_id == "7" and c.escalated is True
    (t,) = load_records(write(tmp_path, [{**TR, "handle_time": 12}], "t.jsonl"), "transcript")
    assert isinstance(t, Transcript) and t.turns[1].speaker == "agent" and t.handle_time == 12.0


@pytest.mark.parametrize(
    "kind,bad,field,needle",
    [
        ("feedback", "{not json", "<line>", "invalid JSON"),
        ("feedback", {k: v for k, v in FB.items() if k != "coarse"}, "coarse", "missing"),
        ("feedback", {**FB, "coarse": "missing parts"}, "coarse", "list"),
        ("feedback", {**FB, "text": "   "}, "text", "empty"),
        ("feedback", {**FB, "created_at": "yesterday"}, "created_at", "unparseable"),
        ("claim", {**CL, "label": 2}, "label", "1, 0 or null"),
        ("claim", {**CL, "case_type": "sunburn"}, "case_type", "expected one of"),
        ("claim", {**CL, "escalated": "yes"}, "escalated", "true/false"),
        ("claim", {k: v for k, v in CL.items() if k != "created_at"}, "created_at", "missing"),
        ("transcript", {**TR, "turns": [{"speaker": "bot", "text": "hi"}]}, "turns[0].speaker", "unknown speaker"),
        ("transcript", {**TR, "turns": [{"speaker": "agent", "text": ""}]}, "turns[0].text", "empty"),
        ("transcript", {**TR, "handle_time": "long"}, "handle_time", "number"),
        ("question", {"id": "q1", "question": 5}, "question", "string"),
    ],
)
def test_each_bad_input_class_names_file_line_field(tmp_path, kind, bad, field, needle):
    good = {"feedback": FB, "claim": CL, "transcript": TR, "question": {"id": "q0", "question": "where?"}}[kind]
    p = write(tmp_path, [good, bad])
    probs, msg = problems(p, kind)
    assert len(probs) == 1
    assert (probs[0].line, probs[0].field) == (2, field)
    assert needle in probs[0].message and f"{p}:2: field '{field}'" in msg


def test_non_utf8_and_duplicate_ids_and_all_problems_listed(tmp_path):
    p = write(tmp_path, [FB, b'{"id": "f2", "text": "caf\xe9"}', FB, {**FB, "id": "f3", "text": ""}])
    probs, msg = problems(p, "feedback")
    assert [(x.line, x.field) for x in probs] == [(2, "<line>"), (3, "id"), (4, "text")]
    assert "UTF-8" in probs[0].message and "duplicate id 'f1'" in probs[1].message
    assert "3 problem(s)" in msg


def test_problem_list_is_capped(tmp_path):
    p = write(tmp_path, ["{bad"] * 80)
    _, msg = problems(p, "feedback")
    assert "80 problem(s)" in msg and "and 30 more" in msg


def test_field_map_reads_other_schemas(tmp_path):
    p = write(
        tmp_path, [{"id": 1, "narrative": "Burned my hand", "lang": "en", "created_at": "2026-01-01", "label": 1}]
    )
    (c,) = load_records(p, "claim", field_map={"text": "narrative", "language": "lang"})
    assert c.text == "Burned my hand" and c.language == "en" and c.id == "1"


def test_missing_file_is_a_clear_error(tmp_path):
    probs, msg = problems(tmp_path / "nope.jsonl", "claim")
    assert "file not found" in msg
