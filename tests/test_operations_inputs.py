"""The operating loop's own inputs, field by field: outcome label files (`monitor --outcomes`)
and KPI bounds (`monitor --bound/--bounds`, `compare --rule`).

Why separate from test_monitor / test_compare: those run the jobs end to end on one good file;
each malformed field here must be named with its file and line (or the rule's text) before any
KPI is computed, and a revised decision must replace the older one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feedback_nlp.core.errors import DataValidationError
from feedback_nlp.operations.outcomes import OutcomeFileError, read_outcomes
from feedback_nlp.operations.rules import RuleError, load_rules, parse_rule


def _jsonl(path, lines):
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


def test_every_bad_outcome_field_is_named_with_its_line(tmp_path):
    good = {"id": "c1", "label": 1, "labelled_at": "2026-07-02"}
    path = _jsonl(
        tmp_path / "labels.jsonl",
        [
            good,
            "{not json",
            "[1, 2]",
            {"id": "", "label": 1, "labelled_at": "2026-07-02"},
            {"id": "c3", "labelled_at": "2026-07-02"},
            {"id": "c4", "label": 2, "labelled_at": "2026-07-02"},
            {"id": "c5", "label": 1, "labelled_at": 20260702},
            {"id": "c6", "label": 1, "labelled_at": "yesterday"},
            {"id": "c7", "label": 1, "labelled_at": "2026-07-02", "escalated": "yes"},
        ],
    )
    with pytest.raises(DataValidationError) as e:
        read_outcomes([path], binary=True)
    where = [(p.line, p.field) for p in e.value.problems]
    assert where == [
        (2, "<line>"),
        (3, "<line>"),
        (4, "id"),
        (5, "label"),
        (6, "label"),
        (7, "labelled_at"),
        (8, "labelled_at"),
        (9, "escalated"),
    ]
    assert all(p.path == str(path) for p in e.value.problems)
    assert "expected 1, 0, true or false" in str(e.value)


def test_the_latest_decision_wins_and_class_labels_are_read_as_names(tmp_path):
    path = _jsonl(
        tmp_path / "labels.jsonl",
        [
            {"id": "c1", "label": 0, "labelled_at": "2026-07-02T10:00:00"},
            {"id": "c1", "label": True, "labelled_at": "2026-07-05T10:00:00+02:00", "escalated": True},
            {"id": 7, "label": 1, "labelled_at": "2026-07-01"},
            {"id": "c1", "label": 0, "labelled_at": "2026-07-03"},  # older than the revision: ignored
        ],
    )
    out = read_outcomes([path], binary=True)
    assert out["c1"].label == 1 and out["c1"].escalated is True
    assert out["c1"].labelled_at == datetime(2026, 7, 5, 8, 0, tzinfo=UTC)  # normalised to UTC
    assert out["7"].label == 1 and out["7"].escalated is None
    classes = _jsonl(tmp_path / "classes.jsonl", [{"id": "q1", "label": "billing", "labelled_at": "2026-07-01"}])
    assert read_outcomes([classes], binary=False)["q1"].label == "billing"
    bad = _jsonl(tmp_path / "bad.jsonl", [{"id": "q1", "label": True, "labelled_at": "2026-07-01"}])
    with pytest.raises(DataValidationError, match="non-empty class name"):
        read_outcomes([bad], binary=False)


def test_parquet_rows_are_numbered_and_unreadable_files_refused(tmp_path):
    table = pa.table(
        {
            "id": ["c1", "c2"],
            "label": [1, 5],
            "labelled_at": [datetime(2026, 7, 1), datetime(2026, 7, 2)],
        }
    )
    pq.write_table(table, tmp_path / "labels.parquet")
    with pytest.raises(DataValidationError) as e:
        read_outcomes([tmp_path / "labels.parquet"], binary=True)
    assert [(p.line, p.field) for p in e.value.problems] == [(2, "label")]
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(OutcomeFileError, match="not a readable Parquet file"):
        read_outcomes([tmp_path / "broken.parquet"], binary=True)
    with pytest.raises(OutcomeFileError, match="no such file"):
        read_outcomes([tmp_path / "missing.jsonl"], binary=True)


def test_rules_parse_scope_metric_operator_and_value():
    rule = parse_rule("week/de: precision >= 0.6")
    assert (rule.window, rule.language, rule.metric, rule.op, rule.value) == ("week", "de", "precision", ">=", 0.6)
    assert rule.applies("week", "de") and not rule.applies("week", "fr") and not rule.applies("day", "de")
    assert rule.holds(0.6) and not rule.holds(0.59)
    assert rule.violation(0.412) == "precision 0.412 < 0.6"
    anywhere = parse_rule("psi<0.2")
    assert anywhere.applies("month", "pl") and anywhere.violation(0.3) == "psi 0.3 >= 0.2"
    for text, message in [
        ("precision", "expected \\[WINDOW"),
        ("recall>=high", "is not a number"),
        ("recall>=inf", "finite number"),
    ]:
        with pytest.raises(RuleError, match=message):
            parse_rule(text)
    with pytest.raises(RuleError, match="unknown metric 'recal' \\(known: precision, recall\\)"):
        parse_rule("recal>=0.9", metrics=["recall", "precision"])
    with pytest.raises(RuleError, match="unknown window 'fortnight'"):
        parse_rule("fortnight:recall>=0.9", windows=["day", "week", "month"])


def test_bounds_files_in_each_documented_form(tmp_path):
    listed = tmp_path / "list.yaml"
    listed.write_text("- recall>=0.9\n- week:psi<=0.2\n", encoding="utf-8")
    assert [r.text for r in load_rules(listed)] == ["recall>=0.9", "week:psi<=0.2"]
    wrapped = tmp_path / "wrapped.yaml"
    wrapped.write_text("bounds: [precision>=0.5]\n", encoding="utf-8")
    assert [r.metric for r in load_rules(wrapped)] == ["precision"]
    ranges = tmp_path / "ranges.yaml"
    ranges.write_text("psi: {max: 0.25}\nvolume: {min: 10, max: 500}\n", encoding="utf-8")
    assert [(r.metric, r.op, r.value) for r in load_rules(ranges)] == [
        ("psi", "<=", 0.25),
        ("volume", ">=", 10.0),
        ("volume", "<=", 500.0),
    ]
    for name, text, message in [
        ("bad.yaml", "a: [b\n", "not valid YAML"),
        ("shape.yaml", "psi: {above: 1}\n", "psi: expected \\{min: X, max: Y\\}"),
        ("scalar.yaml", "42\n", "expected a list of rules"),
    ]:
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(RuleError, match=message):
            load_rules(tmp_path / name)
    with pytest.raises(RuleError, match="no such file"):
        load_rules(tmp_path / "absent.yaml")


def test_id_lists_read_plain_and_json_lines_and_name_a_bad_line(tmp_path):
    """One reader for every deletion list (compare --delete-ids, repo delete/update --ids)."""
    from feedback_nlp.core.records import read_id_list
    from feedback_nlp.operations.compare import read_deletions
    from feedback_nlp.universal_model.updates import read_ids

    ids = tmp_path / "ids.txt"
    ids.write_text('c1\n\n  {"id": 7, "reason": "gdpr"}\nc1\n', encoding="utf-8")
    assert read_id_list(ids) == [(1, "c1"), (3, "7"), (4, "c1")]
    assert read_deletions(ids) == {"c1", "7"}
    assert read_ids([str(ids)]) == (["c1", "7", "c1"], [(str(ids), 1), (str(ids), 3), (str(ids), 4)])
    assert read_ids(["a", "b"]) == (["a", "b"], [("<command line>", 1), ("<command line>", 2)])
    ids.write_text('c1\n{"ID": 3}\n', encoding="utf-8")
    with pytest.raises(DataValidationError) as e:
        read_deletions(ids)
    assert [(p.path, p.line, p.field) for p in e.value.problems] == [(str(ids), 2, "id")]
