"""Customer-agent transcripts for SeaCat (002 §2): sentences, speakers, offset positions.

Why: SeaCat treats a transcript as a sequence of sentences (002 §2.2, "time-distributed": one
sentence per step). The paper pads every transcript to 64 sentences x 128 tokens and runs the
encoder on the whole block; most of that block is padding (real chats have ~10-30 short
sentences). So the collate function tokenizes ONLY the real sentences, as one flat batch
padded to its longest sentence (identical sentences -- greetings, closings -- once), and
returns the index map that scatters the sentence embeddings back into (batch, sentences).
The result is the same as the padded block's for every real sentence; padded sentences are
masked out of the attention either way.
"""

from __future__ import annotations

from typing import Any, Sequence

from feedback_nlp.datamodules.base import RecordDataModule

# the batch format is SeaCat's input, shared with serving (which may not import this DataModule)
from feedback_nlp.datamodules.seacat_inputs import (
    TranscriptFeatures,
    agent_first_index,
    collate_features,
    featurize,
    offset_positions,
)

__all__ = [
    "TranscriptFeatures",
    "SeaCatDataModule",
    "agent_first_index",
    "collate_features",
    "featurize",
    "offset_positions",
]


class SeaCatDataModule(RecordDataModule):
    """Transcript JSONL -> SeaCat batches; labels = product/service classes seen in train.

    Args:
        dedupe_sentences: Encode each distinct sentence of a batch once (same result, less work).
        predict_split: Split that `predict` scores: train, dev, test or traffic.
    """

    kind = "transcript"
    default_overrides = {"batch_size": 16}  # this task's defaults for RecordDataModule's settings

    def __init__(
        self,
        dedupe_sentences: bool = True,
        predict_split: str = "test",
        **base: Any,  # path, splits, batch size, loader settings: RecordDataModule's parameters
    ):
        super().__init__(**{**self.default_overrides, **base})
        if predict_split not in ("train", "dev", "test", "traffic"):
            raise ValueError(f"predict_split must be train, dev, test or traffic, got {predict_split!r}")
        # the model's input sizes (model.max_sentences / model.max_tokens), set by `connect`
        self.max_sentences, self.max_tokens = 64, 128
        self.dedupe_sentences, self.predict_split = dedupe_sentences, predict_split
        self._features: dict[str, list[TranscriptFeatures]] = {}
        self._label_index: dict[str, int] | None = None

    def connect(
        self, tokenizer: Any = None, max_sentences: int | None = None, max_tokens: int | None = None, **limits: Any
    ) -> None:
        """The model's tokenizer and input sizes; features already built for other sizes are dropped."""
        super().connect(tokenizer, **limits)
        if max_sentences is not None and max_sentences != self.max_sentences:
            self.max_sentences, self._features = max_sentences, {}
        if max_tokens is not None:
            self.max_tokens = max_tokens

    def task_info(self) -> dict[str, Any]:
        splits = self.validate()
        labels = sorted({t.label for t in splits.train})
        if not labels:
            raise ValueError("SeaCatDataModule: the train split is empty")
        return {"labels": labels}

    def features(self, split: str) -> list[TranscriptFeatures]:
        if split not in self._features:
            self._features[split] = [featurize(t, self.max_sentences) for t in getattr(self.validate(), split)]
        return self._features[split]

    def collate(self, features: Sequence[TranscriptFeatures]) -> dict[str, Any]:
        if self._label_index is None:
            self._label_index = {label: i for i, label in enumerate(self.task_info()["labels"])}
        return collate_features(
            features, self.tokenizer, self.max_tokens, self._label_index, self.dedupe_sentences, self.pad_to_multiple_of
        )

    def train_dataloader(self):
        return self.loader(self.features("train"), self.collate, train=True)

    def val_dataloader(self):
        return self.loader(self.features("dev"), self.collate, train=False)

    def test_dataloader(self):
        return self.loader(self.features("test"), self.collate, train=False)

    def predict_dataloader(self):
        return self.loader(self.features(self.predict_split), self.collate, train=False)
