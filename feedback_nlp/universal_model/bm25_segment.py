"""What the compiled BM25 engine stores per repository chunk: term frequencies (`Segment`).

Why a file of its own: a segment is written once with its chunk and shared by every later
generation (chunks.py), so it holds only what does not change when other questions are
added or deleted -- each question's key, token count and term counts, and the chunk's
vocabulary. Everything that does change (N, document frequencies, average length, the BM25
weights) is recomputed from the live segments at load (numba_bm25.py). The analyzer and the
length code are tantivy's, so the default weighting ranks like the tantivy backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from feedback_nlp.universal_model.text import tokenize

VARIANTS = {"lucene": (1.2, 0.75), "okapi": (1.5, 0.75)}
MAX_TOKEN_BYTES = 40  # tantivy's default analyzer drops longer tokens (RemoveLongFilter)


def _field_norms() -> np.ndarray:
    """Lucene/tantivy one-byte length codes: code c < 24 means length c; above, 3 mantissa bits
    and an exponent (SmallFloat.intToByte4). Table of the 256 decoded lengths, ascending."""
    out = np.zeros(256, np.int64)
    for c in range(256):
        if c < 24:
            out[c] = c
        else:
            e = c - 24
            bits, shift = e & 7, e >> 3
            out[c] = 24 + (bits if shift == 0 else (bits | 8) << (shift - 1))
    return out


FIELD_NORMS = _field_norms()


def field_norm(lengths: np.ndarray) -> np.ndarray:
    """Token counts -> the length tantivy scores with (largest table value <= the count)."""
    return FIELD_NORMS[np.searchsorted(FIELD_NORMS, lengths, side="right") - 1]


def analyze(text: str, variant: str = "lucene") -> list[str]:
    toks = tokenize(text)
    if variant == "lucene":
        return [t for t in toks if len(t) * 4 <= MAX_TOKEN_BYTES or len(t.encode()) <= MAX_TOKEN_BYTES]
    return toks


@dataclass
class Segment:
    """Term frequencies of a batch of questions, in the order given (a repository chunk)."""

    keys: np.ndarray  # int64 [n]
    lengths: np.ndarray  # int32 [n], tokens per question
    ptr: np.ndarray  # int64 [n + 1], question i's terms are terms[ptr[i]:ptr[i + 1]]
    terms: np.ndarray  # int32 [nnz], index into vocab
    tfs: np.ndarray  # int32 [nnz]
    vocab: list[str]

    @classmethod
    def from_texts(cls, keys: Sequence[int] | np.ndarray, texts: Sequence[str], variant: str = "lucene") -> Segment:
        vocab: dict[str, int] = {}
        lengths = np.zeros(len(texts), np.int32)
        ptr = np.zeros(len(texts) + 1, np.int64)
        terms: list[int] = []
        tfs: list[int] = []
        for i, text in enumerate(texts):
            toks = analyze(text, variant)
            lengths[i] = len(toks)
            counts: dict[str, int] = {}
            for t in toks:
                counts[t] = counts.get(t, 0) + 1
            for t, n in counts.items():
                terms.append(vocab.setdefault(t, len(vocab)))
                tfs.append(n)
            ptr[i + 1] = len(terms)
        return cls(
            np.asarray(keys, np.int64),
            lengths,
            ptr,
            np.asarray(terms, np.int32),
            np.asarray(tfs, np.int32),
            list(vocab),
        )

    def __len__(self) -> int:
        return len(self.keys)

    def select(self, keep: np.ndarray) -> Segment:
        """The questions where `keep` is True (a chunk rewritten without its deleted questions)."""
        starts, ends = self.ptr[:-1][keep], self.ptr[1:][keep]
        lengths = ends - starts
        ptr = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=ptr[1:])
        idx = np.repeat(starts - ptr[:-1], lengths) + np.arange(ptr[-1])
        used = np.zeros(len(self.vocab), bool)
        used[self.terms[idx]] = True
        remap = np.cumsum(used, dtype=np.int32) - 1
        vocab = [t for t, u in zip(self.vocab, used) if u]  # a deleted question's own words leave the file too
        return Segment(self.keys[keep], self.lengths[keep], ptr, remap[self.terms[idx]], self.tfs[idx], vocab)

    def save(self, path: str | Path) -> None:
        blob = np.frombuffer("\n".join(self.vocab).encode("utf-8"), np.uint8)
        with open(path, "wb") as f:
            np.savez(f, keys=self.keys, lengths=self.lengths, ptr=self.ptr, terms=self.terms, tfs=self.tfs, vocab=blob)

    @classmethod
    def load(cls, path: str | Path) -> Segment:
        with np.load(path, allow_pickle=False) as z:
            text = z["vocab"].tobytes().decode("utf-8")
            return cls(z["keys"], z["lengths"], z["ptr"], z["terms"], z["tfs"], text.split("\n") if text else [])
