"""`compare` on two demo-like product-safety exports of different quality: a tiny BERT fine-tuned on
demo claims (candidate) and the same network untrained (production), each with its threshold at
95% training recall. The fine-tuned one must win under "precision>=0" and "volume<=0"; every
reported value and difference must equal the one counted by hand from each export's own
predictions (after the deletion list), and each difference lie in its bootstrap interval.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from feedback_nlp.cli import compare as cli
from feedback_nlp.core.records import TextRecord
from feedback_nlp.operations.compare import _draw
from feedback_nlp.serving.registry import load_export


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    import torch

    from feedback_nlp.demo_data.product_safety import generate_claims
    from feedback_nlp.lightning_modules.product_safety import ProductSafetyClassifier
    from feedback_nlp.metrics.product_safety import threshold_at_recall
    from feedback_nlp.training.export import export_module
    from tests.tiny_models import tiny_bert

    tmp = tmp_path_factory.mktemp("compare")
    train = [c for c in generate_claims(random.Random(1), 120, n_unlabeled=0) if "source_id" not in c]
    evalset = generate_claims(random.Random(2), 40, n_unlabeled=60)
    (tmp / "eval.jsonl").write_text("".join(json.dumps(c) + "\n" for c in evalset))
    bert = tiny_bert(tmp / "bert", [c["text"] for c in train + evalset])
    texts, labels = [c["text"] for c in train], torch.tensor([c["label"] for c in train])
    out = {}
    for name, steps in (("production", 0), ("candidate", 40)):
        torch.manual_seed(0)
        m = ProductSafetyClassifier(pretrained=bert, max_length=48)
        opt = torch.optim.Adam(m.parameters(), lr=3e-3)
        for _ in range(steps):
            i = torch.randint(0, len(texts), (32,))
            enc = m.tokenizer([texts[j] for j in i], padding=True, truncation=True, max_length=48, return_tensors="pt")
            loss = torch.nn.functional.cross_entropy(m(dict(enc)), labels[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
        m.eval()
        with torch.no_grad():
            enc = m.tokenizer(texts, padding=True, truncation=True, max_length=48, return_tensors="pt")
            probs = m.probabilities(dict(enc)).numpy()
        choice = threshold_at_recall(probs, labels.numpy(), 0.95)
        m.set_threshold(choice.threshold, 0.95, choice.recall)
        out[name] = export_module(m, tmp / name)
    return tmp, out, evalset


def by_hand(export, claims):
    """Recall and precision (labelled originals) and Volume (unlabelled traffic), counted."""
    predictor, _ = load_export(export)
    rows = predictor.predict([TextRecord(c["id"], c["text"], c["language"]) for c in claims])
    dec = {r["id"]: r["decision"] for r in rows}
    test = [c for c in claims if c["label"] is not None and "source_id" not in c]
    tp = sum(1 for c in test if dec[c["id"]] and c["label"] == 1)
    fp = sum(1 for c in test if dec[c["id"]] and c["label"] == 0)
    fn = sum(1 for c in test if not dec[c["id"]] and c["label"] == 1)
    volume = sum(dec[c["id"]] for c in claims if c["label"] is None)
    return {"recall": tp / (tp + fn), "precision": tp / (tp + fp), "volume": volume}


def test_the_better_export_wins_and_the_intervals_hold_the_exact_differences(exports, tmp_path, capsys, wandb_home):
    tmp, ex, claims = exports
    deleted = [c["id"] for c in claims if c["label"] is not None][:3] + [c["id"] for c in claims if c["label"] is None][
        :2
    ]
    (tmp_path / "gdpr.txt").write_text("\n".join(deleted[:4]) + "\n" + json.dumps({"id": deleted[4]}) + "\n")
    from feedback_nlp.core.io import sha256_file

    digest = sha256_file(tmp / "eval.jsonl")
    args = ["--eval", tmp / "eval.jsonl", "--expect-sha256", digest, "--delete-ids", tmp_path / "gdpr.txt"]
    args += ["--export", f"production={ex['production']}", "--export", f"candidate={ex['candidate']}"]
    args += ["--rule", "precision>=0", "--rule", "volume<=0", "--rounds", "300", "--out", tmp_path / "out"]
    assert cli.main([str(x) for x in args]) == 0
    out = capsys.readouterr().out
    assert f"sha256 {digest}" in out and "candidate: promote" in out
    report = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert report["records"] == len(claims) - 5 and report["deleted"] == 5
    kept = [c for c in claims if c["id"] not in set(deleted)]
    want = {name: by_hand(ex[name], kept) for name in ex}
    for name in ex:
        for kpi, value in want[name].items():
            assert report["values"][name][kpi] == pytest.approx(value), (name, kpi)
    assert want["candidate"]["precision"] > want["production"]["precision"]
    assert want["candidate"]["volume"] < want["production"]["volume"]
    for kpi in ("recall", "precision", "volume"):
        d = report["diffs"]["candidate"][kpi]
        assert d["diff"] == pytest.approx(want["candidate"][kpi] - want["production"][kpi])
        assert d["low"] <= d["diff"] <= d["high"] and d["rounds"] > 250, (kpi, d)
    assert report["decision"] == {"candidate": {"promote": True, "failed": []}}
    # the other way round the untrained model is kept out, naming the rules it fails
    args2 = [str(x) for x in args[:-2]] + ["--baseline", "candidate", "--out", str(tmp_path / "rev")]
    assert cli.main([*args2, "--logger", "wandb"]) == 1
    out = capsys.readouterr().out
    assert "production: keep candidate" in out and "fails precision>=0: precision -" in out
    # ... and the table and the decision went to the (offline) W&B run
    import wandb

    from tests.wandb_offline import read_run

    wandb.teardown()  # the W&B service may still be flushing the run's log when finish() returns
    run = read_run(tmp_path / "rev")
    assert run.summary["decision/production"] is False
    assert any(row.get("compare/kpis", {}).get("_type") == "table-file" for row in run.history)


def test_a_different_file_or_a_bad_rule_is_refused_before_any_model_loads(exports, tmp_path, capsys):
    tmp, ex, _ = exports
    common = [
        "--eval",
        str(tmp / "eval.jsonl"),
        "--export",
        f"a={ex['production']}",
        "--export",
        f"b={ex['candidate']}",
    ]
    assert cli.main([*common, "--expect-sha256", "0" * 64]) == 2
    err = capsys.readouterr().err
    assert "differs from --expect-sha256" in err and len(err.splitlines()) == 1
    assert cli.main([*common, "--rule", "recal>=0"]) == 2
    assert "unknown metric 'recal'" in capsys.readouterr().err
    assert cli.main([*common[:4]]) == 2
    assert "at least two --export" in capsys.readouterr().err


def test_a_cluster_draw_keeps_translations_together():
    clusters = np.array([0, 1, 1, 2, 2, 2])
    idx, draw = _draw(clusters, np.random.default_rng(0))
    for k in np.unique(draw):  # every drawn cluster comes with all its records
        members = clusters[idx[draw == k]]
        assert len(set(members)) == 1 and len(members) == [1, 2, 3][members[0]]
    assert np.bincount(draw).size == 3  # as many clusters drawn as there are


def test_per_record_kpis_of_the_other_tasks_by_hand():
    import torch

    from feedback_nlp.core.records import Feedback, Question, Transcript, Turn
    from feedback_nlp.operations.compare import evaluate

    everything = np.arange(3)
    # universal model: Top-N of the vote ranking; a query without the label is not counted
    questions = [Question("q1", "a?", {"intent": "b"}), Question("q2", "b?", {"intent": "c"}), Question("q3", "c?", {})]
    dist = {"a": 0.5, "b": 0.3, "c": 0.2}
    rows = [{"id": q.id, "intent": {"prediction": "a", "distribution": dist}} for q in questions]
    got = evaluate("universal_model", questions, rows).kpis(everything, everything)
    assert (got["intent/top1"], got["intent/top5"]) == (0.0, 1.0)
    rows[1]["intent"]["distribution"] = {"c": 0.9, "a": 0.1}
    assert evaluate("universal_model", questions, rows).kpis(everything, everything)["intent/top1"] == 0.5
    # SeaCat: accuracy of the label
    turns = [Turn("customer", "hi")]
    transcripts = [Transcript(f"t{i}", turns, label) for i, label in enumerate(["delivery", "refund", "refund"])]
    rows = [{"id": t.id, "label": p} for t, p in zip(transcripts, ["delivery", "delivery", "refund"])]
    assert evaluate("seacat", transcripts, rows).kpis(everything, everything) == {"accuracy": pytest.approx(2 / 3)}

    # issues: an embedder where only equal strings match, so SimCSE counts exact matches
    def embed(texts):
        vocab = sorted(set(texts))
        return torch.eye(len(vocab))[[vocab.index(t) for t in texts]]

    feedback = [
        Feedback("f1", "x", ["late delivery", "damaged box"], ["late"]),
        Feedback("f2", "y", ["wrong size"], ["size"]),
    ]
    rows = [
        {"id": "f1", "coarse": ["late delivery"], "granular": ["late"]},
        {"id": "f2", "coarse": ["wrong colour"], "granular": ["size"]},
    ]
    got = evaluate("multilevel_issues", feedback, rows, embed).kpis(np.arange(2), np.arange(2))
    # f1: 1 of 1 generated matches (P 1), 1 of 2 annotated (R 1/2); f2: nothing matches
    assert got["coarse/simcse_precision"] == pytest.approx(0.5) and got["coarse/simcse_recall"] == pytest.approx(0.25)
    assert got["coarse/simcse_f1"] == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert got["granular/rouge1"] == pytest.approx(1.0) and got["granular/simcse_f1"] == pytest.approx(1.0)
    # f1 ROUGE-1: "late delivery" vs "late delivery, damaged box": P 2/2, R 2/4 -> F 2/3; f2: "wrong" of 2 -> F 1/2
    assert got["coarse/rouge1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
