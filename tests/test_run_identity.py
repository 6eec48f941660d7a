"""Run identity and run directory rules, the resumable batch sampler and the prediction merge:
fast checks without training (the multi-process jobs are in test_multinode / test_slurm)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from feedback_nlp.callbacks.prediction_writer import merge_rows
from feedback_nlp.datamodules.batching import EpochBatchSampler, EpochRandomSampler, ResumableBatchSampler
from feedback_nlp.training.run_dir import (
    ENV_VAR,
    RunDirError,
    identity_from_env,
    latest_checkpoint,
    new_wandb_run_id,
    resolve_run_dir,
)
from tests.scale_helpers import free_port


@pytest.fixture(autouse=True)
def _no_inherited_run_dir(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_identity_order_and_sources():
    slurm = {"SLURM_JOB_ID": "77", "SLURM_STEP_ID": "2"}
    assert identity_from_env("my-run", {"TORCHELASTIC_RUN_ID": "abc", **slurm}).run_id == "my-run"
    assert identity_from_env(None, {"TORCHELASTIC_RUN_ID": "abc", **slurm}).run_id == "abc"
    # torchrun with c10d and no --rdzv-id says "none": that names nothing, SLURM's ids come next
    assert identity_from_env(None, {"TORCHELASTIC_RUN_ID": "none", **slurm}).run_id == "slurm-77-2"
    assert identity_from_env(None, {"SLURM_JOB_ID": "77", "SLURM_STEP_ID": "3"}).run_id == "slurm-77-3"
    array = {"SLURM_JOB_ID": "91", "SLURM_ARRAY_JOB_ID": "90", "SLURM_ARRAY_TASK_ID": "1", "SLURM_STEP_ID": "0"}
    assert identity_from_env(None, array).run_id == "slurm-90_1-0"
    assert identity_from_env(None, {"TORCHELASTIC_RUN_ID": "none"}) is None
    assert identity_from_env(None, {}) is None
    with pytest.raises(RunDirError, match="run_id='../x'"):
        identity_from_env("../x", {})


def test_finished_run_dir_is_not_reused_without_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "5")
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    path, identity = resolve_run_dir(None, "exp", str(tmp_path))
    assert path == tmp_path / "exp" / "slurm-5-0" and identity.source == "slurm"
    monkeypatch.delenv(ENV_VAR)
    path.mkdir(parents=True)
    (path / "metrics.json").write_text("{}")
    with pytest.raises(RunDirError, match="finished run"):
        resolve_run_dir(None, "exp", str(tmp_path))
    assert resolve_run_dir(None, "exp", str(tmp_path), resuming=True)[0] == path


def test_latest_checkpoint_is_the_newest_restart_point(tmp_path):
    import os

    assert latest_checkpoint(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    for i, name in enumerate(("checkpoints/last.ckpt", "hpc_ckpt_1.ckpt", "checkpoints/step.ckpt")):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, ns=(10**18 + i, 10**18 + i))
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step.ckpt"


def test_wandb_ids_are_fresh_and_wandb_safe():
    ids = {new_wandb_run_id() for _ in range(100)}
    assert len(ids) == 100 and all(i.isalnum() and i.islower() or i.isdigit() for i in ids)


BROADCAST = """
import json, sys
from feedback_nlp.training.run_dir import agree_run_identity
import torch.distributed as dist
identity = agree_run_identity(None, "cpu")
print(json.dumps([dist.get_rank(), identity.run_id, identity.source]))
dist.destroy_process_group()
"""


def test_new_id_is_made_on_rank_0_and_broadcast(tmp_path):
    """Two externally launched ranks with no job id agree on one new id (drawn independently,
    two ids made in the same second would still differ in their random part)."""
    port = str(free_port())
    procs = []
    for rank in (0, 1):
        env = {
            k: v for k, v in __import__("os").environ.items() if not k.startswith(("SLURM_", "TORCHELASTIC_", ENV_VAR))
        }
        env.update(
            {
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "WORLD_SIZE": "2",
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": port,
            }
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", BROADCAST],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    rows = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
        rows.append(json.loads(out.strip().splitlines()[-1]))
    assert [r[0] for r in rows] == [0, 1]
    assert rows[0][1] == rows[1][1] and rows[0][2] == rows[1][2] == "generated"


def test_resumable_batch_sampler_skips_once_and_only_in_its_epoch():
    def epoch_batches(resume_at=None, epoch=1):
        sampler = EpochRandomSampler(range(23), seed=3)
        sampler.set_epoch(epoch)
        return [list(b) for b in ResumableBatchSampler(sampler, 4, resume_at=resume_at)]

    full = epoch_batches()
    assert len(full) == 6 and sorted(i for b in full for i in b) == list(range(23))
    assert epoch_batches(resume_at=(1, 4)) == full[4:]
    assert epoch_batches(resume_at=(0, 4)) == full  # a position from another epoch is not applied
    sampler = EpochRandomSampler(range(23), seed=3)
    batches = ResumableBatchSampler(sampler, 4, resume_at=(0, 5))
    first, second = [list(b) for b in batches], [list(b) for b in batches]
    assert len(first) == 1 and len(second) == 6  # the next epoch starts at its beginning


def test_epoch_batch_sampler_resumes_with_the_same_length_groups():
    items = list(range(30))
    lengths = [(i * 7) % 11 for i in items]

    def make(at=None):
        return EpochBatchSampler(EpochRandomSampler(items, 1), 4, lengths=lengths, group_size=2, seed=1, resume_at=at)

    full = list(make())
    assert list(make((0, 3))) == full[3:]


def test_merge_rows_drops_padding_repeats_and_orders_by_id():
    shards = [
        [{"id": "10", "p": 1}, {"id": "2", "p": 2}, {"id": "b", "p": 3}],
        [{"id": "1", "p": 4}, {"id": "10", "p": 5}, {"id": "a", "p": 6}],
    ]
    merged = merge_rows(shards)
    assert [r["id"] for r in merged] == ["1", "2", "10", "a", "b"]
    assert [r["p"] for r in merged] == [4, 2, 1, 6, 3]  # the first copy of a repeated record is kept


def test_bad_run_settings_stop_before_anything_is_written(tmp_path, capsys):
    import random

    from feedback_nlp.cli import train
    from feedback_nlp.demo_data.seacat import generate_transcripts
    from tests.tiny_models import tiny_bert

    rows = generate_transcripts(random.Random(3), 40)
    data = tmp_path / "t.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bert = tiny_bert(tmp_path / "bert", [t["text"] for r in rows for t in r["turns"]])
    base = [
        "--config",
        str(Path(__file__).resolve().parent.parent / "configs/experiment/seacat_demo.yaml"),
        f"data.path={data}",
        f"model.pretrained={bert}",
        "trainer.accelerator=cpu",
        f"output_root={tmp_path / 'out'}",
    ]
    cases = [
        (["run_id=../escape"], "run_id='../escape'"),
        (["callbacks.step_checkpoint.every_n_train_steps=-1"], "every_n_train_steps must be >= 0"),
    ]
    for extra, message in cases:
        with pytest.raises(SystemExit) as e:
            train.main([*base, *extra])
        assert e.value.code == 2 and message in capsys.readouterr().err, extra
        assert not (tmp_path / "out").exists(), extra
