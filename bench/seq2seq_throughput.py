"""Benchmark: training samples/s of the issue model (000) vs HF `Seq2SeqTrainer`, and Lightning's overhead.

    python bench/seq2seq_throughput.py                       # MiniLM enc-dec (2+1 layers, the demo model), CPU-sized
    python bench/seq2seq_throughput.py --pretrained t5-base --encoder-layers 0 --decoder-layers 0 \
        --batch-size 40 --steps 200 --max-source-length 512 --max-target-length 64   # paper scale, GPU

Three trainers, measured in the same process on the same weights (reset before each), the same
training samples (epoch 0 of `MultiTaskSamples`: both issue levels, shuffled as in training),
the same batch size, AdamW and gradient clipping 1.0:
- `hf`: transformers `Seq2SeqTrainer` as `run_summarization.py` uses it: texts tokenized ahead
  (not timed), `DataCollatorForSeq2Seq` dynamic padding, random batches (its default sampler);
- `plain`: a bare PyTorch loop over OUR DataLoader (tokenize in collate, dynamic padding,
  length-grouped batches) and our loss (`seq2seq_loss`);
- `lightning`: `MultiLevelIssuesModule` + `MultilevelIssuesDataModule` under `L.Trainer` (logging on,
  no checkpoints) — the same batches and loss as `plain`.
All three use fused AdamW (HF's default `optim`; ours via `configure_optimizers`). The first
--warmup steps of each are not timed; --repeats interleaved rounds replay the same batches and
each step's fastest time counts (robust on a shared machine). Goals (issue 3): lightning / hf
>= 1.2, and Lightning's overhead (1 - lightning / plain) <= 3%.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import torch

from feedback_nlp.datamodules.multilevel_issues import MultilevelIssuesDataModule, Seq2SeqCollator
from feedback_nlp.lightning_modules.multilevel_issues import MultiLevelIssuesModule
from feedback_nlp.lightning_modules.seq2seq_backbone import seq2seq_loss


def feedback_file(path: str | None, n: int, seed: int) -> str:
    if path:
        return path
    from feedback_nlp.core.io import atomic_write_jsonl
    from feedback_nlp.demo_data.multilevel_issues import generate_feedback

    out = Path(tempfile.mkdtemp()) / "feedback.jsonl"
    return str(atomic_write_jsonl(out, generate_feedback(random.Random(seed), n)))


def build(a: argparse.Namespace, data: str) -> tuple[MultiLevelIssuesModule, MultilevelIssuesDataModule]:
    dm = MultilevelIssuesDataModule(
        train_path=data,
        dev_path=data,
        batch_size=a.batch_size,
        seed=0,
        group_by_length=not a.no_grouping,
    )
    dm.validate()
    info = {k: v for k, v in dm.task_info().items() if k != "labels"}
    module = MultiLevelIssuesModule(
        pretrained=a.pretrained,
        encoder_layers=a.encoder_layers or None,
        decoder_layers=a.decoder_layers or None,
        optim={"lr": a.lr},
        generate_on_validation=False,
        copy_input_baseline=False,
        max_source_length=a.max_source_length,
        max_target_length=a.max_target_length,
        **info,
    )
    dm.connect(tokenizer=module.tokenizer, **module.input_limits())
    dm.setup("fit")
    return module, dm


class StepClock:
    """Per-step wall times after `warmup` steps (from one step's end to the next's) and batch sizes."""

    def __init__(self, warmup: int):
        self.warmup, self.steps, self.last = warmup, 0, None
        self.durations: list[float] = []
        self.sizes: list[int] = []

    def step(self, batch_size: int) -> None:
        now = time.perf_counter()
        self.steps += 1
        if self.steps > self.warmup:
            self.durations.append(now - self.last)
            self.sizes.append(batch_size)
        self.last = now

    @property
    def rate(self) -> float:
        return sum(self.sizes) / sum(self.durations) if self.durations else float("nan")


def best_rate(clocks: list[StepClock]) -> float:
    """Samples/s from the fastest time of each step index over the rounds (each round replays the
    same batches): a step slowed by another process on a shared machine does not count."""
    n = min(len(c.durations) for c in clocks)
    fastest = [min(c.durations[k] for c in clocks) for k in range(n)]
    return sum(clocks[0].sizes[:n]) / sum(fastest) if n else float("nan")


def run_plain(module, dm, a, device) -> float:
    model = module.model.to(device).train()
    opt = module.configure_optimizers()  # the very optimizer Lightning gets (fused AdamW, same groups)
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    clock = StepClock(a.warmup)
    while clock.steps < a.steps + a.warmup:
        for batch in dm.train_dataloader():
            loss, _, _ = seq2seq_loss(
                model, batch["input_ids"].to(device), batch["attention_mask"].to(device), batch["labels"].to(device)
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
            clock.step(len(batch["ids"]))
            if clock.steps >= a.steps + a.warmup:
                break
    return clock


def run_lightning(module, dm, a, device) -> float:
    import lightning as L

    class Clock(L.Callback):
        def __init__(self):
            self.clock = StepClock(a.warmup)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if device.type == "cuda":
                torch.cuda.synchronize()
            self.clock.step(len(batch["ids"]))

    cb = Clock()
    trainer = L.Trainer(
        accelerator=device.type,
        devices=1,
        max_steps=a.steps + a.warmup,
        limit_val_batches=0,
        logger=L.pytorch.loggers.CSVLogger(tempfile.mkdtemp()),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
        callbacks=[cb],
    )
    trainer.fit(module, datamodule=dm)
    return cb.clock


def run_hf(module, dm, a, device) -> float:
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

    samples, collate = dm.train_samples, Seq2SeqCollator(module.tokenizer, a.max_source_length, a.max_target_length)
    rows = []
    for i in range(len(samples)):  # tokenized ahead, as run_summarization's dataset.map (not timed)
        item = samples[(0, i)]
        enc = collate.encode([item["source"]], [item["target"]])
        rows.append(
            {
                "input_ids": enc["input_ids"][0].tolist(),
                "attention_mask": enc["attention_mask"][0].tolist(),
                "labels": enc["labels"][0].tolist(),
            }
        )

    clock = StepClock(a.warmup)

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if device.type == "cuda":
                torch.cuda.synchronize()
            clock.step(a.batch_size)

    args = Seq2SeqTrainingArguments(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=a.batch_size,
        max_steps=a.steps + a.warmup,
        learning_rate=a.lr,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        max_grad_norm=1.0,
        dataloader_num_workers=0,
        use_cpu=device.type == "cpu",
    )
    # optim: HF's default, fused AdamW — the same kernel ours uses
    trainer = Seq2SeqTrainer(
        model=module.model,
        args=args,
        train_dataset=rows,
        data_collator=DataCollatorForSeq2Seq(module.tokenizer, model=module.model),
        callbacks=[Clock()],
    )
    trainer.train()
    return clock


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrained", default="packaged:all-MiniLM-L6-v2")
    p.add_argument("--encoder-layers", type=int, default=2, help="0 = all (EncoderDecoder warm start only)")
    p.add_argument("--decoder-layers", type=int, default=1)
    p.add_argument("--data", default=None, help="feedback JSONL (default: 400 synthetic demo records)")
    p.add_argument("--n-records", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=20, help="timed steps per trainer")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--max-source-length", type=int, default=96)
    p.add_argument("--max-target-length", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--no-grouping", action="store_true", help="ours without length-grouped batches")
    p.add_argument("--only", default="hf,plain,lightning")
    p.add_argument("--repeats", type=int, default=2, help="interleaved rounds; each step's fastest time counts")
    p.add_argument("--json", default=None, help="also write the results here")
    a = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = feedback_file(a.data, a.n_records, 0)
    module, dm = build(a, data)
    initial = {k: v.detach().clone() for k, v in module.model.state_dict().items()}
    clocks: dict[str, list[StepClock]] = {}
    for r in range(a.repeats):  # interleaved rounds over the same batches
        for name in a.only.split(","):
            module.model.load_state_dict(initial)
            torch.manual_seed(0)
            clock = {"hf": run_hf, "plain": run_plain, "lightning": run_lightning}[name](module, dm, a, device)
            clocks.setdefault(name, []).append(clock)
            print(f"{name:>9}: {clock.rate:.2f} training samples/s (round {r + 1})", flush=True)
    rates = {name: best_rate(cs) for name, cs in clocks.items()}
    for name, rate in rates.items():
        print(f"{name:>9}: {rate:.2f} training samples/s (fastest time of each step over {a.repeats} rounds)")
    out = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "batch_size": a.batch_size,
        "pretrained": a.pretrained,
        "samples_per_s": rates,
    }
    if "hf" in rates and "lightning" in rates:
        out["lightning_vs_hf"] = rates["lightning"] / rates["hf"]
        print(f"ours (Lightning) / HF Seq2SeqTrainer: {out['lightning_vs_hf']:.2f}x  (goal >= 1.2x)")
    if "plain" in rates and "lightning" in rates:
        out["lightning_overhead"] = 1 - rates["lightning"] / rates["plain"]
        print(f"Lightning overhead vs plain PyTorch loop: {100 * out['lightning_overhead']:+.1f}%  (goal <= 3%)")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
