"""Mid-epoch fault tolerance: kill -9 in the middle of an epoch, resume from the step
checkpoint, and end with exactly the metrics of an uninterrupted run.

The kill point is made deterministic by a probe that stops the job after step 5 (the step
checkpoint is at step 3, both in epoch 0 of 7 steps): the resumed job must redo steps 4-5 on the same batches, with the
saved optimizer state, RNG and data position. Restarting the epoch from its first batch, or
starting fresh, gives different numbers (checked below), so equality means the position was
restored.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time

import pytest
import torch

from feedback_nlp.demo_data.seacat import generate_transcripts
from tests.probes import optimizer_fingerprint
from tests.scale_helpers import REPO, job_env, metrics, run_train, train_cmd
from tests.tiny_models import tiny_bert

CONFIG = "configs/experiment/seacat_demo.yaml"
EVERY, PAUSE = 3, 5


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fault")
    rows = generate_transcripts(random.Random(7), 72)
    data = tmp / "transcripts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bert = tiny_bert(tmp / "bert", [t["text"] for r in rows for t in r["turns"]])
    base = [
        f"data.path={data}",
        f"model.pretrained={bert}",
        "model.freeze_layers=0",
        "data.batch_size=4",
        "model.max_sentences=8",
        "model.max_tokens=16",
        "trainer.max_epochs=2",
        "trainer.accelerator=cpu",
        "model.dropout=0.2",
        "run_predict=false",
        "callbacks.serving_export=null",
        "callbacks.progress_bar=null",
        f"callbacks.step_checkpoint.every_n_train_steps={EVERY}",
    ]
    return tmp, base


def _probe(path):
    return ["+callbacks.start_probe.class_path=tests.probes.StartProbe", f"+callbacks.start_probe.path={path}"]


@pytest.mark.slow
def test_kill_mid_epoch_then_resume_matches_uninterrupted(assets):
    tmp, base = assets
    run_train(CONFIG, base + [f"output_dir={tmp / 'straight'}"])
    expected = metrics(tmp / "straight")

    crashed, marker = tmp / "crashed", tmp / "paused"
    paused = marker.with_name("paused.rank0")
    pause = [
        "+callbacks.pause.class_path=tests.probes.PauseAtStep",
        f"+callbacks.pause.step={PAUSE}",
        f"+callbacks.pause.marker={marker}",
    ]
    with (tmp / "crashed.log").open("w") as log:
        proc = subprocess.Popen(
            train_cmd(CONFIG, base + pause + [f"output_dir={crashed}"]),
            cwd=REPO,
            env=job_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 300
        while not paused.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
    assert paused.exists(), f"the job never reached step {PAUSE}: {(tmp / 'crashed.log').read_text()[-3000:]}"
    assert code == -signal.SIGKILL
    assert not (crashed / "metrics.json").exists()

    ckpt = torch.load(crashed / "checkpoints" / "step.ckpt", map_location="cpu", weights_only=True)
    steps_per_epoch = torch.load(tmp / "straight" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] // 2
    assert ckpt["global_step"] == EVERY and ckpt["epoch"] == 0 and EVERY < PAUSE < steps_per_epoch
    dm_key = next(k for k, v in ckpt.items() if isinstance(v, dict) and "train_position" in v)
    assert ckpt[dm_key]["train_position"] == [0, EVERY]  # mid-epoch: the data position travels in the checkpoint

    # control: the same checkpoint without the data position replays the epoch from its first
    # batch, and ends elsewhere; so the equality below is evidence that the position was used
    control = tmp / "control" / "checkpoints"
    control.mkdir(parents=True)
    torch.save({k: v for k, v in ckpt.items() if k != dm_key}, control / "step.ckpt")
    run_train(CONFIG, base + [f"resume={control.parent}"])
    assert metrics(control.parent)["test/loss"] != pytest.approx(expected["test/loss"], abs=1e-6)

    probe = tmp / "probe" / "resumed"
    run_train(CONFIG, base + _probe(probe) + [f"resume={crashed}"])
    start = json.loads(probe.with_name("resumed.start.rank0").read_text())
    # the resumed job started at the saved step with the saved optimizer moments (a fresh start has none)
    assert start["global_step"] == EVERY
    saved = optimizer_fingerprint(ckpt["optimizer_states"][0])
    assert saved and start["optimizer"] == pytest.approx(saved, rel=1e-9)

    resumed = metrics(crashed)
    keys = [k for k in ("test/acc", "test/loss", "val/loss", "val/acc", "train/loss") if k in expected]
    assert "test/loss" in keys and "val/loss" in keys
    for key in keys:
        assert resumed[key] == pytest.approx(expected[key], abs=1e-6), key
