"""Map CPSC SaferProducts.gov toy incident reports to two-level feedback records (paper 000 format).

    python -m feedback_nlp.scripts.cpsc_to_issues --src ../shared/data/cpsc_saferproducts_toys \
        --out data/cpsc_issues/feedback.jsonl

Why: no aspect-based review set is stored here, and the multi-level issue recipe must be measured
on real text as well as on the synthetic demo (issue 26). CPSC reports are real consumer-written
narratives with two fields that form a coarse / fine hierarchy the narrative states or implies.
This is NOT the paper's issue taxonomy; it is a two-level *incident* description:

- coarse: [the CPSC Product Type without its code, e.g. "toy vehicles (excluding riding toys)"
  (44 values kept), the outcome "injury", "death" or "no injury" (from the victim severity)]
- granular: [the submitter's own Product Description, e.g. "fisher price little people
  firetruck" (free text), the level of care, e.g. "emergency department treatment" (9 values)]

Rules, all in this file: the narrative is the text (whitespace collapsed, CPSC's `[REDACTED]`
kept as written); reports without a narrative, with an Unspecified or blank severity, or whose
cleaned product description is not 2-10 words long (URLs, marketing copy and pasted spec sheets
are longer) are dropped, and the counts are printed. Commas inside a phrase become spaces (the
model separates issues by ", "). Every phrase is lower-cased. What this set measures: the
granular product phrase is written by the submitter in a separate form field, so it is only
partly recoverable from the narrative (about 15% of kept descriptions appear in it verbatim);
the care level is stated in the narrative in some reports and not in others. Scores are
therefore lower than on the synthetic demo, and the copy-the-input baseline is a fair floor.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from feedback_nlp.scripts.cpsc_to_claims import HEADER_START, CPSCFormatError, parse_report_date, read_cpsc_csv

# severity -> (coarse outcome, granular level of care); None: the report is dropped
SEVERITY_ISSUES: dict[str, tuple[str, str] | None] = {
    "Death": ("death", "death"),
    "Injury - Hospital Admission": ("injury", "hospital admission"),
    "Injury - Emergency Department Treatment Received": ("injury", "emergency department treatment"),
    "Injury - Seen by Medical Professional": ("injury", "seen by medical professional"),
    "Injury - First Aid Received by Non-Medical Professional": ("injury", "first aid by non-medical professional"),
    "Injury - No First Aid or Medical Attention Received": ("injury", "no first aid or medical attention"),
    "Injury - Level of care not known": ("injury", "level of care not known"),
    "Incident, No Injury": ("no injury", "incident without injury"),
    "No Incident, No Injury": ("no injury", "hazard without incident"),
    "Unspecified": None,
    "": None,
}
MIN_WORDS, MAX_WORDS = 2, 10
_URL = re.compile(r"https?://\S+|www\.\S+")
_CODE = re.compile(r"\s*\(\d+\)\s*$")
_NOT_WORD = re.compile(r"[^\w\s\-'&/.]")


def phrase(text: str) -> str:
    """A form field as one issue phrase: no URLs, no punctuation but - ' & / ., lower case."""
    text = _NOT_WORD.sub(" ", _URL.sub(" ", text))
    return " ".join(text.split()).strip(" .-/").lower()


def product_type(value: str) -> str:
    """'Toy Vehicles (Excluding Riding Toys) (5021)' -> 'toy vehicles (excluding riding toys)'."""
    return " ".join(_CODE.sub("", value).replace(",", " ").split()).lower()


def map_row(row: dict[str, str]) -> tuple[dict[str, Any] | None, str]:
    """One report -> (feedback record, "") or (None, why it was dropped)."""
    text = " ".join((row.get("Incident Description") or "").split())
    if not text:
        return None, "no_narrative"
    severity = (row.get("(Primary) Victim Severity") or "").strip()
    if severity not in SEVERITY_ISSUES:
        raise CPSCFormatError(
            f"report {row.get(HEADER_START)!r}: unknown severity {severity!r}; add it to SEVERITY_ISSUES "
            "in feedback_nlp/scripts/cpsc_to_issues.py"
        )
    outcome = SEVERITY_ISSUES[severity]
    if outcome is None:
        return None, "no_severity"
    ptype = product_type(row.get("Product Type") or "")
    if not ptype:
        return None, "no_product_type"
    described = phrase(row.get("Product Description") or "")
    if not MIN_WORDS <= len(described.split()) <= MAX_WORDS:
        return None, "description_length"
    return {
        "id": row[HEADER_START].strip(),
        "text": text,
        "coarse": [ptype, outcome[0]],
        "granular": [described, outcome[1]],
        "created_at": parse_report_date(row["Report Date"]),
        "language": "en",
        "severity": severity,
    }, ""


def convert(paths: Iterable[str | Path]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Records from all exports (sorted by date, id) and counts of what was kept and dropped."""
    out, seen = [], set()
    stats = {"reports": 0, "kept": 0, "duplicate": 0, "no_narrative": 0, "no_severity": 0}
    stats |= {"no_product_type": 0, "description_length": 0}
    for path in sorted(Path(p) for p in paths):
        for row in read_cpsc_csv(path):
            stats["reports"] += 1
            record, why = map_row(row)
            if record is None:
                stats[why] += 1
            elif record["id"] in seen:
                stats["duplicate"] += 1
            else:
                seen.add(record["id"])
                out.append(record)
                stats["kept"] += 1
    return sorted(out, key=lambda r: (r["created_at"], r["id"])), stats


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default="../shared/data/cpsc_saferproducts_toys", help="folder of CPSC CSV exports")
    p.add_argument("--out", default="data/cpsc_issues/feedback.jsonl")
    a = p.parse_args(argv)
    paths = sorted(Path(a.src).glob("*.csv"))
    if not paths:
        p.error(f"no .csv files in {a.src}")
    from feedback_nlp.core.io import atomic_write_jsonl

    try:
        records, stats = convert(paths)
    except CPSCFormatError as e:
        p.error(str(e))
    atomic_write_jsonl(a.out, records)
    counts = ", ".join(f"{k}={v}" for k, v in stats.items())
    print(f"{a.out}: {len(records)} feedback from {len(paths)} files; {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
