"""The per-level metric bundle (ROUGE-1/2 F, SimCSE P/R/F1) and the sentence embedder behind it.

Why: 000 §4.3 scores L-Coarse and L-Granular issues separately with the same four numbers, and
the MCML-BERT baseline (000 §5.1, Table 2) must go through exactly the same code so one table
compares them. The embedder is loaded lazily through the model factory and is deliberately not
an `nn.Module` attribute of the metric, so its weights never enter a task checkpoint.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from feedback_nlp.metrics.rouge import RougeF
from feedback_nlp.metrics.simcse import SimCSEScore


class SentenceEmbedder:
    """A callable list[str] -> (n, d) L2-normalised embeddings, loaded on first use and cached.

    `name` is a model-factory name: a SimCSE model in production
    (`princeton-nlp/sup-simcse-bert-base-uncased`), the packaged MiniLM offline.
    """

    def __init__(self, name: str, batch_size: int = 128, max_cache: int = 200_000):
        self.name, self.batch_size, self.max_cache = name, batch_size, max_cache
        self.device: str | torch.device = "cpu"
        self._model = None
        self._cache: dict[str, torch.Tensor] = {}

    def __getstate__(self) -> dict:
        # DDP spawn / deepcopy: ship the name, not the weights; each process loads its own copy
        return {**self.__dict__, "_model": None, "_cache": {}}

    def _load(self):
        if self._model is None:
            from feedback_nlp.common.model_factory import load_sentence_transformer
            self._model = load_sentence_transformer(self.name, device=str(self.device))
            self._model.eval()
        return self._model

    def __call__(self, texts: list[str]) -> torch.Tensor:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            model = self._load()
            if str(next(model.parameters()).device) != str(torch.device(self.device)):
                model.to(self.device)
            with torch.inference_mode():
                vectors = model.encode(missing, batch_size=self.batch_size, convert_to_tensor=True,
                                       normalize_embeddings=True, show_progress_bar=False)
            if len(self._cache) + len(missing) > self.max_cache:
                self._cache.clear()
            self._cache.update(zip(missing, vectors.float().cpu()))
        return torch.stack([self._cache[t] for t in texts])


class LevelMetrics(nn.Module):
    """ROUGE-1 F, ROUGE-2 F and SimCSE P/R/F1 for one issue level; each a DDP-syncing Metric."""

    def __init__(self, embed: SentenceEmbedder, threshold: float = 0.7, use_stemmer: bool = False):
        super().__init__()
        self.rouge1 = RougeF(1, use_stemmer)
        self.rouge2 = RougeF(2, use_stemmer)
        self.simcse = SimCSEScore(embed, threshold)

    def update(self, preds: Sequence[Sequence[str]], targets: Sequence[Sequence[str]]) -> None:
        if not preds:
            return
        self.rouge1.update(preds, targets)
        self.rouge2.update(preds, targets)
        self.simcse.update(preds, targets)

    def compute(self) -> dict[str, float]:
        simcse = self.simcse.compute()
        return {"rouge1": float(self.rouge1.compute()), "rouge2": float(self.rouge2.compute()),
                "simcse_precision": float(simcse["precision"]), "simcse_recall": float(simcse["recall"]),
                "simcse_f1": float(simcse["f1"])}

    def reset(self) -> None:
        for m in (self.rouge1, self.rouge2, self.simcse):
            m.reset()
