"""DDP on CPU (gloo), one W&B run per job, rank-0-only writes, metric sync, export + predict.

Each of the three LightningModules runs with 2 DDP processes for a few steps through the real
entry point (train.py as a subprocess). Synced test metrics must equal a single-process
evaluation of the same checkpoint on the same (even-sized, so unpadded) test set: unsynced
metrics would describe only rank 0's half.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys

import lightning as L
import pytest
from omegaconf import OmegaConf

from feedback_nlp.core.instantiate import import_object, instantiate
from feedback_nlp.demo_data.multilevel_issues import generate_feedback
from feedback_nlp.demo_data.product_safety import generate_claims
from feedback_nlp.demo_data.seacat import generate_transcripts
from tests.scale_helpers import REPO, metrics, only_run_dir, run_train
from tests.tiny_models import tiny_bert

pytestmark = pytest.mark.slow


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def even_test(rows, kind, split=None):
    """Drop one test record if needed so 2 ranks split the test set without padding."""
    from feedback_nlp.core.records import PARSERS
    from feedback_nlp.datamodules.splits import time_split

    split = (split or time_split)([PARSERS[kind](r) for r in rows])
    if len(split.test) % 2:
        drop = next(r.id for r in split.test if not getattr(r, "source_id", None))
        rows = [r for r in rows if str(r["id"]) != drop and r.get("source_id") != drop]
    return rows


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scale")
    claims = generate_claims(random.Random(1), 80)
    transcripts = even_test(generate_transcripts(random.Random(2), 96), "transcript")
    from feedback_nlp.datamodules.splits import random_split

    feedback_split = OmegaConf.load(REPO / CASES["multilevel_issues"][0]).data  # the demo's random split
    feedback = even_test(
        generate_feedback(random.Random(3), 96),
        "feedback",
        lambda recs: random_split(recs, 0, feedback_split.test_fraction, feedback_split.dev_fraction),
    )
    texts = (
        [c["text"] for c in claims]
        + [t["text"] for tr in transcripts for t in tr["turns"]]
        + [f["text"] + " " + ", ".join(f["coarse"] + f["granular"]) for f in feedback]
    )
    from tests.test_multilevel_e2e import tiny_t5

    return {
        "bert": tiny_bert(tmp / "bert", texts),
        "t5": tiny_t5(tmp / "t5", texts + ["identify high-level issues: identify fine-grain issues:"]),
        "claims": write_jsonl(tmp / "claims.jsonl", claims),
        "transcripts": write_jsonl(tmp / "transcripts.jsonl", transcripts),
        "feedback": write_jsonl(tmp / "feedback.jsonl", feedback),
        "tmp": tmp,
    }


CASES = {
    "product_safety": (
        "configs/experiment/product_safety_demo.yaml",
        [
            "data.path={claims}",
            "model.pretrained={bert}",
            "data.variant=original",
            "data.batch_size=8",
            "model.max_length=32",
        ],
    ),
    "multilevel_issues": (
        "configs/experiment/multilevel_issues_demo.yaml",
        [
            "data.path={feedback}",
            "model.pretrained={t5}",
            "model.architecture=auto",
            "model.encoder_layers=null",
            "model.decoder_layers=null",
            "model.simcse_model={bert}",
            "model.generate_on_validation=false",  # loss only: checkpoints and stopping follow val/loss
            "callbacks.checkpoint.monitor=val/loss",
            "callbacks.checkpoint.mode=min",
            "callbacks.early_stopping.monitor=val/loss",
            "callbacks.early_stopping.mode=min",
            "data.batch_size=8",
            "model.max_source_length=48",
            "model.max_target_length=12",
            "callbacks.checkpoint.save_last=true",
            "callbacks.checkpoint.save_weights_only=false",
        ],
    ),
    "seacat": (
        "configs/experiment/seacat_demo.yaml",
        [
            "data.path={transcripts}",
            "model.pretrained={bert}",
            "model.freeze_layers=0",
            "data.batch_size=8",
            "model.max_sentences=12",
            "model.max_tokens=16",
        ],
    ),
}
COMMON = [
    "trainer.accelerator=cpu",
    "trainer.devices=2",
    "trainer.strategy=ddp",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.log_every_n_steps=1",
    "logger.wandb.enabled=true",
    "run_predict=true",
]


def overrides(case, assets, out_root):
    _, extra = CASES[case]
    probe = ["+callbacks.probe.class_path=tests.probes.StartProbe", f"+callbacks.probe.path={out_root}.probe/job"]
    return [o.format(**assets) for o in extra] + [f"output_root={out_root}"] + probe


def predict_ids(run_dir):
    """The ids of the records the job predicts (its datamodule's predict split), rebuilt from config."""
    cfg = OmegaConf.load(run_dir / "config.yaml")
    dm = instantiate(cfg.data, "data")
    dm.validate()
    cls = import_object(cfg.model.class_path)
    ckpt = sorted((run_dir / "checkpoints").glob("best*.ckpt"))[-1]
    model = cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    dm.connect(tokenizer=model.tokenizer, **model.contract().input_limits)
    dm.setup("predict")
    return {str(i) for batch in dm.predict_dataloader() for i in batch["ids"]}


def single_process_test(run_dir):
    cfg = OmegaConf.load(run_dir / "config.yaml")
    dm = instantiate(cfg.data, "data")
    dm.validate()
    cls = import_object(cfg.model.class_path)
    ckpt = sorted((run_dir / "checkpoints").glob("best*.ckpt"))[-1]
    model = cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    dm.connect(tokenizer=model.tokenizer, **model.contract().input_limits)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    (row,) = trainer.test(model, datamodule=dm, verbose=False)
    return {k: float(v) for k, v in row.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_ddp_two_processes(case, assets):
    out_root = assets["tmp"] / f"runs-{case}"
    config, _ = CASES[case]
    experiment = OmegaConf.load(REPO / config).experiment
    run_train(config, COMMON + overrides(case, assets, out_root))

    # exactly one run dir, written once: config, checkpoints, metrics, predictions, export, one W&B run
    assert [p.name for p in out_root.iterdir()] == [experiment]
    run_dir = only_run_dir(out_root, experiment)
    assert (run_dir / "config.yaml").is_file() and (run_dir / "predictions.jsonl").is_file()
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert "last.ckpt" in ckpts and len(ckpts) == 2, ckpts
    assert not [p for p in run_dir.rglob(".*rank*")], "prediction shards left behind"

    # both ranks trained and predicted (a one-process run would pass every other check here)
    probe = out_root.with_name(out_root.name + ".probe")
    starts = [json.loads((probe / f"job.start.rank{r}").read_text()) for r in (0, 1)]
    assert [(s["rank"], s["world_size"]) for s in starts] == [(0, 2), (1, 2)]
    shards = [json.loads((probe / f"job.predict.rank{r}").read_text())["ids"] for r in (0, 1)]
    assert shards[0] and shards[1] and not set(shards[0]) & set(shards[1])
    predicted = [str(json.loads(line)["id"]) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert sorted(predicted) == sorted(shards[0] + shards[1])  # every record exactly once
    assert len(set(predicted)) == len(predicted) == len(predict_ids(run_dir))
    assert set(predicted) == predict_ids(run_dir)
    manifest = json.loads((run_dir / "export" / "manifest.json").read_text())
    assert manifest["task"] and manifest["files_sha256"] and len(manifest["model_version"]) == 16
    wandb_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 1, wandb_runs
    run_id = (run_dir / "wandb_run_id.txt").read_text().strip()
    assert wandb_runs[0].name.endswith(run_id)
    log = next(wandb_runs[0].glob("run-*.wandb")).read_bytes()  # protobuf records: keys are plain UTF-8
    for key in ("val/loss", "train/loss", "test/"):
        assert key.encode() in log, key

    # metrics synced across ranks == one process over the whole test set
    ddp = metrics(run_dir)
    single = single_process_test(run_dir)
    # token-averaged losses depend on how samples are batched, which differs between 2 ranks and
    # 1 process; every other test metric is a function of the per-sample outputs only
    shared = [k for k in single if k.startswith("test/") and k in ddp and not k.endswith("loss")]
    assert shared, (sorted(ddp), sorted(single))
    for k in shared:
        assert ddp[k] == pytest.approx(single[k], abs=1e-5), k

    # the export serves: `feedback-nlp predict` on the training file, every line stamped with the model version
    out = run_dir / "served.jsonl"
    data_file = {
        "product_safety": assets["claims"],
        "seacat": assets["transcripts"],
        "multilevel_issues": assets["feedback"],
    }[case]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "feedback_nlp",
            "predict",
            "--export",
            str(run_dir / "export"),
            "--input",
            str(data_file),
            "--output",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == sum(1 for _ in open(data_file))
    assert {r["model_version"] for r in rows} == {manifest["model_version"]}
