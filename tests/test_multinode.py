"""Two simulated nodes on loopback: torchrun --nnodes 2 with c10d rendezvous and no --rdzv-id
(so TORCHELASTIC_RUN_ID is "none"), one process per node, each node with its own working
directory and output root (no shared file system).

Checks: rc 0 on both; both ranks ran (world size 2, ranks 0 and 1, different working dirs);
one run identity (both ranks report the same run dir name) but only node 0 holds a run dir and
one W&B offline run; predictions gathered through the process group: every test record exactly
once, ordered by id, although each rank predicted only its own shard; and the synced test
metrics equal a single-process evaluation of the same checkpoint on the same data.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from feedback_nlp.demo_data.seacat import generate_transcripts
from tests.scale_helpers import REPO, free_port, job_env, metrics, only_run_dir
from tests.test_scale import single_process_test
from tests.tiny_models import tiny_bert

pytestmark = pytest.mark.slow
CONFIG = REPO / "configs/experiment/seacat_demo.yaml"


def node_env() -> dict[str, str]:
    env = job_env()
    for key in ("MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        env.pop(key, None)  # torchrun sets them for its workers
    return {k: v for k, v in env.items() if not k.startswith("SLURM_")}


def test_two_nodes_one_run(tmp_path):
    rows = generate_transcripts(random.Random(11), 64)
    data = tmp_path / "transcripts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bert = tiny_bert(tmp_path / "bert", [t["text"] for r in rows for t in r["turns"]])
    probe = tmp_path / "probe" / "job"
    overrides = [
        f"data.path={data}",
        f"model.pretrained={bert}",
        "model.freeze_layers=0",
        "data.batch_size=8",
        "model.max_sentences=8",
        "model.max_tokens=16",
        "trainer.max_epochs=1",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.num_nodes=2",
        "trainer.strategy=ddp",
        "trainer.limit_train_batches=3",
        "logger.wandb.enabled=true",
        "callbacks.serving_export=null",
        "callbacks.progress_bar=null",
        "+callbacks.probe.class_path=tests.probes.StartProbe",
        f"+callbacks.probe.path={probe}",
    ]
    endpoint = f"127.0.0.1:{free_port()}"
    procs, roots = [], []
    for node in (0, 1):
        workdir, root = tmp_path / f"node{node}" / "work", tmp_path / f"node{node}" / "outputs"
        workdir.mkdir(parents=True)
        roots.append(root)
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "2",
            "--node-rank",
            str(node),
            "--nproc-per-node",
            "1",
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            endpoint,
            "--rdzv-conf",
            f"is_host={int(node == 0)}",
            "--max-restarts",
            "0",
            str(REPO / "train.py"),
            "--config",
            str(CONFIG),
            *overrides,
            f"output_root={root}",
        ]
        procs.append(
            subprocess.Popen(
                cmd, cwd=workdir, env=node_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    outs = [p.communicate(timeout=400)[0] for p in procs]
    for node, (p, out) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f"node {node} failed ({p.returncode}):\n{out[-6000:]}"

    starts = [json.loads(probe.with_name(f"job.start.rank{r}").read_text()) for r in (0, 1)]
    assert [s["world_size"] for s in starts] == [2, 2] and [s["rank"] for s in starts] == [0, 1]
    assert starts[0]["cwd"] != starts[1]["cwd"]
    run_names = {
        json.loads(probe.with_name(f"job.start.rank{r}").read_text())["run_dir"].rsplit("/", 1)[-1] for r in (0, 1)
    }
    assert len(run_names) == 1, run_names  # one identity, agreed over the process group

    experiment = OmegaConf.load(CONFIG).experiment
    run_dir = only_run_dir(roots[0], experiment)
    assert run_dir.name in run_names
    assert not any(p.is_file() for p in roots[1].rglob("*")), "node 1 wrote files of its own"
    wandb_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 1, wandb_runs
    assert wandb_runs[0].name.endswith((run_dir / "wandb_run_id.txt").read_text().strip())

    # predictions: each rank predicted a part; the file has every test record once, by id
    cfg = OmegaConf.load(run_dir / "config.yaml")
    from feedback_nlp.core.instantiate import instantiate

    dm = instantiate(cfg.data, "data")
    test_ids = sorted(
        (r.id for r in dm.validate().test), key=lambda i: (0, int(i), "") if str(i).isdigit() else (1, 0, str(i))
    )
    assert len(test_ids) % 2 == 1  # odd: a padding sampler would repeat one record
    shards = [json.loads(probe.with_name(f"job.predict.rank{r}").read_text())["ids"] for r in (0, 1)]
    assert all(shards) and sorted(shards[0] + shards[1]) == sorted(map(str, test_ids))
    predicted = [json.loads(line)["id"] for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert [str(i) for i in predicted] == [str(i) for i in test_ids]

    ddp = metrics(run_dir)
    single = single_process_test(run_dir)
    shared = [k for k in single if k.startswith("test/") and k in ddp]
    assert "test/acc" in shared and "test/loss" in shared
    for key in shared:
        assert ddp[key] == pytest.approx(single[key], abs=1e-5), key
