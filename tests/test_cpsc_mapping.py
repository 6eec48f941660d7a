"""CPSC SaferProducts export -> claim records (feedback_nlp/scripts/cpsc_to_claims.py), on a hand-written fixture."""

import json

import pytest

from feedback_nlp.core.records import load_records
from feedback_nlp.scripts.cpsc_to_claims import (
    SEVERITY_LABEL,
    CPSCFormatError,
    convert,
    main,
    map_row,
    parse_report_date,
    read_cpsc_csv,
)

HEADER = (
    "Report No.,Report Date,Sent to Manufacturer / Importer / Private Labeler,Publication Date,"
    "Category of Submitter,Product Description,Product Category,Product Sub Category,Product Type,"
    "Product Code,Incident Description,(Primary) Victim Severity"
)
DISCLAIMER = (
    "Disclaimer: CPSC does not guarantee the accuracy, completeness, or adequacy of the contents "
    "of the Publicly Available Consumer Product Safety Information Database,,,,,,,,,,,"
)


def row(no, date, text, severity, ptype="Toys (1234)"):
    quoted = '"' + text.replace('"', '""') + '"'
    return f"{no},{date} ,,{date} ,Consumer,A toy,Toys & Children,Toys,{ptype},1234,{quoted},\"{severity}\""


ROWS = [
    row("R-1", "3/11/2011", "My son cut his finger on a sharp edge.", "Injury - Seen by Medical Professional"),
    row("R-2", "12/1/2024", 'The wheel came off.\r\nNobody was hurt, "luckily".', "Incident, No Injury"),
    row("R-3", "12/15/2024", "Choking hazard, small parts.", "No Incident, No Injury"),
    row("R-4", "1/2/2025", "Severity was not given.", "Unspecified"),
    row("R-5", "1/3/2025", "", "Death"),  # no narrative: skipped
    row("R-6", "2/28/2025", "A child died after swallowing a magnet.", "Death"),
    row("R-7", "2/28/2025", "The battery leaked onto her skin.", ""),
]


@pytest.fixture
def exports(tmp_path):
    src = tmp_path / "cpsc"
    src.mkdir()
    # file A: BOM, export-name line + disclaimer (header on line 3), CRLF; file B: disclaimer only
    (src / "A.csv").write_bytes(
        (
            "\ufeffSearchResults_IncidentReport_05262025_1947\r\n"
            + DISCLAIMER
            + "\r\n"
            + HEADER
            + "\r\n"
            + "\r\n".join(ROWS[:4])
            + "\r\n"
        ).encode("utf-8")
    )
    (src / "B.csv").write_text(
        DISCLAIMER + "\n" + HEADER + "\n" + "\n".join(ROWS[4:] + ROWS[:1]) + "\n", encoding="utf-8"
    )
    return src


def test_reads_past_disclaimer_and_keeps_multiline_narratives(exports):
    rows = read_cpsc_csv(exports / "A.csv")
    assert [r["Report No."] for r in rows] == ["R-1", "R-2", "R-3", "R-4"]
    # quoted line breaks survive (normalised to \n) and doubled quotes are unescaped
    assert rows[1]["Incident Description"] == 'The wheel came off.\nNobody was hurt, "luckily".'
    with pytest.raises(CPSCFormatError, match="no header"):
        bad = exports / "bad.csv"
        bad.write_text("just,a,table\n1,2,3\n")
        read_cpsc_csv(bad)


def test_mapping_of_fields_and_severities(exports):
    claims, stats = convert(sorted(exports.glob("*.csv")))
    by_id = {c["id"]: c for c in claims}
    assert [c["id"] for c in claims] == ["R-1", "R-2", "R-3", "R-4", "R-6", "R-7"]  # by date; R-5 skipped
    assert stats["no_narrative"] == 1 and stats["duplicate"] == 1 and stats["reports"] == 8
    assert {k: by_id[k]["label"] for k in by_id} == {"R-1": 1, "R-2": 0, "R-3": 0, "R-4": None, "R-6": 1, "R-7": None}
    assert by_id["R-1"]["created_at"] == "2011-03-11T00:00:00+00:00"
    assert by_id["R-1"]["text"] == "My son cut his finger on a sharp edge."
    assert by_id["R-2"]["case_type"] == "not_product_safety" and by_id["R-6"]["case_type"] is None
    assert all(c["language"] == "en" and c["escalated"] is None for c in claims)
    assert by_id["R-1"]["product_type"] == "Toys (1234)" and by_id["R-1"]["severity"].startswith("Injury")


def test_every_known_severity_has_a_documented_label():
    injury = [s for s in SEVERITY_LABEL if s.startswith("Injury")]
    assert len(injury) == 6 and all(SEVERITY_LABEL[s] == 1 for s in injury) and SEVERITY_LABEL["Death"] == 1
    assert SEVERITY_LABEL["Incident, No Injury"] == 0 and SEVERITY_LABEL["No Incident, No Injury"] == 0
    assert SEVERITY_LABEL["Unspecified"] is None and SEVERITY_LABEL[""] is None
    with pytest.raises(CPSCFormatError, match="unknown severity"):
        map_row(
            {
                "Report No.": "X",
                "Incident Description": "t",
                "(Primary) Victim Severity": "Mild",
                "Report Date": "1/1/2020",
            }
        )
    with pytest.raises(CPSCFormatError, match="Report Date"):
        parse_report_date("2020-01-01")


def test_unlabeled_fraction_hides_labels_but_keeps_truth(exports):
    claims, stats = convert(sorted(exports.glob("*.csv")), unlabeled_fraction=0.999, seed=3)
    hidden = [c for c in claims if "true_label" in c]
    assert stats["hidden"] == len(hidden) == 4  # every labeled report (R-4, R-7 had no label to hide)
    assert all(c["label"] is None and c["true_label"] in (0, 1) for c in hidden)
    assert convert(sorted(exports.glob("*.csv")), unlabeled_fraction=0.0)[1]["hidden"] == 0


def test_cli_writes_claims_that_validate(exports, tmp_path):
    out = tmp_path / "claims.jsonl"
    assert main(["--src", str(exports), "--out", str(out), "--unlabeled-fraction", "0"]) == 0
    records = load_records(out, "claim")
    assert len(records) == 6 and records[0].created_at.year == 2011
    assert json.loads(out.read_text().splitlines()[0])["severity"] == "Injury - Seen by Medical Professional"
