"""Real-data converters (CLINC150, DSTC11, ABCD) produce records the shared loaders accept."""
from __future__ import annotations

from pathlib import Path

import pytest

from feedback_nlp.common.io import atomic_write_jsonl
from feedback_nlp.datamodules.records import load_records
from feedback_nlp.datamodules.transcripts import agent_first_index
from feedback_nlp.scripts.abcd_to_transcripts import convert as abcd_convert
from feedback_nlp.scripts.clinc150_to_questions import convert as clinc_convert
from feedback_nlp.scripts.dstc11_to_questions import to_questions, to_transcripts

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def test_clinc150_convert_maps_intents_to_domains(tmp_path):
    data = {"train": [["where am i", "current_location"]], "val": [], "test": [["my balance", "balance"]],
            "oos_train": [["sing", "oos"]], "oos_val": [], "oos_test": []}
    out = clinc_convert(data, {"banking": ["balance"], "auto_and_commute": ["current_location"]})
    assert out["train"] == [{"id": "clinc-train-00000", "question": "where am i", "intent": "current_location",
                             "domain": "auto_and_commute"}]
    assert clinc_convert(data, {}, include_oos=True)["train"][-1]["intent"] == "oos"
    qs = load_records(atomic_write_jsonl(tmp_path / "q.jsonl", out["test"]), "question")
    assert qs[0].labels == {"intent": "balance", "domain": "banking"}


def test_abcd_convert_drops_action_turns_and_loads_as_transcripts(tmp_path):
    convo = {"convo_id": 7, "scenario": {"flow": "product_defect", "subflow": "return_size"},
             "original": [["agent", "Hi!"], ["customer", "I need to return an item."],
                          ["action", "Account has been pulled up."], ["agent", "Sure."]]}
    rows = abcd_convert([convo], "subflow")
    [t] = load_records(atomic_write_jsonl(tmp_path / "t.jsonl", rows), "transcript")
    assert t.label == "return_size" and [x.speaker for x in t.turns] == ["agent", "customer", "agent"]
    assert t.extra == {"flow": "product_defect", "subflow": "return_size"}


def test_dstc11_utterances_become_questions_and_one_turn_transcripts(tmp_path):
    rows = [{"utterance": "I need a quote for my car", "utterance_id": "insurance_0000", "intent": "GetQuote"}]
    [q] = load_records(atomic_write_jsonl(tmp_path / "q.jsonl", to_questions(rows, "insurance")), "question")
    [t] = load_records(atomic_write_jsonl(tmp_path / "t.jsonl", to_transcripts(rows)), "transcript")
    assert q.labels == {"intent": "GetQuote", "domain": "insurance"}
    assert t.main_question == "I need a quote for my car" and agent_first_index(["customer"]) == 1


@pytest.mark.skipif(not (SHARED / "abcd_sample" / "abcd_sample.json").is_file(), reason="no ../shared/data")
def test_real_abcd_sample_through_the_transcript_loader(tmp_path):
    from feedback_nlp.scripts.abcd_to_transcripts import main
    assert main(["--src", str(SHARED / "abcd_sample" / "abcd_sample.json"), "--out", str(tmp_path / "a.jsonl")]) == 0
    records = load_records(tmp_path / "a.jsonl", "transcript")
    assert len(records) == 3 and {t.label for t in records} == {"product_defect", "storewide_query"}
