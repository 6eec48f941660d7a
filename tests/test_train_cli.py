"""train.py paths a new user hits first: --print-config, the resume errors, run_test=false, and
resuming from a .ckpt file through fit (the step count continues)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import torch
import yaml

from feedback_nlp.cli import train
from feedback_nlp.core.config import ConfigError, load_config
from tests.scale_helpers import REPO, job_env, train_cmd
from tests.tiny_models import tiny_seacat_run

CONFIG = "configs/experiment/seacat_demo.yaml"


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train_cli")
    _, overrides = tiny_seacat_run(tmp, 48, 5)
    return tmp, [*overrides, "trainer.limit_val_batches=1"]


def snapshot(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_print_config_prints_the_resolved_yaml_and_writes_nothing(tmp_path):
    """Through the command line, started from an unrelated directory."""
    out_root = tmp_path / "outputs"
    overrides = ["data.batch_size=3", "trainer.max_epochs=7", f"output_root={out_root}"]
    proc = subprocess.run(
        [*train_cmd(CONFIG, overrides), "--print-config"],
        cwd=tmp_path,
        env=job_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    header, _, body = proc.stdout.partition("\n")
    assert header == f"# resolved config ({REPO / CONFIG})"
    printed = yaml.safe_load(body)
    from omegaconf import OmegaConf

    assert printed == OmegaConf.to_container(load_config(REPO / CONFIG, overrides), resolve=True)
    assert printed["data"]["batch_size"] == 3 and printed["trainer"]["max_epochs"] == 7
    assert printed["model"]["max_tokens"] == 32 and "max_tokens" not in printed["data"]  # the model's, once
    assert snapshot(tmp_path) == []  # no run directory, no data read, no model loaded


def test_resume_checkpoint_maps_dirs_and_files(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (tmp_path / "loose.ckpt").write_bytes(b"x")
    assert train.resume_checkpoint(None) == (None, None)
    assert train.resume_checkpoint(str(run)) == (str(run), str(run / "checkpoints" / "last.ckpt"))
    assert train.resume_checkpoint(str(run / "checkpoints" / "last.ckpt")) == (
        str(run),
        str(run / "checkpoints" / "last.ckpt"),
    )
    assert train.resume_checkpoint(str(tmp_path / "loose.ckpt")) == (None, str(tmp_path / "loose.ckpt"))
    with pytest.raises(
        ConfigError,
        match=re.escape(f"resume={tmp_path}: no checkpoints/last.ckpt (or step.ckpt) in that run directory"),
    ):
        train.resume_checkpoint(str(tmp_path))
    with pytest.raises(ConfigError, match="no such run directory or checkpoint file"):
        train.resume_checkpoint(str(tmp_path / "nope.ckpt"))


@pytest.fixture(scope="module")
def first_run(assets):
    """One epoch, 2 steps, run_test=false."""
    tmp, base = assets
    out = tmp / "first"
    metrics = train.main(["--config", str(REPO / CONFIG), *base, "run_test=false", f"output_dir={out}"])
    return out, metrics


def test_run_test_false_skips_test_but_still_predicts(first_run):
    out, metrics = first_run
    assert metrics and not any(k.startswith("test/") for k in metrics)
    assert "val/loss" in metrics and "train/loss" in metrics
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == pytest.approx(metrics)
    assert (out / "predictions.jsonl").read_text().strip()  # run_predict is separate from run_test


@pytest.mark.parametrize("resume", ["bad_path", "empty_dir", "corrupt", "other_task"])
def test_resume_errors_exit_2_before_any_write(assets, first_run, tmp_path, capsys, resume):
    _, base = assets
    out_root = tmp_path / "outputs"
    if resume == "bad_path":
        target, message = tmp_path / "missing", "no such run directory or checkpoint file"
    elif resume == "empty_dir":
        (tmp_path / "run").mkdir()
        target, message = tmp_path / "run", "no checkpoints/last.ckpt (or step.ckpt) in that run directory"
    elif resume == "corrupt":
        target = tmp_path / "cut.ckpt"
        target.write_bytes((first_run[0] / "checkpoints" / "last.ckpt").read_bytes()[:200])
        message = f"checkpoint {target} is unreadable"
    else:
        ckpt = torch.load(first_run[0] / "checkpoints" / "last.ckpt", weights_only=True)
        ckpt["hyper_parameters"] = {**(ckpt.get("hyper_parameters") or {}), "task": "product_safety"}
        ckpt.pop("task", None)
        target = tmp_path / "other.ckpt"
        torch.save(ckpt, target)
        message = "written by task 'product_safety', but this experiment trains 'seacat'"
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as e:
        train.main(["--config", str(REPO / CONFIG), *base, f"resume={target}", f"output_root={out_root}"])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_resume_from_a_ckpt_file_continues_fit(assets, first_run, tmp_path):
    """A .ckpt outside a run's checkpoints/ folder: a new run dir, but fit restarts at the saved
    step and epoch (2 steps done, 2 more for epoch 2 -> global step 4), then tests."""
    _, base = assets
    first_ckpt = torch.load(first_run[0] / "checkpoints" / "last.ckpt", weights_only=True)
    assert (first_ckpt["global_step"], first_ckpt["epoch"]) == (2, 0)
    loose = shutil.copy(first_run[0] / "checkpoints" / "last.ckpt", tmp_path / "epoch1.ckpt")
    out = tmp_path / "resumed"
    metrics = train.main(
        [
            "--config",
            str(REPO / CONFIG),
            *base,
            "trainer.max_epochs=2",
            f"resume={loose}",
            f"output_dir={out}",
            "run_predict=false",
        ]
    )
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert (last["global_step"], last["epoch"]) == (4, 1)
    assert "test/acc" in metrics
    # the new run validated only epoch 2 (index 1): epoch 1 was restored, not re-trained
    import csv

    rows = list(csv.DictReader(next((out / "csv").rglob("metrics.csv")).open()))
    assert [r["epoch"] for r in rows if r.get("val/loss")] == ["1"]
    assert not (first_run[0] / "checkpoints" / "epoch1.ckpt").exists()  # the first run is untouched
