"""Text normalisation applied to the BM25 side of retrieval only (questions and queries alike).

Why BM25 only: the embedders are trained on raw text (their tokenizers lowercase and split
punctuation themselves), and re-embedding a repository to try a normalisation costs its whole
embedding time, while the BM25 index is rebuilt in seconds. Why these steps: customer
questions are short, so a contraction ("what's", "can't") or a function word ("the", "is")
weighs on BM25's length normalisation and on which questions share a term with the query.
The stop words are bm25s's English list (Lucene's 33 words): a list kept by a library, not
one written here. The same function runs at export, add, delete (purge) and query time, so
an updated repository equals a rebuild (docs/question_repository.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from bm25s.stopwords import STOPWORDS_EN

from feedback_nlp.universal_model.text import tokenize

# "plain": the text as is (tantivy's analyzer lowercases and splits on non-alphanumerics)
BM25_TEXTS = ("plain", "contractions", "stopwords", "contractions+stopwords")

_CONTRACTIONS = (  # order matters: the specific forms before the generic suffixes
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\bcan'?t\b"), "can not"),
    (re.compile(r"\bain'?t\b"), "is not"),
    (re.compile(r"\b(\w+)n't\b"), r"\1 not"),
    (re.compile(r"\b(i)'m\b"), r"\1 am"),
    (re.compile(r"\b(\w+)'re\b"), r"\1 are"),
    (re.compile(r"\b(\w+)'ve\b"), r"\1 have"),
    (re.compile(r"\b(\w+)'ll\b"), r"\1 will"),
    (re.compile(r"\b(\w+)'d\b"), r"\1 would"),
    (re.compile(r"\b(what|where|how|who|when|why|it|that|there|here|he|she|let)'s\b"), r"\1 is"),
)
_STOP = frozenset(STOPWORDS_EN)


def expand_contractions(text: str) -> str:
    """Lowercased text with English contractions spelled out ("what's" -> "what is")."""
    out = text.lower().replace("\u2019", "'")
    for pattern, repl in _CONTRACTIONS:
        out = pattern.sub(repl, out)
    return out


def drop_stopwords(text: str) -> str:
    """The text's tokens (text.tokenize: lowercased, punctuation removed) minus stop words."""
    return " ".join(t for t in tokenize(text) if t not in _STOP)


def bm25_normalizer(mode: str) -> Callable[[str], str]:
    if mode not in BM25_TEXTS:
        raise ValueError(f"retrieval.bm25_text must be one of {BM25_TEXTS}, got {mode!r}")
    steps = [f for name, f in (("contractions", expand_contractions), ("stopwords", drop_stopwords)) if name in mode]

    def normalize(text: str) -> str:
        for step in steps:
            text = step(text)
        return text

    return normalize


def bm25_texts(mode: str, texts: Sequence[str]) -> list[str]:
    """`texts` as the BM25 index sees them under `retrieval.bm25_text`."""
    if mode == "plain":
        return list(texts)
    f = bm25_normalizer(mode)
    return [f(t) for t in texts]
