"""SeaCat: Sentence Attention of Customer-Agent Transcript (002 §2.2-2.4).

Why: the customer's main question is the sentence a product/service classifier relies on most
(002 §2.2). SeaCat embeds every sentence with a pretrained encoder (time-distributed: one
sentence per step), adds a sinusoidal embedding of its offset from the agent's first sentence
(§2.3), and pools the sentences with softmax attention against one learned key vector
(eq. 1: a = softmax(E k), v = sum_i a_i E_i) before a dense softmax over the labels. The
attention weights then tag the main question (§2.4, `main_question.py`).

Only the real sentences go through the encoder: the collate function hands over one flat,
deduplicated block of them and the index map back into the (batch, sentence) grid.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric, SumMetric
from torchmetrics.classification import MulticlassAccuracy

from feedback_nlp.common.model_factory import load_encoder, load_tokenizer
from feedback_nlp.lightning_modules.base import TaskModule
from feedback_nlp.lightning_modules.main_question import pick_rule1, pick_rule2, rule_accuracy
from feedback_nlp.lightning_modules.sentence_position import SentencePositionEmbedding

POOLINGS = ("mean", "cls")


def encoder_layers(encoder: nn.Module) -> tuple[nn.Module, list[nn.Module]]:
    """(embeddings, transformer layers) of a BERT-like or DistilBERT-like HF encoder."""
    for path in ("encoder.layer", "transformer.layer", "layers", "layer"):
        obj: Any = encoder
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, nn.ModuleList):
            return getattr(encoder, "embeddings"), list(obj)
    raise ValueError(f"freeze_layers: don't know the layers of {type(encoder).__name__}")


def freeze_lower_layers(encoder: nn.Module, n: int) -> None:
    """Freeze embeddings + the lowest `n` layers (n < 0: the whole encoder). Saves the
    backward pass through them: autograd only starts at the first trainable layer."""
    if n == 0:
        return
    if n < 0:
        encoder.requires_grad_(False)
        return
    embeddings, layers = encoder_layers(encoder)
    for module in [embeddings, *layers[:n]]:
        module.requires_grad_(False)


class SeaCatNet(nn.Module):
    """The network of 002 Fig. 2, on a flat block of real sentences."""

    def __init__(self, encoder: nn.Module, n_labels: int, max_sentences: int, pooling: str = "mean",
                 position_embedding: bool = True, dropout: float = 0.1, cache_size: int = 0):
        super().__init__()
        self.cache_size = cache_size   # frozen encoder only: sentence embeddings kept across batches
        self._cache: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.encoder, self.pooling, self.use_positions = encoder, pooling, position_embedding
        dim = encoder.config.hidden_size
        self.positions = SentencePositionEmbedding(max_sentences, dim)
        self.key = nn.Parameter(torch.randn(dim) * 0.02)             # eq. 1: the learned key vector k
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, n_labels)

    @property
    def encoder_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.encoder.parameters())

    def train(self, mode: bool = True) -> "SeaCatNet":
        super().train(mode)
        if self.encoder_frozen:      # a frozen encoder gives its pretrained embeddings: no dropout
            self.encoder.eval()
        return self

    def encode_sentences(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One embedding per sentence row (time-distributed encoder).

        With a frozen encoder and `cache_size` > 0, a sentence (its token ids) seen before is
        not encoded again: greetings and closings repeat across transcripts and epochs.
        """
        if not (self.cache_size > 0 and self.encoder_frozen):
            return self._encode(input_ids, attention_mask)
        ids, mask = input_ids.cpu(), attention_mask.cpu().bool()
        keys = [row[m].numpy().tobytes() for row, m in zip(ids, mask)]
        missing = [i for i, k in enumerate(keys) if k not in self._cache]
        if missing:
            fresh = self._encode(input_ids[missing], attention_mask[missing]).detach()
            for i, emb in zip(missing, fresh):
                self._cache[keys[i]] = emb
        out = torch.stack([self._cache[k] for k in keys])
        for k in keys:
            self._cache.move_to_end(k)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def _encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.encoder_frozen):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)

    def sentence_grid(self, sentence_emb: torch.Tensor, sentence_source: torch.Tensor,
                      sentence_index: torch.Tensor, sentence_mask: torch.Tensor,
                      positions: torch.Tensor) -> torch.Tensor:
        """Scatter the distinct sentences' embeddings back to B x S x d and add 002 §2.3's PE."""
        b, s = sentence_mask.shape
        real = sentence_emb[sentence_source]
        grid = real.new_zeros(b * s, real.shape[-1]).index_copy(0, sentence_index, real).view(b, s, -1)
        return grid + self.positions(positions) if self.use_positions else grid

    def attend(self, grid: torch.Tensor, sentence_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """002 eq. 1 with Q = V = E and key vector k: logits over labels, weights a (B x S)."""
        scores = (grid @ self.key).masked_fill(~sentence_mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        pooled = torch.einsum("bs,bsd->bd", weights, grid)
        return self.classifier(self.dropout(pooled)), weights

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, sentence_source: torch.Tensor,
                sentence_index: torch.Tensor, sentence_mask: torch.Tensor,
                positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.encode_sentences(input_ids, attention_mask)
        grid = self.sentence_grid(emb, sentence_source, sentence_index, sentence_mask, positions)
        return self.attend(grid, sentence_mask)


EXAMPLE_COLUMNS = ("transcript", "sentence", "offset", "speaker", "text", "weight", "rule1", "rule2", "annotated")
NET_INPUTS = ("input_ids", "attention_mask", "sentence_source", "sentence_index", "sentence_mask", "positions")


def prediction_rows(batch: dict[str, Any], logits: torch.Tensor, weights: torch.Tensor, labels: Sequence[str],
                    window: int) -> list[dict[str, Any]]:
    """JSON rows: label, its distribution, sentence weights and the rule 1 / rule 2 question."""
    probs = torch.softmax(logits.float(), dim=-1).cpu().tolist()
    rows = []
    for b, rid in enumerate(batch["ids"]):
        sents, speakers = batch["sentences"][b], batch["speakers"][b]
        w = weights[b, : len(sents)].float().cpu().tolist()
        i1 = pick_rule1(w, speakers)
        i2 = pick_rule2(w, speakers, batch["agent_first"][b], window)
        dist = dict(sorted(zip(labels, probs[b]), key=lambda kv: -kv[1]))
        rows.append({"id": rid, "label": next(iter(dist)), "label_distribution": dist,
                     "sentences": sents, "speakers": speakers, "sentence_weights": w,
                     "agent_first": batch["agent_first"][b],
                     "main_question": {"rule1": None if i1 is None else sents[i1],
                                       "rule2": None if i2 is None else sents[i2]},
                     "main_question_index": {"rule1": i1, "rule2": i2}})
    return rows


class SeaCat(TaskModule):
    task = "seacat"
    record_kind = "transcript"

    def __init__(self, labels: list[str] | None = None, pretrained: str = "packaged:all-MiniLM-L6-v2",
                 max_sentences: int = 64, max_tokens: int = 128, pooling: str = "mean",
                 position_embedding: bool = True, main_question_window: int = 2, freeze_layers: int = 0,
                 dropout: float = 0.1, embedding_cache_size: int = 0, head_lr: float | None = None,
                 log_examples: int = 8,
                 lr: float = 5e-5, weight_decay: float = 0.01, warmup_steps: int = 0, optimizer: str = "adamw",
                 lr_schedule: str = "constant", fused_optimizer: bool = False):
        super().__init__(lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps, optimizer=optimizer,
                         lr_schedule=lr_schedule, fused_optimizer=fused_optimizer)
        if not labels:
            raise ValueError("SeaCat needs the label list (the data module's task_info provides it)")
        self.save_hyperparameters()
        self.labels = list(labels)
        self.window, self.head_lr, self.log_examples = main_question_window, head_lr, log_examples
        self.tokenizer = load_tokenizer(pretrained)
        encoder = load_encoder(pretrained)
        freeze_lower_layers(encoder, freeze_layers)
        self.net = SeaCatNet(encoder, len(labels), max_sentences, pooling, position_embedding, dropout,
                             embedding_cache_size)
        n = len(labels)
        self.acc = nn.ModuleDict({s: MulticlassAccuracy(num_classes=n, average="micro") for s in ("val", "test")})
        self.loss_mean = nn.ModuleDict({s: MeanMetric() for s in ("val", "test")})
        self.rule_counts = nn.ModuleDict({f"{s}_{k}": SumMetric() for s in ("val", "test")
                                          for k in ("rule1", "rule2", "annotated")})
        self._examples: list[list[Any]] = []

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(**{k: batch[k] for k in NET_INPUTS})

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits, _ = self(batch)
        loss = F.cross_entropy(logits, batch["labels"], ignore_index=-100)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]), sync_dist=True)
        return loss

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        logits, weights = self(batch)
        y = batch["labels"]
        known = y >= 0
        if known.any():
            self.loss_mean[stage].update(F.cross_entropy(logits[known], y[known]), weight=int(known.sum()))
            self.acc[stage].update(logits[known].argmax(-1), y[known])
        rows = prediction_rows(batch, logits, weights, self.labels, self.window)
        total = sum(1 for a in batch["main_question"] if a)
        for rule in ("rule1", "rule2"):
            correct, _ = rule_accuracy([r["main_question"][rule] for r in rows], batch["main_question"])
            self.rule_counts[f"{stage}_{rule}"].update(correct)
        self.rule_counts[f"{stage}_annotated"].update(total)
        if stage == "test" and len({e[0] for e in self._examples}) < self.log_examples:
            self._collect_examples(rows, batch["main_question"])

    def _log_stage(self, stage: str) -> None:
        if self.loss_mean[stage].update_count:
            self.log(f"{stage}/loss", self.loss_mean[stage].compute(), sync_dist=True)
            self.log(f"{stage}/acc", self.acc[stage].compute(), sync_dist=True)
        annotated = self.rule_counts[f"{stage}_annotated"].compute()
        if annotated > 0:   # 002 §2.4: accuracy of each rule against the annotated main question
            for rule in ("rule1", "rule2"):
                self.log(f"{stage}/main_question/{rule}_acc",
                         self.rule_counts[f"{stage}_{rule}"].compute() / annotated, sync_dist=True)
        for metric in [self.loss_mean[stage], self.acc[stage],
                       *(self.rule_counts[f"{stage}_{k}"] for k in ("rule1", "rule2", "annotated"))]:
            metric.reset()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_stage("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_start(self) -> None:
        self._examples = []

    def on_test_epoch_end(self) -> None:
        self._log_stage("test")
        self._log_example_table()

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> list[dict[str, Any]]:
        logits, weights = self(batch)
        return prediction_rows(batch, logits, weights, self.labels, self.window)

    # --- 002 Fig. 4-style view: one transcript with its sentence weights (W&B table) --------
    def _collect_examples(self, rows: list[dict[str, Any]], annotated: Sequence[str | None]) -> None:
        from feedback_nlp.lightning_modules.main_question import is_main_question
        for row, truth in zip(rows, annotated):
            if len({e[0] for e in self._examples}) >= self.log_examples:
                break
            for i, (sent, spk, w) in enumerate(zip(row["sentences"], row["speakers"], row["sentence_weights"])):
                self._examples.append([row["id"], i, i - row["agent_first"], spk, sent, round(w, 4),
                                       i == row["main_question_index"]["rule1"], i == row["main_question_index"]["rule2"],
                                       bool(truth) and is_main_question(sent, truth)])

    def example_rows(self) -> list[dict[str, Any]]:
        """The test examples' sentences (weight, rule 1/2 pick, annotated) as dicts, for plots."""
        return [dict(zip(EXAMPLE_COLUMNS, e)) for e in self._examples]

    def _log_example_table(self) -> None:
        from lightning.pytorch.loggers import WandbLogger
        columns = list(EXAMPLE_COLUMNS)
        for logger in self.loggers:
            if isinstance(logger, WandbLogger) and self._examples:
                logger.log_table(key="test/main_question_examples", columns=columns, data=self._examples)

    def param_groups(self) -> list[dict[str, Any]]:
        """An optional separate learning rate for the new head (key vector + classifier start
        from scratch; the encoder is pretrained)."""
        head = [p for n, p in self.net.named_parameters() if not n.startswith("encoder.") and p.requires_grad]
        body = [p for n, p in self.net.named_parameters() if n.startswith("encoder.") and p.requires_grad]
        return [{"params": body}, {"params": head, "lr": self.head_lr or self.lr}]

    # --- serving ---------------------------------------------------------------------------
    def export_for_serving(self, out_dir: Path, onnx_examples: Sequence[Any] = ()) -> dict[str, Any]:
        """Self-contained serving folder (safetensors + JSON; + ONNX checked against eager
        when example transcripts are given). See lightning_modules/seacat_serving.py."""
        from feedback_nlp.lightning_modules.seacat_serving import export_seacat
        return export_seacat(self, Path(out_dir), onnx_examples)


def load_predictor(export_dir: str | Path):
    """A SeaCat predictor loaded only from an export directory (safetensors + JSON)."""
    from feedback_nlp.lightning_modules.seacat_serving import SeaCatPredictor
    return SeaCatPredictor.load(Path(export_dir))
