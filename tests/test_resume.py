"""Resume after SIGKILL ends with the metrics of an uninterrupted run; bad checkpoints fail clearly."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time

import pytest
import torch

from feedback_nlp.cli import train
from feedback_nlp.demo_data.seacat import generate_transcripts
from tests.probes import optimizer_fingerprint
from tests.scale_helpers import REPO, job_env, metrics, run_train, train_cmd
from tests.tiny_models import tiny_bert

CONFIG = "configs/experiment/seacat_demo.yaml"


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    rows = generate_transcripts(random.Random(5), 72)
    data = tmp / "transcripts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bert = tiny_bert(tmp / "bert", [t["text"] for r in rows for t in r["turns"]])
    base = [
        f"data.path={data}",
        f"model.pretrained={bert}",
        "model.freeze_layers=0",
        "data.batch_size=4",
        "model.max_sentences=12",
        "model.max_tokens=16",
        "trainer.max_epochs=2",
        "trainer.accelerator=cpu",
        "model.dropout=0.2",
        "run_predict=false",
        "callbacks.serving_export=null",
    ]
    return tmp, base


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(assets):
    tmp, base = assets
    run_train(CONFIG, base + [f"output_dir={tmp / 'straight'}"])
    expected = metrics(tmp / "straight")

    # killed at a known point, whatever the machine's speed: a probe stops the job after the first
    # step of epoch 1, so epoch 0's last.ckpt is the newest restart point (no step checkpoints here)
    steps_per_epoch = torch.load(tmp / "straight" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] // 2
    crashed, marker = tmp / "crashed", tmp / "paused"
    pause = [
        "+callbacks.pause.class_path=tests.probes.PauseAtStep",
        f"+callbacks.pause.step={steps_per_epoch + 1}",
        f"+callbacks.pause.marker={marker}",
    ]
    proc = subprocess.Popen(
        train_cmd(CONFIG, base + pause + [f"output_dir={crashed}"]),
        cwd=REPO,
        env=job_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    paused = marker.with_name("paused.rank0")
    deadline = time.monotonic() + 600  # a hang guard only: the kill point is the probe's
    while not paused.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL and paused.exists(), "the job never reached epoch 1"
    assert not (crashed / "metrics.json").exists()
    last = crashed / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["epoch"] == 0 and saved["global_step"] == steps_per_epoch  # the epoch-end restart point

    probe = tmp / "probe" / "resumed"
    run_train(
        CONFIG,
        base
        + [
            f"resume={crashed}",
            "+callbacks.probe.class_path=tests.probes.StartProbe",
            f"+callbacks.probe.path={probe}",
        ],
    )
    # the checkpoint was loaded: training restarted at its step with its optimizer moments (a
    # fresh run with the same seed would reach the same metrics below, but from step 0, no moments)
    start = json.loads(probe.with_name("resumed.start.rank0").read_text())
    assert start["global_step"] == saved["global_step"] > 0
    assert start["optimizer"] == pytest.approx(optimizer_fingerprint(saved["optimizer_states"][0]), rel=1e-9)
    assert start["optimizer"]["exp_avg"] != 0.0
    resumed = metrics(crashed)
    assert [p.name for p in tmp.iterdir() if p.name.startswith("crashed")] == ["crashed"]  # same run dir
    for key in ("test/acc", "test/loss", "val/loss", "val/acc"):
        assert resumed[key] == pytest.approx(expected[key], abs=1e-6), key


def _main_exit(args):
    with pytest.raises(SystemExit) as e:
        train.main(args)
    return e.value.code


def test_truncated_or_foreign_checkpoint_is_a_clear_error(assets, tmp_path, capsys):
    _, base = assets
    bad = tmp_path / "truncated.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}, "task": "seacat"}, bad)
    bad.write_bytes(bad.read_bytes()[:500])
    assert _main_exit(["--config", str(REPO / CONFIG), *base, f"resume={bad}", f"output_dir={tmp_path / 'o'}"]) == 2
    assert "unreadable (truncated or corrupt?)" in capsys.readouterr().err

    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "task": "product_safety"}, foreign)
    assert _main_exit(["--config", str(REPO / CONFIG), *base, f"resume={foreign}", f"output_dir={tmp_path / 'o'}"]) == 2
    assert "written by task 'product_safety', but this experiment trains 'seacat'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing created before the check


@pytest.mark.slow
def test_resume_continues_the_same_wandb_run(assets):
    """One W&B run per job, across a resume: the id kept in the run dir names the resumed run."""
    tmp, base = assets
    run_dir = tmp / "wandb-job"
    wb = ["logger.wandb.enabled=true", "logger.wandb.project=resume-test", "trainer.limit_train_batches=3"]
    first = [o for o in base if not o.startswith("trainer.max_epochs")] + wb
    run_train(CONFIG, first + ["trainer.max_epochs=1", f"output_dir={run_dir}"])
    run_id = (run_dir / "wandb_run_id.txt").read_text().strip()
    last = run_dir / "checkpoints" / "last.ckpt"
    steps_before = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    run_train(CONFIG, first + ["trainer.max_epochs=2", f"resume={run_dir}"])
    assert (run_dir / "wandb_run_id.txt").read_text().strip() == run_id
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert runs and all(r.name.endswith(f"-{run_id}") for r in runs), runs  # never a second run id
    # the resumed job trained its second epoch in the same run dir (3 batches an epoch)
    assert steps_before == 3
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 2 * steps_before
