"""SLURM: two local processes with a faked `srun` environment (2 tasks on one node).

Checks the run identity (job id + step id names the run dir, on both ranks) and Lightning's
auto-requeue: SIGUSR1 to both tasks writes the requeue checkpoint and calls `scontrol requeue
<job id>` (a fake on PATH records it); after the tasks are killed and started again with the same
job id (as SLURM does on requeue), the job continues in the same run dir, from the saved step and
optimizer state, in the same W&B run, and finishes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import time

import pytest
import torch
from omegaconf import OmegaConf

from feedback_nlp.demo_data.seacat import generate_transcripts
from tests.probes import optimizer_fingerprint
from tests.scale_helpers import REPO, free_port, job_env, train_cmd
from tests.tiny_models import tiny_bert

pytestmark = pytest.mark.slow
CONFIG = "configs/experiment/seacat_demo.yaml"
JOB = "4242"


def slurm_env(rank: int, port: int, bin_dir, restart: int) -> dict[str, str]:
    env = {k: v for k, v in job_env().items() if not k.startswith(("SLURM_", "TORCHELASTIC_"))}
    env.update(
        {
            "SLURM_JOB_ID": JOB,
            "SLURM_STEP_ID": "0",
            "SLURM_NTASKS": "2",
            "SLURM_NTASKS_PER_NODE": "2",
            "SLURM_NNODES": "1",
            "SLURM_NODEID": "0",
            "SLURM_PROCID": str(rank),
            "SLURM_LOCALID": str(rank),
            "SLURM_NODELIST": "localhost",
            "SLURM_JOB_NAME": "feedback-nlp",
            "SLURM_RESTART_COUNT": str(restart),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}",
        }
    )
    return env


def start(overrides, bin_dir, restart, logs):
    port = free_port()
    return [
        subprocess.Popen(
            train_cmd(CONFIG, overrides),
            cwd=REPO,
            env=slurm_env(r, port, bin_dir, restart),
            stdout=open(logs / f"r{restart}-rank{r}.log", "w"),
            stderr=subprocess.STDOUT,
        )
        for r in (0, 1)
    ]


def test_slurm_identity_and_requeue_continue_the_same_run(tmp_path):
    rows = generate_transcripts(random.Random(13), 64)
    data = tmp_path / "transcripts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bert = tiny_bert(tmp_path / "bert", [t["text"] for r in rows for t in r["turns"]])
    bin_dir, logs = tmp_path / "bin", tmp_path / "logs"
    bin_dir.mkdir(), logs.mkdir()
    calls = tmp_path / "scontrol_calls.txt"
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    root = tmp_path / "outputs"
    base = [
        f"data.path={data}",
        f"model.pretrained={bert}",
        "model.freeze_layers=0",
        "data.batch_size=4",
        "model.max_sentences=8",
        "model.max_tokens=16",
        "trainer.max_epochs=1",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.num_nodes=1",
        "trainer.strategy=ddp",
        "logger.wandb.enabled=true",
        "callbacks.serving_export=null",
        "callbacks.progress_bar=null",
        "run_predict=false",
        f"output_root={root}",
    ]
    marker = tmp_path / "paused"
    pause = [
        "+callbacks.pause.class_path=tests.probes.PauseAtStep",
        "+callbacks.pause.step=3",
        f"+callbacks.pause.marker={marker}",
    ]

    first = start(base + pause, bin_dir, 0, logs)
    deadline = time.time() + 300
    paused = [marker.with_name(f"paused.rank{r}") for r in (0, 1)]
    while not all(m.exists() for m in paused) and all(p.poll() is None for p in first) and time.time() < deadline:
        time.sleep(0.1)
    assert all(m.exists() for m in paused), "\n".join((logs / f"r0-rank{r}.log").read_text()[-3000:] for r in (0, 1))
    run_dir = root / OmegaConf.load(REPO / CONFIG).experiment / f"slurm-{JOB}-0"
    assert run_dir.is_dir(), sorted(root.rglob("*"))
    for p in first:
        p.send_signal(signal.SIGUSR1)  # SLURM's --signal=USR1@90 before the time limit
    hpc = run_dir / "hpc_ckpt_1.ckpt"
    while not (hpc.exists() and calls.exists() and calls.read_text().endswith("\n")) and time.time() < deadline:
        time.sleep(0.1)
    for p in first:  # SLURM ends the tasks after requeueing the job
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert calls.read_text().split() == ["requeue", JOB]
    saved = torch.load(hpc, map_location="cpu", weights_only=True)
    assert saved["global_step"] == 3
    wandb_id = (run_dir / "wandb_run_id.txt").read_text().strip()

    probe = tmp_path / "probe" / "requeued"
    second = start(
        base + ["+callbacks.probe.class_path=tests.probes.StartProbe", f"+callbacks.probe.path={probe}"],
        bin_dir,
        1,
        logs,
    )
    for r, p in enumerate(second):
        assert p.wait(timeout=400) == 0, (logs / f"r1-rank{r}.log").read_text()[-5000:]

    assert [p.name for p in run_dir.parent.iterdir()] == [run_dir.name]  # the same run dir, no second one
    assert (run_dir / "metrics.json").is_file()
    for r in (0, 1):
        start_row = json.loads(probe.with_name(f"requeued.start.rank{r}").read_text())
        assert start_row["world_size"] == 2 and start_row["rank"] == r
        assert start_row["run_dir"] == str(run_dir)
        assert start_row["global_step"] == 3  # continued from the requeue checkpoint, not from scratch
        assert start_row["optimizer"] == pytest.approx(optimizer_fingerprint(saved["optimizer_states"][0]), rel=1e-9)
    assert (run_dir / "wandb_run_id.txt").read_text().strip() == wandb_id
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) >= 2 and all(r.name.endswith(f"-{wandb_id}") for r in runs), runs  # one W&B run, resumed


def test_sbatch_template_asks_for_2x8_and_its_overrides_are_valid():
    """The template's resources match the trainer it starts, and the overrides it passes load."""
    import re
    import shlex

    from feedback_nlp.core.config import load_config

    text = (REPO / "jobs/slurm/train_2x8gpu.sbatch").read_text()
    directives = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)", text, re.MULTILINE))
    assert directives["nodes"] == "2" and directives["ntasks-per-node"] == "8" and directives["gpus-per-node"] == "8"
    assert directives["signal"] == "SIGUSR1@90" and "requeue" in text
    command = text[text.index("srun ") :].replace("\\\n", " ").split("\n")[0]
    env = {"SLURM_NTASKS_PER_NODE": "8", "SLURM_NNODES": "2", "CONFIG": "configs/experiment/seacat_demo.yaml"}
    command = re.sub(r"\$\{(\w+)(:-[^}]*)?\}|\$(\w+)", lambda m: env[m.group(1) or m.group(3)], command)
    args = shlex.split(command)
    overrides = [a for a in args[args.index("--config") + 2 :] if a != "$@"]
    cfg = load_config(REPO / args[args.index("--config") + 1], overrides)
    assert (cfg.trainer.devices, cfg.trainer.num_nodes, cfg.trainer.strategy) == (8, 2, "ddp")
    assert cfg.callbacks.step_checkpoint.every_n_train_steps == 500
