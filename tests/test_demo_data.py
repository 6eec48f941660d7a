"""Tests for the synthetic demo-data generator (demo_data/).

Why: every demo run and smoke test trains on these files, so they must pass the shared
validating reader, cover what the splits and models rely on (months, languages, parallel
corpus, main-question position), and be byte-reproducible from the seed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from feedback_nlp.core.records import load_records
from feedback_nlp.core.sentences import split_sentences
from feedback_nlp.datamodules.splits import make_splits
from feedback_nlp.demo_data.generate import FILES, main
from feedback_nlp.demo_data.vocab import COARSE_OF, TAXONOMY

SMALL = ["--n-feedback", "80", "--n-claims", "60", "--n-transcripts", "48"]


def _generate(out: Path, seed: int = 0, extra: list[str] = SMALL) -> Path:
    assert main(["--out", str(out), "--seed", str(seed), *extra]) == 0
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory.mktemp("demo") / "data")


@pytest.fixture(scope="module")
def loaded(demo: Path) -> dict[str, list]:
    kinds = {
        "feedback.jsonl": "feedback",
        "claims.jsonl": "claim",
        "transcripts.jsonl": "transcript",
        "questions.jsonl": "question",
    }
    return {name: load_records(demo / name, kind) for name, kind in kinds.items()}


def _months(records) -> set[str]:
    return {r.created_at.strftime("%Y-%m") for r in records}


def test_all_files_validate(loaded):
    assert set(loaded) == set(FILES)
    assert len(loaded["feedback.jsonl"]) == 80
    assert len(loaded["transcripts.jsonl"]) == 48 == len(loaded["questions.jsonl"])
    assert len(loaded["claims.jsonl"]) > 60 * 4  # labeled + translations + 3x traffic


def test_counts_printed(tmp_path, capsys):
    _generate(tmp_path, extra=["--n-feedback", "5", "--n-claims", "5", "--n-transcripts", "5"])
    out = capsys.readouterr().out
    assert "feedback.jsonl: 5 records" in out and "transcripts.jsonl: 5 records" in out


def test_feedback_issue_lists(loaded):
    langs = Counter()
    for r in loaded["feedback.jsonl"]:
        assert r.granular and r.coarse and len(r.granular) <= 3
        assert r.coarse == list(dict.fromkeys(COARSE_OF[g] for g in r.granular))
        assert all(c in TAXONOMY for c in r.coarse)
        assert 2 <= len(split_sentences(r.text)) <= 5
        assert r.extra["summary"].endswith(".") and r.extra["label"] in {"electronics", "clothing", "home", "toys"}
        langs[r.language] += 1
    assert langs["en"] > sum(langs.values()) / 2 and len(langs) >= 2
    assert len(_months(loaded["feedback.jsonl"])) >= 6


def test_claims_structure(loaded):
    claims = loaded["claims.jsonl"]
    assert len({c.language for c in claims}) >= 3
    assert len(_months(claims)) >= 6
    originals = [c for c in claims if c.label is not None and c.source_id is None]
    assert len(originals) == 60 and sum(c.label for c in originals) == 24
    for c in claims:
        if c.label == 1:
            assert c.case_type in {"allergic_reaction", "chemical_smell", "injury"} and c.escalated
        elif c.label == 0:
            assert c.case_type == "not_product_safety" and c.escalated
        else:
            assert c.case_type is None and c.source_id is None
    traffic = [c for c in claims if c.label is None]
    assert len(traffic) == 180 and sum(c.escalated for c in traffic) < len(traffic) / 4


def test_translations_follow_source(loaded):
    claims = loaded["claims.jsonl"]
    by_id = {c.id: c for c in claims}
    translations = [c for c in claims if c.source_id is not None]
    assert translations
    for t in translations:
        src = by_id[t.source_id]
        assert t.id == f"{src.id}-tr-{t.language}" and t.language != src.language and t.text != src.text
        assert (t.label, t.case_type, t.created_at) == (src.label, src.case_type, src.created_at)
    assert all(n == 2 for n in Counter(t.source_id for t in translations).values())


def test_claims_time_split_tests_on_last_month(loaded):
    splits = make_splits(loaded["claims.jsonl"], kind="time")
    assert splits.test_month == max(_months(loaded["claims.jsonl"]))
    assert splits.test and splits.train and len(splits.traffic) > len(splits.test)


def test_main_question_position(loaded):
    transcripts = loaded["transcripts.jsonl"]
    assert len(_months(transcripts)) >= 6
    for t in transcripts:
        sents = [(turn.speaker, s) for turn in t.turns for s in split_sentences(turn.text)]
        assert any(t.main_question in split_sentences(turn.text) for turn in t.turns if turn.speaker == "customer")
        first_agent = next(i for i, (spk, _) in enumerate(sents) if spk == "agent")
        assert 1 <= first_agent <= 3 and t.turns[0].speaker == "customer"
        q = [i for i, (spk, s) in enumerate(sents) if spk == "customer" and s == t.main_question]
        assert len(q) == 1 and 1 <= abs(q[0] - first_agent) <= 2
        assert t.main_question[-1] in ".?!" and t.handle_time and t.handle_time > 0


def test_questions_mirror_transcripts(loaded):
    for t, q in zip(loaded["transcripts.jsonl"], loaded["questions.jsonl"]):
        assert q.question == t.main_question
        assert q.labels == {"product": t.label, "handle_time": t.handle_time}
    assert len({t.label for t in loaded["transcripts.jsonl"]}) >= 6


def test_same_seed_is_byte_identical_and_seed_matters(demo, tmp_path):
    again = _generate(tmp_path / "again", seed=0)
    other = _generate(tmp_path / "other", seed=1)
    for name in FILES:
        assert (demo / name).read_bytes() == (again / name).read_bytes()
        assert (demo / name).read_bytes() != (other / name).read_bytes()


def test_counts_are_independent_streams(demo, tmp_path):
    """Changing one count leaves the other files unchanged (each kind has its own RNG)."""
    more = _generate(tmp_path, extra=["--n-feedback", "81", "--n-claims", "60", "--n-transcripts", "48"])
    assert (demo / "claims.jsonl").read_bytes() == (more / "claims.jsonl").read_bytes()
    assert (demo / "feedback.jsonl").read_bytes() != (more / "feedback.jsonl").read_bytes()
