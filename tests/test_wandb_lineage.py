"""W&B, offline: what one product-safety run records, read back from the offline run's log.

Checked against the run's own files: the dataset artifact's sha256 is the data file's, the
model artifact's alias is the export manifest's model_version, the best-so-far summary equals
the minimum of the val/loss values in the CSV log, and every plot key has a PNG next to it.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from tests.test_product_safety_data import tiny_bert, write_claims
from tests.wandb_offline import read_run


@pytest.mark.slow
def test_product_safety_run_logs_lineage_best_summaries_and_plots(wandb_home):
    from feedback_nlp.cli import train

    tmp = wandb_home
    claims = write_claims(tmp / "claims.jsonl")
    bert = tiny_bert(tmp / "bert")
    out = tmp / "run"
    train.main(
        [
            "--config",
            str(Path(__file__).resolve().parent.parent / "configs/experiment/product_safety_demo.yaml"),
            f"output_dir={out}",
            "logger.wandb.enabled=true",
            f"model.pretrained={bert}",
            "model.max_length=16",
            "model.optim.lr=0.001",
            f"data.path={claims}",
            f"data.noisy_negatives.embedding_model={bert}",
            f"data.noisy_negatives.embedding_cache_dir={tmp / 'cache'}",
            "data.noisy_negatives.pool_max=null",
            "data.dev_fraction=0.25",
            "data.batch_size=16",
            "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false",
            "logger.wandb.log_model=true",
        ]
    )
    import wandb

    wandb.teardown()  # the W&B service may still be flushing the run's log when finish() returns
    run = read_run(out)
    manifest = json.loads((out / "export" / "manifest.json").read_text())

    # 1. lineage: the data file by its sha256, the export by its model_version and `best`
    (data,) = [a for a in run.artifacts if a["type"] == "dataset"]
    sha = hashlib.sha256(claims.read_bytes()).hexdigest()
    assert data["name"] == "claims.jsonl" and data["metadata"]["sha256"] == sha
    assert f"sha256-{sha[:16]}" in data["aliases"] and data["files"] == ["claims.jsonl"]
    (model,) = [a for a in run.artifacts if a["type"] == "model" and a["name"].startswith("product_safety-")]
    assert {manifest["model_version"], "best"} <= set(model["aliases"])
    assert model["name"].startswith("product_safety-") and "manifest.json" in model["files"]
    assert model["metadata"]["model_version"] == manifest["model_version"]
    assert run.summary["model_version"] == manifest["model_version"]
    assert run.config["lineage/inputs"] == [f"claims.jsonl:sha256-{sha[:16]}"]
    # log_model=true: Lightning's WandbLogger adds the checkpoints, the best one aliased `best`
    ckpts = [a for a in run.artifacts if a["type"] == "model" and a["name"].startswith("model-")]
    best_ckpt = max((out / "checkpoints").glob("best*.ckpt")).name
    assert any(
        "best" in a["aliases"] and a["files"] == ["model.ckpt"] and a["metadata"].get("original_filename") == best_ckpt
        for a in ckpts
    ), ckpts
    # 2. best-so-far: val/loss (the monitored metric) keeps its minimum and the epoch it came from
    rows = [r for r in csv.DictReader((out / "csv" / "metrics.csv").open()) if r.get("val/loss")]
    losses = [(float(r["val/loss"]), int(r["epoch"])) for r in rows]
    assert len(losses) >= 2  # validated more than once, so "best" is a real choice
    best_loss, best_epoch = min(losses)
    assert run.summary["best/val/loss"] == pytest.approx(best_loss, rel=1e-6)
    assert run.summary["best/val/loss/epoch"] == best_epoch
    assert run.summary["val/loss"] == {"min": pytest.approx(best_loss, rel=1e-6)}  # define_metric(summary=min)
    saved = json.loads((out / "best_metrics.json").read_text())
    assert saved["val/loss"]["value"] == pytest.approx(best_loss, rel=1e-6) and saved["val/loss"]["mode"] == "min"
    assert run.summary["test/recall"] == pytest.approx(json.loads((out / "metrics.json").read_text())["test/recall"])
    # every logged metric row carries both x-axes: the step and the epoch
    metric_rows = [h for h in run.history if any(k.startswith(("val/", "train/")) for k in h)]
    assert metric_rows and all("epoch" in h and "trainer/global_step" in h for h in metric_rows)

    # 3. the 001 figures: W&B image keys and the PNGs in the run dir
    logged = {k: v for h in run.history for k, v in h.items()}
    for name in ("pr_curve", "confusion_matrix", "recall_volume_vs_threshold", "per_language"):
        image = logged[f"plots/product_safety/{name}"]
        png = (out / "plots" / f"{name}.png").read_bytes()
        assert image["_type"] == "image-file" and png[:8] == b"\x89PNG\r\n\x1a\n", name
        assert image["sha256"] == hashlib.sha256(png).hexdigest(), name  # W&B holds the same picture
    assert logged["test/per_language"]["_type"] == "table-file"  # the module's own per-language table
