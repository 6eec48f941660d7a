"""Real-data converters (CLINC150, DSTC11, ABCD) produce records the shared loaders accept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feedback_nlp.core.io import atomic_write_jsonl
from feedback_nlp.core.records import load_records
from feedback_nlp.datamodules.seacat import agent_first_index
from feedback_nlp.scripts.abcd_to_transcripts import convert as abcd_convert
from feedback_nlp.scripts.clinc150_to_questions import convert as clinc_convert
from feedback_nlp.scripts.dstc11_to_questions import to_questions, to_transcripts

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def test_clinc150_convert_maps_intents_to_domains(tmp_path):
    data = {
        "train": [["where am i", "current_location"]],
        "val": [],
        "test": [["my balance", "balance"]],
        "oos_train": [["sing", "oos"]],
        "oos_val": [],
        "oos_test": [],
    }
    out = clinc_convert(data, {"banking": ["balance"], "auto_and_commute": ["current_location"]})
    assert out["train"] == [
        {
            "id": "clinc-train-00000",
            "question": "where am i",
            "intent": "current_location",
            "domain": "auto_and_commute",
        }
    ]
    assert clinc_convert(data, {}, include_oos=True)["train"][-1]["intent"] == "oos"
    qs = load_records(atomic_write_jsonl(tmp_path / "q.jsonl", out["test"]), "question")
    assert qs[0].labels == {"intent": "balance", "domain": "banking"}


def test_abcd_convert_drops_action_turns_and_loads_as_transcripts(tmp_path):
    convo = {
        "convo_id": 7,
        "scenario": {"flow": "product_defect", "subflow": "return_size"},
        "original": [
            ["agent", "Hi!"],
            ["customer", "I need to return an item."],
            ["action", "Account has been pulled up."],
            ["agent", "Sure."],
        ],
    }
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


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_clinc150_main_rebuilds_the_committed_sample(tmp_path, capsys):
    """data_full.json + domains.json rebuilt from the committed CLINC150 sample; the command's
    question files must give back each query's text, intent and domain, in source order."""
    sample = read_jsonl(FIXTURES / "clinc150_sample.jsonl")
    src = tmp_path / "src"
    src.mkdir()
    data = {
        split: [[r["question"], r["intent"]] for r in sample if r["split"] == split]
        for split in ("train", "val", "test")
    }
    data.update({"oos_train": [["sing me a song", "oos"]], "oos_val": [], "oos_test": []})
    domains: dict[str, list[str]] = {}
    for r in sample:
        domains.setdefault(r["domain"], [])
        if r["intent"] not in domains[r["domain"]]:
            domains[r["domain"]].append(r["intent"])
    (src / "data_full.json").write_text(json.dumps(data))
    (src / "domains.json").write_text(json.dumps(domains))
    from feedback_nlp.scripts.clinc150_to_questions import main

    assert main(["--src", str(src), "--out", str(tmp_path / "out")]) == 0
    for split in ("train", "test"):
        rows = read_jsonl(tmp_path / "out" / f"{split}.jsonl")
        want = [r for r in sample if r["split"] == split]
        assert [(r["question"], r["intent"], r["domain"]) for r in rows] == [
            (r["question"], r["intent"], r["domain"]) for r in want
        ]
        assert len({r["id"] for r in rows}) == len(rows)
        assert len(load_records(tmp_path / "out" / f"{split}.jsonl", "question")) == len(want)
    assert read_jsonl(tmp_path / "out" / "val.jsonl") == []  # the sample holds no val queries
    out = capsys.readouterr().out
    assert f"train.jsonl: {len(data['train'])} questions, 20 intents" in out
    assert main(["--src", str(src), "--out", str(tmp_path / "oos"), "--include-oos"]) == 0
    last = read_jsonl(tmp_path / "oos" / "train.jsonl")[-1]
    assert (last["question"], last["intent"], last["domain"]) == ("sing me a song", "oos", "oos")


def test_clinc150_main_missing_source_is_a_clear_error(tmp_path, capsys):
    from feedback_nlp.scripts.clinc150_to_questions import main

    (tmp_path / "data_full.json").write_text("{}")
    assert main(["--src", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert f"{tmp_path / 'domains.json'} not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_dstc11_main_writes_questions_and_transcripts_per_domain(tmp_path, capsys):
    from feedback_nlp.scripts.dstc11_to_questions import FILES, main

    src = tmp_path / "src"
    src.mkdir()
    made_up = {  # invented utterances in the NatCS file format
        "insurance": [("I want a quote for my truck", "GetQuote"), ("", "GetQuote"), ("Cancel my policy", "Cancel")],
        "banking": [("What is my balance?", "CheckBalance")],
        "finance": [("Open a savings account", "OpenAccount"), ("Move money to savings", "Transfer")],
    }
    for domain, rows in made_up.items():
        lines = [
            json.dumps({"utterance": u, "utterance_id": f"{domain}_{i:04d}", "intent": it})
            for i, (u, it) in enumerate(rows)
        ]
        (src / FILES[domain]).write_text("\n".join(lines) + "\n\n")
    assert main(["--src", str(src), "--out", str(tmp_path / "out")]) == 0
    for domain, rows in made_up.items():
        kept = [(f"{domain}_{i:04d}", u, it) for i, (u, it) in enumerate(rows) if u]  # empty utterance dropped
        qs = load_records(tmp_path / "out" / f"questions-{domain}.jsonl", "question")
        assert [(q.id, q.question, q.labels["intent"], q.labels["domain"]) for q in qs] == [
            (i, u, it, domain) for i, u, it in kept
        ]
        ts = load_records(tmp_path / "out" / f"transcripts-{domain}.jsonl", "transcript")
        assert [(t.id, t.label, t.main_question, [x.speaker for x in t.turns]) for t in ts] == [
            (i, it, u, ["customer"]) for i, u, it in kept
        ]
    assert "3 utterances, 2 intents" in capsys.readouterr().out
    (src / FILES["finance"]).unlink()
    assert main(["--src", str(src), "--out", str(tmp_path / "out2")]) == 2
    assert f"{src / FILES['finance']} not found" in capsys.readouterr().err


def test_abcd_main_reads_split_dicts_and_lists(tmp_path, capsys):
    from feedback_nlp.scripts.abcd_to_transcripts import main

    convo = {
        "convo_id": 3,
        "scenario": {"flow": "shipping_issue", "subflow": "status"},
        "original": [
            ["customer", "Where is my parcel? "],
            ["action", "Searching."],
            ["agent", "  "],
            ["agent", "It ships today."],
        ],
    }
    empty = {"convo_id": 4, "scenario": {"flow": "x", "subflow": "y"}, "original": [["action", "pulled up"]]}
    for name, data in (("list.json", [convo, empty]), ("splits.json", {"train": [convo], "dev": [empty]})):
        (tmp_path / name).write_text(json.dumps(data))
        out = tmp_path / f"{name}.jsonl"
        assert main(["--src", str(tmp_path / name), "--out", str(out), "--label", "subflow"]) == 0
        [t] = load_records(out, "transcript")
        assert (t.id, t.label) == ("abcd-3", "status")
        assert [(x.speaker, x.text) for x in t.turns] == [
            ("customer", "Where is my parcel?"),
            ("agent", "It ships today."),
        ]
    assert main(["--src", str(tmp_path / "nope.json"), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert f"{tmp_path / 'nope.json'} not found" in capsys.readouterr().err


@pytest.mark.skipif(
    not (SHARED / "abcd_sample" / "abcd_sample.json").is_file(),
    reason=f"real ABCD sample not present at {SHARED / 'abcd_sample' / 'abcd_sample.json'} "
    "(not committed; test_abcd_main_reads_split_dicts_and_lists covers the command)",
)
def test_real_abcd_sample_through_the_transcript_loader(tmp_path):
    from feedback_nlp.scripts.abcd_to_transcripts import main

    assert main(["--src", str(SHARED / "abcd_sample" / "abcd_sample.json"), "--out", str(tmp_path / "a.jsonl")]) == 0
    records = load_records(tmp_path / "a.jsonl", "transcript")
    assert len(records) == 3 and {t.label for t in records} == {"product_defect", "storewide_query"}
