"""ProductSafetyClassifier (001 §3.1, §4.2, §5): threshold callback, checkpoint round trip, KPIs in
metrics.json through train.main, and the serving export (safetensors only, ONNX parity)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from feedback_nlp.callbacks.recall_threshold import RecallThreshold
from feedback_nlp.lightning_modules.product_safety import ProductSafetyClassifier
from feedback_nlp.serving.product_safety import ProductSafetyPredictor
from tests.test_product_safety_data import tiny_bert, write_claims

KPI_KEYS = (
    "test/precision",
    "test/recall",
    "test/threshold",
    "test/target_recall",
    "traffic/volume_model",
    "traffic/volume_model_or_fcc",
    "test/fairness_std",
    "test/fairness_groups",
    "val/threshold",
    "val/recall_at_threshold",
    "data/nn_mined",
    "data/train_translations",
)


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("bert"))


def test_cls_head_is_binary_softmax_with_cross_entropy(bert):
    m = ProductSafetyClassifier(pretrained=bert, max_length=16).eval()  # no dropout: comparable losses
    batch = dict(m.tokenizer(["the heel broke off", "too small"], return_tensors="pt", padding=True))
    batch["labels"] = torch.tensor([1, 0])
    logits = m(batch)
    assert logits.shape == (2, 2) and m.head.in_features == 32
    loss = m.training_step(batch, 0)
    probs = torch.softmax(logits, dim=-1)
    assert torch.allclose(probs.sum(-1), torch.ones(2)) and torch.allclose(m.probabilities(batch), probs[:, 1])
    assert torch.isclose(loss, -torch.log(probs[[0, 1], [1, 0]]).mean(), atol=1e-6)  # cross-entropy by hand
    assert m.threshold == 0.5 and (m.optim.lr, m.optim.optimizer) == (3e-6, "adam")  # paper defaults (001 §3.1, §4.2)


def test_recall_threshold_callback_on_hand_computed_dev_scores(bert):
    m = ProductSafetyClassifier(pretrained=bert)
    probs = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1])
    labels = torch.tensor([1, 1, 0, 1, 0, 1, 0, 0])
    # two "batches", the second repeating item 0 as DistributedSampler padding would: counted once
    for idx in (torch.arange(5), torch.tensor([5, 6, 7, 0])):
        m.val_store["index"].update(idx.float())
        m.val_store["labels"].update(labels[idx].float())
        m.val_store["probs"].update(probs[idx])
    logged = {}
    m.log_dict = lambda d, **kw: logged.update(d)
    RecallThreshold(0.75).on_validation_epoch_end(SimpleNamespace(sanity_checking=False), m)
    # >= 0.6 catches 3 of the 4 positives (hand count); any higher threshold catches 2
    assert float(m.threshold) == pytest.approx(0.6) and float(m.target_recall) == pytest.approx(0.75)
    assert logged["val/recall_at_threshold"] == pytest.approx(0.75)
    assert logged["val/precision_at_threshold"] == pytest.approx(0.75)
    RecallThreshold(0.95).on_validation_epoch_end(SimpleNamespace(sanity_checking=False), m)
    assert float(m.threshold) == pytest.approx(0.3)  # all 4 positives: down to 0.3


def test_per_language_kpis_go_to_a_wandb_table(bert, capsys, monkeypatch):
    """The table reaches the job's W&B run (tests/test_wandb_lineage.py reads it back from a real
    offline run; here only its columns and rows)."""
    from feedback_nlp.metrics.product_safety import safety_kpis
    from feedback_nlp.training import logging_setup

    logged = {}
    run = SimpleNamespace(log=logged.update)
    monkeypatch.setattr(logging_setup, "wandb_run", lambda trainer: run)
    m = ProductSafetyClassifier(pretrained=bert)
    m._trainer = SimpleNamespace(is_global_zero=True, loggers=[], global_step=7)
    flat, rows = safety_kpis(
        [0.8, 0.3, 0.6],
        [1, 0, 1],
        0.5,
        in_test=[1, 1, 1],
        in_traffic=[1, 1, 0],
        is_original=[1, 1, 0],
        escalated=[0, 0, 0],
        group=[0, 1, 0],
        languages=["de", "de", "en"],
    )
    m._report(flat, rows)
    table = logged["test/per_language"]
    assert table.columns[:3] == ["language", "precision", "recall"] and [r[0] for r in table.data] == ["de", "en"]
    assert logged["trainer/global_step"] == 7
    assert "test recall 1.000 at threshold 0.500" in capsys.readouterr().out


def test_threshold_survives_a_checkpoint(bert, tmp_path):
    m = ProductSafetyClassifier(pretrained=bert)
    m.set_threshold(0.0654382, 0.95, 0.96)
    ckpt = {"state_dict": m.state_dict()}
    m.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "m.ckpt")
    loaded = torch.load(tmp_path / "m.ckpt", weights_only=True)  # as Lightning and check_checkpoint load it
    fresh = ProductSafetyClassifier(pretrained=bert)
    fresh.load_state_dict(loaded["state_dict"])
    fresh.on_load_checkpoint(loaded)
    assert (fresh.threshold, fresh.target_recall, fresh.dev_recall) == (0.0654382, 0.95, 0.96)  # exact, no rounding


def test_export_loads_without_pickles_and_matches_the_module(bert, tmp_path):
    from feedback_nlp.serving.manifest import content_hashes, model_version

    m = ProductSafetyClassifier(pretrained=bert, max_length=16).eval()
    m.set_threshold(0.5001, 0.95, 0.97)
    info = m.export_for_serving(tmp_path)
    assert info["threshold"] == pytest.approx(0.5001) and info["labels"][1] == "product_safety"
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))  # safetensors only
    texts = ["the heel broke off order 1-2", "too small", "a needle cut my finger"]
    pred = ProductSafetyPredictor.load(tmp_path)
    from feedback_nlp.core.records import TextRecord

    rows = pred.predict([TextRecord(str(i), t, "en") for i, t in enumerate(texts)])
    with torch.no_grad():
        want = m.probabilities(
            dict(m.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=16))
        ).tolist()
    np.testing.assert_allclose([r["probability"] for r in rows], want, atol=1e-6)
    assert all(r["decision"] == int(r["probability"] >= r["threshold"]) for r in rows)
    # the version a predict run stamps equals the version of the exported files (001 §5)
    assert m.export_version() == model_version(content_hashes(tmp_path))
    m.set_threshold(0.7, 0.95, 0.97)  # a new decision rule is a new version
    assert m.export_version() != model_version(content_hashes(tmp_path))


def test_onnx_export_matches_eager(bert, tmp_path):
    from feedback_nlp.serving.onnx_export import export_for_task

    info = ProductSafetyClassifier(pretrained=bert, max_length=16).export_for_serving(tmp_path)
    fields = export_for_task(tmp_path, info)
    assert fields["onnx"]["files"]["safety.onnx"] < 1e-4 and (tmp_path / "safety.onnx").is_file()


@pytest.mark.slow
def test_train_main_end_to_end_writes_kpis(bert, tmp_path):
    from pathlib import Path

    from feedback_nlp.cli import train

    claims = write_claims(tmp_path / "claims.jsonl")
    out = tmp_path / "run"
    config = Path(__file__).resolve().parent.parent / "configs/experiment/product_safety_demo.yaml"
    metrics = train.main(
        [
            "--config",
            str(config),
            f"output_dir={out}",
            f"model.pretrained={bert}",
            "model.max_length=16",
            "model.optim.lr=0.001",
            f"data.path={claims}",
            f"data.noisy_negatives.embedding_model={bert}",
            f"data.noisy_negatives.embedding_cache_dir={tmp_path / 'cache'}",
            "data.noisy_negatives.pool_max=null",
            "data.dev_fraction=0.25",
            "data.batch_size=16",
            "trainer.max_epochs=2",
        ]
    )
    saved = json.loads((out / "metrics.json").read_text())
    for key in KPI_KEYS:
        assert key in saved and key in metrics, key
    assert saved["test/support"] == 8 and saved["traffic/size"] == 14
    assert saved["test/target_recall"] == pytest.approx(0.95)  # logged metrics are float32
    assert saved["data/nn_mined"] > 0 and saved["data/train_translations"] > 0  # original+NN+PC really augmented
    assert saved["test/fairness_groups"] == 4  # the 4 test claims with a French version
    assert any(k.startswith("test/lang/fr/") for k in saved)  # per-language KPIs include the translations
    # the best checkpoint's threshold is the one test and predict used
    from feedback_nlp.cli.export import best_checkpoint

    best = best_checkpoint(out)  # the one ModelCheckpoint recorded
    ckpt_threshold = torch.load(best, weights_only=True)["product_safety"]["threshold"]
    assert saved["test/threshold"] == pytest.approx(ckpt_threshold) and saved["val/threshold"] >= 0
    preds = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    manifest = json.loads((out / "export" / "manifest.json").read_text())
    assert len(preds) == 14 and {p["threshold"] for p in preds} == {ckpt_threshold}
    assert {p["model_version"] for p in preds} == {manifest["model_version"]}
    assert manifest["threshold"] == pytest.approx(ckpt_threshold) and manifest["record_kind"] == "claim"
    # serving from the export reproduces the run's predictions
    from feedback_nlp.core.records import load_records

    by_id = {r.id: r for r in load_records(claims, "claim")}
    from feedback_nlp.serving.registry import load_export

    served = load_export(out / "export")[0].predict([by_id[p["id"]] for p in preds])
    np.testing.assert_allclose([s["probability"] for s in served], [p["probability"] for p in preds], atol=1e-5)
    # the tested scores went into the export as its drift reference: hashed, same model version
    reference = json.loads((out / "export" / "reference_scores.json").read_text())
    assert sum(map(len, reference["splits"]["test"].values())) == saved["test/support"]
    assert sum(map(len, reference["splits"]["traffic"].values())) == saved["traffic/size"]
    assert "reference_scores.json" in manifest["files_sha256"] and (out / "reference_scores.json").is_file()
