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

from typing import Any, Mapping, Sequence

from feedback_nlp.datamodules.base import RecordDataModule

# the batch format is SeaCat's input, shared with serving (which may not import this DataModule)
from feedback_nlp.nets.seacat_inputs import (
    TranscriptFeatures,
    agent_first_index,
    collate_features,
    featurize,
    offset_positions,
)

__all__ = [
    "TranscriptFeatures",
    "TranscriptsDataModule",
    "agent_first_index",
    "collate_features",
    "featurize",
    "offset_positions",
]


class TranscriptsDataModule(RecordDataModule):
    """Transcript JSONL -> SeaCat batches; labels = product/service classes seen in train."""

    kind = "transcript"

    def __init__(
        self,
        path: str | None = None,
        train_path: str | None = None,
        dev_path: str | None = None,
        test_path: str | None = None,
        field_map: Mapping[str, str] | None = None,
        split: str = "auto",
        dev_fraction: float = 0.1,
        test_fraction: float = 0.2,
        test_month: str | None = None,
        seed: int = 0,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int | None = 0,
        max_sentences: int = 64,
        max_tokens: int = 128,
        dedupe_sentences: bool = True,
        predict_split: str = "test",
        pin_memory: bool | None = None,
        pad_to_multiple_of: int | None = None,
    ):
        super().__init__(
            path=path,
            train_path=train_path,
            dev_path=dev_path,
            test_path=test_path,
            field_map=field_map,
            split=split,
            dev_fraction=dev_fraction,
            test_fraction=test_fraction,
            test_month=test_month,
            seed=seed,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            pad_to_multiple_of=pad_to_multiple_of,
        )
        if max_sentences < 1 or max_tokens < 2:
            raise ValueError(f"max_sentences must be >= 1 and max_tokens >= 2, got {max_sentences}, {max_tokens}")
        if predict_split not in ("train", "dev", "test", "traffic"):
            raise ValueError(f"predict_split must be train, dev, test or traffic, got {predict_split!r}")
        self.max_sentences, self.max_tokens = max_sentences, max_tokens
        self.dedupe_sentences, self.predict_split = dedupe_sentences, predict_split
        self._features: dict[str, list[TranscriptFeatures]] = {}
        self._label_index: dict[str, int] | None = None

    def task_info(self) -> dict[str, Any]:
        splits = self.validate()
        labels = sorted({t.label for t in splits.train})
        if not labels:
            raise ValueError("TranscriptsDataModule: the train split is empty")
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
