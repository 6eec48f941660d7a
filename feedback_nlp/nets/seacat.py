"""SeaCat's network (002 §2.2-2.4, Fig. 2) and its prediction rows.

Why a plain module: the LightningModule (lightning_modules/seacat.py) trains it, the serving
predictor and the ONNX graph run it; all three read the same sentence weights and pick the
main question with the same rules (feedback_nlp/nets/main_question.py). The network embeds every real
sentence once (time-distributed encoder), adds 002 §2.3's offset embedding and pools the
sentences with softmax attention against one learned key vector (eq. 1).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

import torch
from torch import nn

from feedback_nlp.nets.main_question import pick_rule1, pick_rule2
from feedback_nlp.nets.pooling import POOLINGS, check_pooling, pool
from feedback_nlp.nets.sentence_position import SentencePositionEmbedding

__all__ = ["NET_INPUTS", "POOLINGS", "SeaCatNet", "prediction_rows"]


class SeaCatNet(nn.Module):
    """The network of 002 Fig. 2, on a flat block of real sentences."""

    def __init__(
        self,
        encoder: Any,
        n_labels: int,
        max_sentences: int,
        pooling: str = "mean",
        position_embedding: bool = True,
        dropout: float = 0.1,
        cache_size: int = 0,
    ):
        super().__init__()
        self.cache_size = cache_size  # frozen encoder only: sentence embeddings kept across batches
        self._cache: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self.encoder, self.pooling, self.use_positions = encoder, check_pooling(pooling), position_embedding
        dim = encoder.config.hidden_size
        self.positions = SentencePositionEmbedding(max_sentences, dim)
        self.key = nn.Parameter(torch.randn(dim) * 0.02)  # eq. 1: the learned key vector k
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, n_labels)

    @property
    def encoder_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.encoder.parameters())

    def train(self, mode: bool = True) -> SeaCatNet:
        super().train(mode)
        if self.encoder_frozen:  # a frozen encoder gives its pretrained embeddings: no dropout
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
        return pool(hidden, attention_mask, self.pooling)

    def sentence_grid(
        self,
        sentence_emb: torch.Tensor,
        sentence_source: torch.Tensor,
        sentence_index: torch.Tensor,
        sentence_mask: torch.Tensor,
        positions: torch.Tensor,
    ) -> torch.Tensor:
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

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        sentence_source: torch.Tensor,
        sentence_index: torch.Tensor,
        sentence_mask: torch.Tensor,
        positions: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.encode_sentences(input_ids, attention_mask)
        grid = self.sentence_grid(emb, sentence_source, sentence_index, sentence_mask, positions)
        return self.attend(grid, sentence_mask)


NET_INPUTS = ("input_ids", "attention_mask", "sentence_source", "sentence_index", "sentence_mask", "positions")


def prediction_rows(
    batch: dict[str, Any], logits: torch.Tensor, weights: torch.Tensor, labels: Sequence[str], window: int
) -> list[dict[str, Any]]:
    """JSON rows: label, its distribution, sentence weights and the rule 1 / rule 2 question."""
    probs = torch.softmax(logits.float(), dim=-1).cpu().tolist()
    rows = []
    for b, rid in enumerate(batch["ids"]):
        sents, speakers = batch["sentences"][b], batch["speakers"][b]
        w = weights[b, : len(sents)].float().cpu().tolist()
        i1 = pick_rule1(w, speakers)
        i2 = pick_rule2(w, speakers, batch["agent_first"][b], window)
        dist = dict(sorted(zip(labels, probs[b]), key=lambda kv: -kv[1]))
        rows.append(
            {
                "id": rid,
                "label": next(iter(dist)),
                "label_distribution": dist,
                "sentences": sents,
                "speakers": speakers,
                "sentence_weights": w,
                "agent_first": batch["agent_first"][b],
                "main_question": {
                    "rule1": None if i1 is None else sents[i1],
                    "rule2": None if i2 is None else sents[i2],
                },
                "main_question_index": {"rule1": i1, "rule2": i2},
            }
        )
    return rows
