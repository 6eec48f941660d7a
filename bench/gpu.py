"""Benchmark (needs a CUDA GPU): the seq2seq (000) and safety (001) fine-tunes under our Lightning
trainer against the Hugging Face Trainer, on the same model, data and batches, bf16, one GPU.

    python bench/gpu.py                                  # demo-sized models and data
    python bench/gpu.py --seq2seq-pretrained t5-base --safety-pretrained bert-base-multilingual-cased \
        --batch-size 32 --steps 100                      # paper-sized models
    python bench/gpu.py --cpu-smoke                      # the same code paths on CPU, fp32 (no figures)

Printed per task and trainer: training samples/s (after --warmup untimed steps), peak GPU memory
(torch.cuda.max_memory_allocated), and MFU = 6 x parameters x real (non-pad) tokens per second
/ the GPU's dense bf16 peak (from its name; unknown GPUs print no MFU). The ratio ours / HF is
measured in the same run, so it does not depend on which GPU the run got. Without a GPU it says
so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

# dense bf16 tensor-core peaks (FLOP/s), from the vendors' data sheets (SXM parts)
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10": 125e12}


def peak_flops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16.items() if k.lower() in name.lower()), None)


class Meter:
    """Samples, real tokens and wall time of the steps after `warmup`."""

    def __init__(self, warmup: int, cuda: bool):
        self.warmup, self.cuda, self.steps = warmup, cuda, 0
        self.samples = self.tokens = 0
        self.start: float | None = None

    def step(self, samples: int, tokens: int) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        self.steps += 1
        if self.steps == self.warmup:
            self.start = time.perf_counter()
        elif self.steps > self.warmup:
            self.samples += samples
            self.tokens += tokens

    def result(self, params: int, peak: float | None) -> dict[str, float | None]:
        seconds = time.perf_counter() - (self.start or time.perf_counter())
        out: dict[str, float | None] = {
            "samples_per_s": self.samples / seconds if seconds else None,
            "tokens_per_s": self.tokens / seconds if seconds else None,
        }
        out["mfu"] = 6 * params * out["tokens_per_s"] / peak if (peak and out["tokens_per_s"]) else None
        return out


def real_tokens(batch: dict[str, Any]) -> int:
    n = int(batch["attention_mask"].sum())
    if "labels" in batch and batch["labels"].dim() == 2:  # seq2seq: decoder tokens too
        n += int((batch["labels"] != -100).sum())
    return n


# --- the two tasks: (LightningModule, DataModule, nn.Module for HF, train items, collate) --------------
def seq2seq_task(a: argparse.Namespace) -> dict[str, Any]:
    from feedback_nlp.core.io import atomic_write_jsonl
    from feedback_nlp.datamodules.multilevel_issues import MultilevelIssuesDataModule, Seq2SeqCollator
    from feedback_nlp.demo_data.multilevel_issues import generate_feedback
    from feedback_nlp.lightning_modules.multilevel_issues import MultiLevelIssuesModule

    data = a.seq2seq_data or str(
        atomic_write_jsonl(
            Path(tempfile.mkdtemp()) / "feedback.jsonl", generate_feedback(random.Random(0), a.n_records)
        )
    )
    dm = MultilevelIssuesDataModule(
        train_path=data,
        dev_path=data,
        batch_size=a.batch_size,
        seed=0,
        pad_to_multiple_of=8,
    )
    dm.validate()
    info = {k: v for k, v in dm.task_info().items() if k != "labels"}
    module = MultiLevelIssuesModule(
        pretrained=a.seq2seq_pretrained,
        optim={"lr": 1e-4, "fused": True},
        generate_on_validation=False,
        copy_input_baseline=False,
        max_source_length=a.max_length,
        max_target_length=64,
        **info,
    )
    dm.connect(tokenizer=module.tokenizer, **module.input_limits())
    dm.setup("fit")
    samples = dm.train_samples
    items = [samples[(0, i)] for i in range(len(samples))]
    collate = Seq2SeqCollator(module.tokenizer, a.max_length, 64, pad_to_multiple_of=8)
    return {
        "module": module,
        "dm": dm,
        "hf_model": module.model,
        "items": items,
        "collate": lambda rows: {k: v for k, v in collate(rows).items() if isinstance(v, torch.Tensor)},
    }


class _SafetyForHF(torch.nn.Module):
    """Our product-safety classifier with the loss HF's Trainer expects from forward()."""

    def __init__(self, module: Any):
        super().__init__()
        self.module = module

    def forward(self, labels: torch.Tensor, **batch: Any) -> dict[str, torch.Tensor]:
        logits = self.module(batch)
        return {"loss": torch.nn.functional.cross_entropy(logits.float(), labels), "logits": logits}


def safety_task(a: argparse.Namespace) -> dict[str, Any]:
    from feedback_nlp.core.io import atomic_write_jsonl
    from feedback_nlp.datamodules.product_safety import ProductSafetyDataModule
    from feedback_nlp.demo_data.product_safety import generate_claims
    from feedback_nlp.lightning_modules.product_safety import ProductSafetyClassifier

    data = a.safety_data or str(
        atomic_write_jsonl(Path(tempfile.mkdtemp()) / "claims.jsonl", generate_claims(random.Random(0), a.n_records))
    )
    dm = ProductSafetyDataModule(
        path=data,
        variant="original",
        batch_size=a.batch_size,
        seed=0,
        progress=False,
        pad_to_multiple_of=8,
    )
    dm.validate()
    module = ProductSafetyClassifier(
        pretrained=a.safety_pretrained,
        max_length=a.max_length,
        optim={"lr": 2e-5, "optimizer": "adamw", "fused": True},
        **dm.task_info(),
    )
    dm.connect(tokenizer=module.tokenizer, **module.input_limits())
    dm.setup("fit")
    items = [x for x in dm._train_items(dm.fit_items()[0]) if x["label"] >= 0]

    def collate(rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = dm.collate(rows)
        return {k: batch[k] for k in ("input_ids", "attention_mask", "labels") if k in batch}

    return {"module": module, "dm": dm, "hf_model": _SafetyForHF(module), "items": items, "collate": collate}


# --- the two trainers -----------------------------------------------------------------------------
def run_lightning(task: dict[str, Any], a: argparse.Namespace, meter: Meter) -> None:
    import lightning as L

    class Clock(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            meter.step(len(batch["input_ids"]) if "ids" not in batch else len(batch["ids"]), real_tokens(batch))

    trainer = L.Trainer(
        accelerator=a.device,
        devices=1,
        precision=a.precision,
        max_steps=a.steps + a.warmup,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        num_sanity_val_steps=0,
        callbacks=[Clock()],
    )
    trainer.fit(task["module"], datamodule=task["dm"])


def run_hf(task: dict[str, Any], a: argparse.Namespace, meter: Meter) -> None:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    collate = task["collate"]
    sizes: list[tuple[int, int]] = []

    def counting_collate(rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = collate(rows)
        sizes.append((len(rows), real_tokens(batch)))
        return batch

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            meter.step(*sizes.pop(0))

    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=a.batch_size,
        max_steps=a.steps + a.warmup,
        learning_rate=2e-5,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        max_grad_norm=1.0,
        bf16=a.precision.startswith("bf16"),
        dataloader_num_workers=0,
        remove_unused_columns=False,
        use_cpu=a.device == "cpu",
    )
    Trainer(
        model=task["hf_model"],
        args=args,
        train_dataset=task["items"],
        data_collator=counting_collate,
        callbacks=[Clock()],
    ).train()


def measure(run: Callable, task: dict[str, Any], a: argparse.Namespace, initial: dict, peak: float | None) -> dict:
    task["module"].load_state_dict(initial)
    torch.manual_seed(0)
    cuda = a.device == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    meter = Meter(a.warmup, cuda)
    run(task, a, meter)
    params = sum(p.numel() for p in task["hf_model"].parameters())
    out = meter.result(params, peak)
    out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seq2seq-pretrained", default="packaged:all-MiniLM-L6-v2")
    p.add_argument("--safety-pretrained", default="packaged:all-MiniLM-L6-v2")
    p.add_argument("--seq2seq-data", default=None)
    p.add_argument("--safety-data", default=None)
    p.add_argument("--n-records", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--only", default="seq2seq,safety")
    p.add_argument("--cpu-smoke", action="store_true", help="run the code paths on CPU in fp32 (no figures)")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    if not torch.cuda.is_available() and not a.cpu_smoke:
        print(
            "bench/gpu.py needs a CUDA GPU and none is visible: nothing measured "
            "(--cpu-smoke runs the code paths on CPU)."
        )
        return 0
    a.device = "cuda" if torch.cuda.is_available() and not a.cpu_smoke else "cpu"
    a.precision = "bf16-mixed" if a.device == "cuda" else "32-true"
    name = torch.cuda.get_device_name() if a.device == "cuda" else "cpu"
    peak = peak_flops(name) if a.device == "cuda" else None
    results: dict[str, Any] = {"device": name, "precision": a.precision, "batch_size": a.batch_size}
    for task_name in a.only.split(","):
        task = {"seq2seq": seq2seq_task, "safety": safety_task}[task_name](a)
        initial = {k: v.detach().clone() for k, v in task["module"].state_dict().items()}
        row = {"hf": measure(run_hf, task, a, initial, peak), "ours": measure(run_lightning, task, a, initial, peak)}
        if row["hf"]["samples_per_s"] and row["ours"]["samples_per_s"]:
            row["ours_vs_hf"] = row["ours"]["samples_per_s"] / row["hf"]["samples_per_s"]
        results[task_name] = row
        for who in ("hf", "ours"):
            r = row[who]
            mem = f"{r['peak_memory_gib']:.2f} GiB" if r["peak_memory_gib"] is not None else "n/a"
            mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
            print(
                f"{task_name:>8} {who:>4}: {r['samples_per_s']:.1f} samples/s, peak memory {mem}, MFU {mfu}", flush=True
            )
        if "ours_vs_hf" in row:
            print(f"{task_name:>8} ours / HF Trainer: {row['ours_vs_hf']:.2f}x", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
