"""Product-safety claim classifier (001 §3.1 "Model Architecture", §4.2, §5).

Why this shape: the paper fine-tunes multilingual BERT with the [CLS] representation of the
last layer -> one linear layer -> softmax over {not safety, safety}, cross-entropy, Adam.
What makes it a product is around the model: the decision threshold is chosen for 95% dev
recall (callbacks/recall_threshold.py) and travels with the weights (a buffer, so every
checkpoint and export carries it), the evaluation reports the business KPIs of Table 3
(feedback_nlp/metrics/product_safety.py), and every prediction names the model version it came from (§5).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
from torchmetrics import CatMetric, MeanMetric

from feedback_nlp.core.model_factory import load_encoder, load_tokenizer, set_dropout
from feedback_nlp.core.vocabulary import SAFETY_LABELS
from feedback_nlp.lightning_modules.base import TaskModule
from feedback_nlp.metrics.module_map import ModuleMap
from feedback_nlp.metrics.product_safety import safety_kpis
from feedback_nlp.nets.product_safety import ENCODER_INPUTS, cls_logits
from feedback_nlp.serving import product_safety as safety_export

DEFAULT_LABELS = list(SAFETY_LABELS)
EVAL_FIELDS = ("index", "labels", "language", "group", "in_test", "in_traffic", "is_original", "escalated")
__all__ = ["ENCODER_INPUTS", "ProductSafetyClassifier", "cls_logits"]


class ProductSafetyClassifier(TaskModule):
    """001 §3.1: encoder [CLS] -> dropout -> linear -> softmax over {not safety, safety}.

    Args:
        pretrained: Hugging Face encoder name or folder (001: bert-base-multilingual-cased).
        labels: The two class names (from the DataModule's task_info).
        max_length: Tokens per claim the model was trained with (kept in the export).
        dropout: Dropout on the [CLS] vector before the linear head.
        encoder_dropout: Dropout inside the encoder (null: the checkpoint's own).
    """

    task = "product_safety"
    optim_defaults = {"lr": 3e-6, "optimizer": "adam"}  # 001 §3.1, §4.2

    def __init__(
        self,
        pretrained: str = "bert-base-multilingual-cased",
        labels: list[str] | None = None,
        max_length: int = 128,
        dropout: float = 0.1,
        encoder_dropout: float | None = None,
        optim: Mapping[str, Any] | None = None,
    ):
        super().__init__(optim, **self.optim_defaults)
        self.save_hyperparameters()
        self.labels = list(labels or DEFAULT_LABELS)
        if len(self.labels) != 2:
            raise ValueError(f"product safety is binary (001 §3); got labels {self.labels}")
        self.max_length = max_length
        self.encoder = load_encoder(pretrained)
        if encoder_dropout is not None:  # None: the checkpoint's own (0.1 for BERT and MiniLM)
            set_dropout(self.encoder, encoder_dropout)
        self.tokenizer = load_tokenizer(pretrained)
        self.dropout = nn.Dropout(dropout)  # on the [CLS] vector, before the linear head
        self.head = nn.Linear(self.encoder.config.hidden_size, 2)
        # 001 §4.2: the operating point, chosen on dev by RecallThreshold and saved in every
        # checkpoint (on_save_checkpoint). Python floats, not buffers: a bf16/fp16 run casts float
        # buffers, and a threshold rounded to 3 significant digits changes decisions.
        self.threshold: float = 0.5
        self.target_recall: float | None = None
        self.dev_recall: float | None = None
        self.val_loss = MeanMetric()
        self.val_store = ModuleMap({k: CatMetric() for k in ("index", "labels", "probs")})
        self.test_store = ModuleMap({k: CatMetric() for k in (*EVAL_FIELDS, "probs")})
        self._model_version: str | None = None  # not `_version`: nn.Module's state_dict format version
        self.test_arrays: dict[str, Any] | None = None  # the last test's gathered arrays, for plots

    # --- model -----------------------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        return cls_logits(self.encoder, self.head, batch, self.dropout)

    def probabilities(self, batch: dict[str, Any]) -> torch.Tensor:
        return torch.softmax(self(batch).float(), dim=-1)[:, 1]

    def set_threshold(self, threshold: float, target_recall: float | None, dev_recall: float | None) -> None:
        self.threshold = float(threshold)
        self.target_recall = None if target_recall is None else float(target_recall)
        self.dev_recall = None if dev_recall is None else float(dev_recall)

    # --- training and validation -------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = nn.functional.cross_entropy(self(batch), batch["labels"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["labels"]))
        return loss

    def on_validation_epoch_start(self) -> None:
        for m in self.val_store.values():
            m.reset()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = self(batch)
        self.val_loss.update(nn.functional.cross_entropy(logits, batch["labels"]), weight=len(batch["labels"]))
        self.log("val/loss", self.val_loss, prog_bar=True, batch_size=len(batch["labels"]))
        probs = torch.softmax(logits.float(), dim=-1)[:, 1]
        for key, value in (("index", batch["index"]), ("labels", batch["labels"]), ("probs", probs)):
            self.val_store[key].update(value.float())

    def validation_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, labels) of the whole dev set, gathered over ranks, each item once."""
        out = _gather(self.val_store)
        return out["probs"], out["labels"].astype(np.int64)

    # --- test: 001 §4.2 KPIs -----------------------------------------------------------------
    def on_test_epoch_start(self) -> None:
        for m in self.test_store.values():
            m.reset()

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        probs = self.probabilities(batch)
        self.test_store["probs"].update(probs)
        for key in EVAL_FIELDS:
            self.test_store[key].update(batch[key].float())

    def on_test_epoch_end(self) -> None:
        out = _gather(self.test_store)
        names = list(getattr(self.trainer_datamodule(), "languages", []) or [])
        langs = [names[i] if 0 <= i < len(names) else f"lang{i}" for i in out["language"].astype(np.int64)]
        threshold = float(self.threshold)
        flat, rows = safety_kpis(
            out["probs"],
            out["labels"].astype(np.int64),
            threshold,
            in_test=out["in_test"],
            in_traffic=out["in_traffic"],
            is_original=out["is_original"],
            escalated=out["escalated"],
            group=out["group"].astype(np.int64),
            languages=langs,
        )
        for key in ("target_recall", "dev_recall"):
            if getattr(self, key) is not None:
                flat[f"test/{key}"] = float(getattr(self, key))
        flat.update({k: float(v) for k, v in (getattr(self.trainer_datamodule(), "stats", None) or {}).items()})
        for key, value in flat.items():
            self.log(key, value, sync_dist=True)
        self.test_arrays = {**out, "languages": langs, "rows": rows, "threshold": threshold}
        self._report(flat, rows)

    def _report(self, flat: dict[str, float], rows: dict[str, dict]) -> None:
        if not self.trainer.is_global_zero:
            return
        from feedback_nlp.training.logging_setup import log_table

        columns = ["language", "precision", "recall", "n", "positives", "volume_model", "traffic"]
        data = [[code, *(row[c] for c in columns[1:])] for code, row in rows.items()]
        log_table(self.trainer, "test/per_language", columns, data)  # 001 §5: per-language dashboard
        f = lambda k: f"{flat[k]:.3f}" if k in flat else "n/a"  # noqa: E731
        print(
            f"[product_safety] test recall {f('test/recall')} at threshold {f('test/threshold')} "
            f"(dev target {f('test/target_recall')}, dev recall {f('test/dev_recall')}); "
            f"test precision {f('test/precision')}; Volume(Model) {flat['traffic/volume_model']:.0f}, "
            f"Volume(Model ∪ FCC) {flat['traffic/volume_model_or_fcc']:.0f} of {flat['traffic/size']:.0f} "
            f"traffic comments; language fairness avg std {f('test/fairness_std')} "
            f"over {flat['test/fairness_groups']:.0f} translated test comments",
            flush=True,
        )

    def reference_scores(self) -> dict[str, Any] | None:
        """The last test's probabilities per split (test, traffic; originals only) and language:
        the reference `feedback-nlp monitor` measures score drift against (serving/reference_scores.py)."""
        a = self.test_arrays
        if not a or not len(a["probs"]):
            return None
        from feedback_nlp.serving.reference_scores import reference_sample

        orig = a["is_original"].astype(bool)
        splits = {"test": orig & a["in_test"].astype(bool), "traffic": orig & a["in_traffic"].astype(bool)}
        return reference_sample(self.task, "probability", a["probs"], a["languages"], splits)

    # --- predict: 001 §5 every prediction links back to a model version ------------------------
    def on_predict_start(self) -> None:
        self._model_version = self.export_version()

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict]:
        probs = self.probabilities(batch).tolist()
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        t = float(self.threshold)
        return [
            {
                "id": i,
                "probability": p,
                "decision": int(p >= t),
                "label": self.labels[int(p >= t)],
                "threshold": t,
                "model_version": self._model_version,
                "predicted_at": stamp,
            }
            for i, p in zip(batch["ids"], probs)
        ]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["product_safety"] = {
            "threshold": self.threshold,
            "target_recall": self.target_recall,
            "dev_recall": self.dev_recall,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restores the threshold with the weights (Lightning calls this for test/predict on a ckpt)."""
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("product_safety")
        if state:
            self.set_threshold(state["threshold"], state.get("target_recall"), state.get("dev_recall"))

    # --- serving export (format: feedback_nlp/serving/product_safety.py) ---------------------------------------------
    def input_limits(self) -> dict[str, int]:
        return {"max_length": self.max_length}

    def export_version(self) -> str:
        """The model version an export of this module would get (serving/manifest.model_version:
        a hash of every file, so a new threshold is a new version)."""
        from feedback_nlp.serving.manifest import content_hashes, model_version

        with tempfile.TemporaryDirectory() as tmp:
            self.export_for_serving(Path(tmp))
            return model_version(content_hashes(Path(tmp)))

    def export_for_serving(self, out_dir: Path) -> dict[str, Any]:
        return safety_export.write_export(
            Path(out_dir),
            self.encoder,
            self.head,
            self.tokenizer,
            self.labels,
            self.threshold,
            self.max_length,
            self.target_recall,
            self.dev_recall,
        )


def _gather(store: ModuleMap[CatMetric]) -> dict[str, np.ndarray]:
    """Synced CatMetric states as arrays, each item once (DistributedSampler pads with repeats)."""
    out = {
        k: (m.compute().reshape(-1).cpu().numpy() if m._update_count else np.zeros(0, dtype=np.float32))
        for k, m in store.items()
    }
    _, keep = np.unique(out["index"].astype(np.int64), return_index=True)
    return {k: v[keep] for k, v in out.items()}
