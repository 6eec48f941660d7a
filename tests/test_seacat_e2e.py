"""End to end (002 §2-§3): train SeaCat through train.main with a tiny random BERT, then build
the question repository from its checkpoint and run the universal model on it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from feedback_nlp.core.io import atomic_write_jsonl
from feedback_nlp.demo_data.seacat import generate_transcripts
from tests.tiny_models import tiny_bert

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seacat_e2e")
    rows = generate_transcripts(random.Random(0), 56)
    data = atomic_write_jsonl(tmp / "transcripts.jsonl", rows)
    tiny = tiny_bert(tmp / "tiny", [turn["text"] for r in rows for turn in r["turns"]])
    import os

    old = os.environ.pop("FEEDBACK_NLP_RUN_DIR", None)
    from feedback_nlp.cli import train

    try:
        metrics = train.main(
            [
                "--config",
                str(ROOT / "configs/experiment/seacat_demo.yaml"),
                f"model.pretrained={tiny}",
                f"data.path={data}",
                f"output_dir={tmp / 'run'}",
                "model.freeze_layers=0",
                "model.max_tokens=24",
                "data.batch_size=8",
                "trainer.max_epochs=1",
                "trainer.limit_train_batches=3",
                "model.log_examples=2",
                "data.eval_batch_size=3",
            ]
        )
    finally:
        os.environ.pop("FEEDBACK_NLP_RUN_DIR", None)
        if old is not None:
            os.environ["FEEDBACK_NLP_RUN_DIR"] = old
    return tmp, data, metrics, rows


def test_train_main_reports_label_and_main_question_metrics(trained):
    """The logged test metrics equal a recomputation from the run's test-set predictions (same
    best checkpoint) and the transcripts' own labels and annotated main questions."""
    import math

    tmp, _, metrics, rows = trained
    truth = {r["id"]: r for r in rows}
    preds = [json.loads(x) for x in (tmp / "run" / "predictions.jsonl").read_text().splitlines()]
    assert preds and all(p["id"] in truth for p in preds)
    acc = sum(p["label"] == truth[p["id"]]["label"] for p in preds) / len(preds)
    nll = -sum(math.log(p["label_distribution"][truth[p["id"]]["label"]]) for p in preds) / len(preds)
    assert metrics["test/acc"] == pytest.approx(acc, abs=1e-6)
    assert metrics["test/loss"] == pytest.approx(nll, rel=1e-3)
    annotated = [p for p in preds if truth[p["id"]].get("main_question")]
    assert annotated
    for rule in ("rule1", "rule2"):

        def same(picked, gold):  # the demo's annotated main question is one customer sentence
            return picked is not None and " ".join(picked.split()).lower() == " ".join(gold.split()).lower()

        want = sum(same(p["main_question"][rule], truth[p["id"]]["main_question"]) for p in annotated) / len(annotated)
        assert metrics[f"test/main_question/{rule}_acc"] == pytest.approx(want, abs=1e-6), rule
    assert "val/loss" in metrics
    saved = json.loads((tmp / "run" / "metrics.json").read_text())
    assert saved["test/acc"] == pytest.approx(metrics["test/acc"])


def test_predictions_carry_sentence_weights_and_both_rules(trained):
    tmp, _, _, _ = trained
    rows = [json.loads(x) for x in (tmp / "run" / "predictions.jsonl").read_text().splitlines()]
    assert rows
    for r in rows:
        assert sum(r["sentence_weights"]) == pytest.approx(1.0, abs=1e-4)
        assert len(r["sentence_weights"]) == len(r["sentences"]) == len(r["speakers"])
        for rule in ("rule1", "rule2"):
            i = r["main_question_index"][rule]
            assert r["speakers"][i] == "customer" and r["sentences"][i] == r["main_question"][rule]
        i2 = r["main_question_index"]["rule2"]
        window = [j for j, s in enumerate(r["speakers"]) if s == "customer" and abs(j - r["agent_first"]) <= 2]
        assert i2 == max(window, key=lambda j: r["sentence_weights"][j])


def test_repository_from_checkpoint_then_universal_model(trained):
    tmp, data, _, _ = trained
    ckpt = next((tmp / "run" / "checkpoints").glob("last*.ckpt"))
    from feedback_nlp.scripts.build_question_repository import main as build

    assert build(["--transcripts", str(data), "--checkpoint", str(ckpt), "--out", str(tmp / "repo.jsonl")]) == 0
    repo = [json.loads(x) for x in (tmp / "repo.jsonl").read_text().splitlines()]
    assert len(repo) == 56 and {"id", "question", "product", "handle_time"} <= set(repo[0])
    from feedback_nlp.cli.repo import main as um

    metrics = um(
        [
            "evaluate",
            "--config",
            str(ROOT / "configs/experiment/universal_model_demo.yaml"),
            f"repository.transcripts={data}",
            f"repository.seacat_checkpoint={ckpt}",
            f"output_dir={tmp / 'um'}",
            "baseline.n_estimators=5",
            "retrieval.k=10",
        ]
    )
    assert {"test/top1", "test/top5", "test/within_5", "rf/top1"} <= set(metrics)
    assert json.loads((tmp / "um" / "metrics.json").read_text()) == pytest.approx(metrics)
    # recomputed from the written per-query predictions: top-1 = predicted product is the true
    # one; within 5 units = |predicted - true handle time| <= 5 (a query without prediction misses)
    preds = [json.loads(x) for x in (tmp / "um" / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == metrics["test/n_queries"]
    top1 = sum(p["product"]["predicted"] == p["product"]["true"] for p in preds) / len(preds)
    timed = [p for p in preds if p["handle_time"]["true"] is not None]
    within5 = sum(
        p["handle_time"]["predicted"] is not None and abs(p["handle_time"]["predicted"] - p["handle_time"]["true"]) <= 5
        for p in timed
    ) / len(timed)
    assert metrics["test/top1"] == pytest.approx(top1) and metrics["test/within_5"] == pytest.approx(within5)
    assert metrics["test/top1"] <= metrics["test/top5"]
