"""CPSC SaferProducts export -> two-level feedback records (feedback_nlp/scripts/cpsc_to_issues.py),
on a hand-written fixture."""

import pytest

from feedback_nlp.core.issue_sets import join_issues, parse_issues
from feedback_nlp.core.records import load_records
from feedback_nlp.scripts.cpsc_to_issues import SEVERITY_ISSUES, convert, main, phrase, product_type
from tests.test_cpsc_mapping import DISCLAIMER

HEADER = "Report No.,Report Date,Product Description,Product Type,Incident Description,(Primary) Victim Severity"


def row(no, description, ptype, text, severity, date="3/11/2011"):
    q = lambda s: '"' + s.replace('"', '""') + '"'  # noqa: E731
    return ",".join([no, date + " ", q(description), q(ptype), q(text), q(severity)])


ROWS = [
    row(
        "R-1",
        "Fisher Price Little People firetruck",
        "Toy Vehicles (Excluding Riding Toys) (5021)",
        "The ladder   snapped and cut his finger.",
        "Injury - Seen by Medical Professional",
    ),
    row(
        "R-2",
        "Dolls, plush: the 'Bunny' (see http://example.com/x)",
        "Dolls, Plush Toys, and Action Figures (1394)",
        "Stuffing came out.",
        "Incident, No Injury",
        date="1/2/2015",
    ),
    row(
        "R-3",
        "Slime",
        "Molding Compounds (1376)",
        "Rash on both hands.",
        "Injury - First Aid Received by Non-Medical Professional",
    ),
    row("R-4", "a b c d e f g h i j k", "Building Sets (1345)", "Too long a description.", "Death"),
    row("R-5", "Remote control car", "Toy Vehicles (Excluding Riding Toys) (5021)", "Battery got hot.", "Unspecified"),
    row("R-6", "Remote control car", "Toy Vehicles (Excluding Riding Toys) (5021)", "", "Death"),
    row(
        "R-7",
        "Magnet building set",
        "Building Sets (1345)",
        "A child died after swallowing magnets.",
        "Death",
        date="2/28/2025",
    ),
]


@pytest.fixture
def exports(tmp_path):
    src = tmp_path / "cpsc"
    src.mkdir()
    (src / "A.csv").write_text(DISCLAIMER + "\n" + HEADER + "\n" + "\n".join(ROWS) + "\n", encoding="utf-8")
    return src


def test_fields_become_two_levels_of_two_issues(exports):
    records, stats = convert(sorted(exports.glob("*.csv")))
    assert [r["id"] for r in records] == ["R-1", "R-2", "R-7"]  # by date
    r1, r2, r7 = records
    assert r1["text"] == "The ladder snapped and cut his finger."
    assert r1["coarse"] == ["toy vehicles (excluding riding toys)", "injury"]
    assert r1["granular"] == ["fisher price little people firetruck", "seen by medical professional"]
    # commas, URLs and quotes leave the phrase (a comma would read back as two issues)
    assert r2["coarse"] == ["dolls plush toys and action figures", "no injury"]
    assert r2["granular"] == ["dolls plush the 'bunny' see", "incident without injury"]
    assert r7["coarse"][1] == "death" and r7["granular"][1] == "death"
    for r in records:
        for level in ("coarse", "granular"):
            assert parse_issues(join_issues(r[level])) == r[level]
    assert stats == {
        "reports": 7,
        "kept": 3,
        "duplicate": 0,
        "no_narrative": 1,
        "no_severity": 1,
        "no_product_type": 0,
        "description_length": 2,  # "Slime" (1 word) and the 11-word one
    }


def test_every_severity_seen_in_the_stored_exports_is_mapped():
    # the 11 values of `(Primary) Victim Severity` listed in the data's PROVENANCE.md
    listed = {
        "Incident, No Injury",
        "Injury - First Aid Received by Non-Medical Professional",
        "Injury - No First Aid or Medical Attention Received",
        "No Incident, No Injury",
        "Injury - Emergency Department Treatment Received",
        "Injury - Seen by Medical Professional",
        "Injury - Hospital Admission",
        "Injury - Level of care not known",
        "Unspecified",
        "",
        "Death",
    }
    assert set(SEVERITY_ISSUES) == listed


def test_phrase_rules():
    assert product_type("Games or Game Parts (Excl Marbles & Computer Games) (5019)") == (
        "games or game parts (excl marbles & computer games)"
    )
    assert phrase("  Hover Soccer Ball toy. ") == "hover soccer ball toy"
    assert phrase("www.toys.com/item Kid's 3-in-1 set!") == "kid's 3-in-1 set"


def test_cli_writes_records_the_feedback_loader_accepts(exports, tmp_path, capsys):
    out = tmp_path / "feedback.jsonl"
    assert main(["--src", str(exports), "--out", str(out)]) == 0
    assert "3 feedback from 1 files" in capsys.readouterr().out
    loaded = load_records(out, "feedback")
    assert [r.id for r in loaded] == ["R-1", "R-2", "R-7"] and loaded[0].granular[1] == "seen by medical professional"
    with pytest.raises(SystemExit) as e:
        main(["--src", str(tmp_path / "nothing"), "--out", str(out)])
    assert e.value.code == 2
