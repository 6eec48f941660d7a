"""MCML-BERT: the multi-class multi-label classifier baseline for L-Coarse issues (000 §5.1, Table 2).

Why: 000 §5.1 compares the seq2seq model with "a multi-class multi-label classification model
for L-Coarse issues using BERT" (no L-Granular: too many distinct issues for a label set). An
encoder + one sigmoid per coarse label, trained with binary cross-entropy on the same
MultilevelIssuesDataModule splits (`target_format: multilabel`); its predicted label sets go through
the very same ROUGE/SimCSE metrics, so `test/coarse/*` of both runs form one table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from feedback_nlp.core.model_factory import PACKAGED_MINILM, load_encoder, load_tokenizer
from feedback_nlp.lightning_modules.base import TaskModule
from feedback_nlp.metrics.multilevel_issues import LevelMetrics, SentenceEmbedder
from feedback_nlp.nets.mcml_bert import McmlNet, predicted_label_sets

__all__ = ["McmlBertModule", "predicted_label_sets"]


class McmlBertModule(TaskModule):
    """Encoder + linear + sigmoid over the coarse label set seen in training.

    Args:
        labels: The coarse issue labels (from the DataModule's task_info).
        pretrained: Hugging Face encoder name or folder.
        pooling: Text vector from the token states: cls or mean.
        dropout: Dropout before the linear head.
        threshold: Probability from which a label is predicted.
        at_least_one: Predict the most likely label when none reaches the threshold.
        simcse_model: Sentence encoder of the SimCSE metric (000 §4.3).
        simcse_threshold: Cosine above which a predicted and an annotated issue match (000 eq. 1: 0.7).
        rouge_use_stemmer: Porter-stem words before ROUGE.
        max_source_length: Tokens per feedback; the DataModule truncates to it.
    """

    task = "mcml_bert"
    optim_defaults = {"lr": 5e-5}

    def __init__(
        self,
        labels: Sequence[str] | None = None,
        pretrained: str = PACKAGED_MINILM,
        pooling: str = "cls",
        dropout: float = 0.1,
        threshold: float = 0.5,
        at_least_one: bool = True,
        simcse_model: str = PACKAGED_MINILM,
        simcse_threshold: float = 0.7,
        rouge_use_stemmer: bool = False,
        max_source_length: int = 512,
        optim: Mapping[str, Any] | None = None,
    ):
        super().__init__(optim, **self.optim_defaults)
        if not labels:
            raise ValueError(
                "McmlBertModule needs the coarse label set (MultilevelIssuesDataModule.task_info()['labels'])"
            )
        if pooling not in ("cls", "mean"):
            raise ValueError(f"model.pooling must be cls or mean, got {pooling!r}")
        self.save_hyperparameters()
        self.labels = list(labels)
        self.threshold, self.at_least_one, self.max_source_length = threshold, at_least_one, max_source_length
        self.net = McmlNet(load_encoder(pretrained), len(self.labels), pooling, dropout)
        self.tokenizer = load_tokenizer(pretrained)
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.embedder = SentenceEmbedder(simcse_model)
        self.val_metrics = LevelMetrics(self.embedder, simcse_threshold, rouge_use_stemmer)
        self.test_metrics = LevelMetrics(self.embedder, simcse_threshold, rouge_use_stemmer)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.net(input_ids, attention_mask)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Checkpoints written before nets/ named the parameters `encoder.*` and `head.*`."""
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("state_dict") or {}
        for key in [k for k in state if k.startswith(("encoder.", "head."))]:
            state[f"net.{key}"] = state.pop(key)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.loss_fn(self(batch["input_ids"], batch["attention_mask"]), batch["labels"])
        self.log(
            "train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(batch["ids"]), sync_dist=True
        )
        return loss

    def _predict_sets(self, logits: torch.Tensor) -> list[list[str]]:
        return predicted_label_sets(torch.sigmoid(logits.float()).cpu(), self.labels, self.threshold, self.at_least_one)

    def _eval_step(self, stage: str, batch: dict[str, Any], metrics: LevelMetrics) -> None:
        logits = self(batch["input_ids"], batch["attention_mask"])
        self.log(
            f"{stage}/loss",
            self.loss_fn(logits, batch["labels"]),
            on_epoch=True,
            prog_bar=True,
            batch_size=len(batch["ids"]),
            sync_dist=True,
        )
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

    # --- serving (format: feedback_nlp/serving/mcml_bert.py) ------------------------------------------------------
    def input_limits(self) -> dict[str, int]:
        return {"max_source_length": self.max_source_length}

    def export_for_serving(self, out_dir: Path) -> dict[str, Any]:
        from feedback_nlp.serving.mcml_bert import write_export

        return write_export(
            Path(out_dir),
            self.net,
            self.tokenizer,
            self.labels,
            self.threshold,
            self.at_least_one,
            self.max_source_length,
        )
