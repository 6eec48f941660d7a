"""Map CPSC SaferProducts.gov incident reports to claim records (real data for paper 001).

    python -m feedback_nlp.scripts.cpsc_to_claims --src ../shared/data/cpsc_saferproducts_toys \
        --out data/cpsc/claims.jsonl [--unlabeled-fraction 0.3 --seed 0]

Why: the paper's Zalando claims are private; CPSC reports are real consumer-written safety
narratives with a date and a graded outcome, so the whole pipeline (time splits, mining,
threshold, KPIs) can run on real text. The mapping, field by field:

| claim field  | CPSC column                       | rule                                          |
|--------------|-----------------------------------|-----------------------------------------------|
| id           | Report No.                        | as is (unique across the three exports)       |
| text         | Incident Description (narrative)  | stripped; reports without a narrative skipped |
| created_at   | Report Date (M/D/YYYY)            | that day, 00:00 UTC                           |
| label        | (Primary) Victim Severity         | see SEVERITY_LABEL below                      |
| language     | -                                 | "en" (CPSC data is English only)              |
| escalated    | -                                 | null (there is no front-line-care stage)      |
| case_type    | -                                 | "not_product_safety" for label 0, else null   |
| extra        | severity, Product Type, file      | kept for analysis                             |

Label: the paper's positive class is a claim where the product harmed the customer (§2,
Table 1: allergic reaction, chemical smell, injury). Here that is a report whose victim was
harmed: every "Injury - ..." grade and "Death" -> 1. Reports where nobody was hurt ("Incident,
No Injury", "No Incident, No Injury") -> 0: hazards without harm, the CPSC counterpart of
"Not Product Safety". "Unspecified" and blank severities -> null (unlabeled).

The CPSC export has no unescalated traffic, which noisy-negative mining (§3.1) needs. With
`--unlabeled-fraction f` a seeded fraction f of the reports have their label hidden
(label null, the hidden label kept in `extra.true_label`), simulating the unlabeled pool; the
datamodule then reports `data/nn_purity`, the share of mined negatives that truly are 0.
Parallel corpus (§3.1): CPSC is English-only and carries no translations, so with the default
corpus translator `original+NN+PC` adds nothing (it equals `original+NN`, and is reported as
such); an HF translator (a data.parallel_corpus.translator section naming a cached NLLB/Marian model)
produces translations where such a model is available.
"""

from __future__ import annotations

import argparse
import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

SAFETY = (
    "Injury - Emergency Department Treatment Received",
    "Injury - First Aid Received by Non-Medical Professional",
    "Injury - Hospital Admission",
    "Injury - Level of care not known",
    "Injury - No First Aid or Medical Attention Received",
    "Injury - Seen by Medical Professional",
    "Death",
)
NOT_SAFETY = ("Incident, No Injury", "No Incident, No Injury")
UNLABELED = ("Unspecified", "")
SEVERITY_LABEL: dict[str, int | None] = {
    **{s: 1 for s in SAFETY},
    **{s: 0 for s in NOT_SAFETY},
    **{s: None for s in UNLABELED},
}
HEADER_START = "Report No."


class CPSCFormatError(ValueError):
    pass


def read_cpsc_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of one SaferProducts export, skipping the disclaimer/export-name lines before the header."""
    text = Path(path).read_text(encoding="utf-8-sig")
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.lstrip("\ufeff").startswith(HEADER_START):
            return list(csv.DictReader(io.StringIO("".join(lines[i:]))))
    raise CPSCFormatError(f"{path}: no header line starting with {HEADER_START!r}")


def parse_report_date(value: str) -> str:
    """'6/23/2011 ' -> '2011-06-23T00:00:00+00:00'."""
    try:
        dt = datetime.strptime(value.strip(), "%m/%d/%Y")
    except ValueError:
        raise CPSCFormatError(f"unparseable Report Date {value!r} (expected M/D/YYYY)") from None
    return dt.replace(tzinfo=UTC).isoformat()


def map_row(row: dict[str, str], source: str = "") -> dict[str, Any] | None:
    """One CPSC report -> one claim dict (None when the report has no narrative)."""
    text = (row.get("Incident Description") or "").strip()
    if not text:
        return None
    severity = (row.get("(Primary) Victim Severity") or "").strip()
    if severity not in SEVERITY_LABEL:
        raise CPSCFormatError(
            f"report {row.get(HEADER_START)!r}: unknown severity {severity!r}; "
            f"add it to SEVERITY_LABEL in feedback_nlp/scripts/cpsc_to_claims.py"
        )
    label = SEVERITY_LABEL[severity]
    return {
        "id": row[HEADER_START].strip(),
        "text": text,
        "language": "en",
        "created_at": parse_report_date(row["Report Date"]),
        "label": label,
        "case_type": "not_product_safety" if label == 0 else None,
        "escalated": None,
        "severity": severity,
        "product_type": (row.get("Product Type") or "").strip(),
        "source_file": source,
    }


def convert(
    paths: Iterable[str | Path], unlabeled_fraction: float = 0.0, seed: int = 0
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Claims from all exports (sorted by date, id) and counts of what was kept and skipped."""
    from feedback_nlp.datamodules.splits import hash_unit

    claims, seen = [], set()
    stats = {"reports": 0, "no_narrative": 0, "duplicate": 0, "label_1": 0, "label_0": 0, "label_null": 0, "hidden": 0}
    for path in sorted(Path(p) for p in paths):
        for row in read_cpsc_csv(path):
            stats["reports"] += 1
            claim = map_row(row, path.name)
            if claim is None:
                stats["no_narrative"] += 1
                continue
            if claim["id"] in seen:
                stats["duplicate"] += 1
                continue
            seen.add(claim["id"])
            if claim["label"] is not None and hash_unit(f"cpsc-unlabeled:{claim['id']}", seed) < unlabeled_fraction:
                claim = {**claim, "label": None, "case_type": None, "true_label": claim["label"]}
                stats["hidden"] += 1
            stats[f"label_{'null' if claim['label'] is None else claim['label']}"] += 1
            claims.append(claim)
    return sorted(claims, key=lambda c: (c["created_at"], c["id"])), stats


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default="../shared/data/cpsc_saferproducts_toys", help="folder of CPSC CSV exports")
    p.add_argument("--out", default="data/cpsc/claims.jsonl")
    p.add_argument(
        "--unlabeled-fraction",
        type=float,
        default=0.3,
        help="share of labeled reports whose label is hidden (the noisy-negative pool); 0 to keep all",
    )
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if not 0.0 <= a.unlabeled_fraction < 1.0:
        p.error("--unlabeled-fraction must be in [0, 1)")
    paths = sorted(Path(a.src).glob("*.csv"))
    if not paths:
        p.error(f"no .csv files in {a.src}")
    from feedback_nlp.core.io import atomic_write_jsonl

    claims, stats = convert(paths, a.unlabeled_fraction, a.seed)
    atomic_write_jsonl(a.out, claims)
    print(f"{a.out}: {len(claims)} claims from {len(paths)} files; " + ", ".join(f"{k}={v}" for k, v in stats.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
