"""MCML-BERT: the multi-class multi-label classifier baseline for L-Coarse issues (000 §5.1, Table 2).

Why: 000 §5.1 compares the seq2seq model with "a multi-class multi-label classification model
for L-Coarse issues using BERT" (no L-Granular: too many distinct issues for a label set). An
encoder + one sigmoid per coarse label, trained with binary cross-entropy on the same
FeedbackDataModule splits (`target_format: multilabel`); its predicted label sets go through
the very same ROUGE/SimCSE metrics, so `test/coarse/*` of both runs form one table.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from feedback_nlp.common.model_factory import PACKAGED_MINILM, load_encoder, load_tokenizer
from feedback_nlp.lightning_modules.base import TaskModule
from feedback_nlp.metrics.level_metrics import LevelMetrics, SentenceEmbedder


def predicted_label_sets(probs: torch.Tensor, labels: Sequence[str], threshold: float = 0.5,
                         at_least_one: bool = True) -> list[list[str]]:
    """Labels whose probability passes `threshold`, most probable first; with `at_least_one`, the
    top label when none passes (every feedback in the data names at least one issue)."""
    out = []
    for row in probs:
        order = torch.argsort(row, descending=True).tolist()
        chosen = [labels[j] for j in order if row[j] >= threshold]
        if not chosen and at_least_one and order:
            chosen = [labels[order[0]]]
        out.append(chosen)
    return out


class McmlBertModule(TaskModule):
    """Encoder + linear + sigmoid over the coarse label set seen in training."""

    task = "mcml_bert"
    record_kind = "feedback"

    def __init__(self, labels: Sequence[str] | None = None, pretrained: str = PACKAGED_MINILM,
                 pooling: str = "cls", dropout: float = 0.1, threshold: float = 0.5, at_least_one: bool = True,
                 simcse_model: str = PACKAGED_MINILM, simcse_threshold: float = 0.7, rouge_use_stemmer: bool = False,
                 optim: Mapping[str, Any] | None = None):
        super().__init__(optim, lr=5e-5)
        if not labels:
            raise ValueError("McmlBertModule needs the coarse label set (FeedbackDataModule.task_info()['labels'])")
        if pooling not in ("cls", "mean"):
            raise ValueError(f"model.pooling must be cls or mean, got {pooling!r}")
        self.save_hyperparameters()
        self.labels = list(labels)
        self.encoder = load_encoder(pretrained)
        self.tokenizer = load_tokenizer(pretrained)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.encoder.config.hidden_size, len(self.labels)))
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.embedder = SentenceEmbedder(simcse_model)
        self.val_metrics = LevelMetrics(self.embedder, simcse_threshold, rouge_use_stemmer)
        self.test_metrics = LevelMetrics(self.embedder, simcse_threshold, rouge_use_stemmer)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.hparams.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.head(pooled)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.loss_fn(self(batch["input_ids"], batch["attention_mask"]), batch["labels"])
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(batch["ids"]),
                 sync_dist=True)
        return loss

    def _predict_sets(self, logits: torch.Tensor) -> list[list[str]]:
        return predicted_label_sets(torch.sigmoid(logits.float()).cpu(), self.labels, self.hparams.threshold,
                                    self.hparams.at_least_one)

    def _eval_step(self, stage: str, batch: dict[str, Any], metrics: LevelMetrics) -> None:
        logits = self(batch["input_ids"], batch["attention_mask"])
        self.log(f"{stage}/loss", self.loss_fn(logits, batch["labels"]), on_epoch=True, prog_bar=True,
                 batch_size=len(batch["ids"]), sync_dist=True)
        self.embedder.device = self.device
        metrics.update(self._predict_sets(logits), batch["annotated"])

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("val", batch, self.val_metrics)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("test", batch, self.test_metrics)

    def _log_metrics(self, stage: str, metrics: LevelMetrics) -> None:
        if int(metrics.simcse.count) == 0 and not torch.distributed.is_initialized():
            return
        for name, value in metrics.compute().items():
            self.log(f"{stage}/coarse/{name}", value, sync_dist=True)
        metrics.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_metrics)

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> list[dict[str, Any]]:
        sets = self._predict_sets(self(batch["input_ids"], batch["attention_mask"]))
        return [{"id": rid, "coarse": s} for rid, s in zip(batch["ids"], sets)]
