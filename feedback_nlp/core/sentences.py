"""The one sentence splitter used by issue shuffling (000 §4.2) and SeaCat (002 §2.2).

Why: both systems depend on sentence boundaries, and one splitter keeps the shuffled units of the
seq2seq model and the attention units of SeaCat consistent across languages. A maintained
rule-based library (pysbd, the Golden Rules segmenter) instead of our own regex: it keeps
abbreviations, initials and decimals intact, splits sentences that start in lowercase (customers
rarely capitalise) and splits Chinese and Japanese text that has no spaces after 。！？.
Newlines always end a sentence (chat turns and bullet lists). pysbd needs no downloaded data.
"""

from __future__ import annotations

from functools import cache, lru_cache

import pysbd
from pysbd.lang.english import English
from pysbd.languages import LANGUAGE_CODES

DEFAULT_LANGUAGE = "en"  # its rules also split CJK terminators; used when the language is unknown
# pysbd's English list holds US state codes that are everyday words in feedback ("help me. I was
# charged" stayed one sentence: "me." read as Maine before an initial).
NOT_ABBREVIATIONS = frozenset({"al", "ga", "hi", "ia", "id", "is", "la", "md", "me", "mo", "ok", "op", "pa"})


class FeedbackEnglish(English):
    class Abbreviation(English.Abbreviation):
        ABBREVIATIONS = [a for a in English.Abbreviation.ABBREVIATIONS if a not in NOT_ABBREVIATIONS]


@cache
def _segmenter(language: str) -> pysbd.Segmenter:
    segmenter = pysbd.Segmenter(language=language, clean=False)
    if language == "en":
        segmenter.language_module = FeedbackEnglish
    return segmenter


@lru_cache(maxsize=1 << 16)
def _split(text: str, language: str) -> tuple[str, ...]:
    segmenter = _segmenter(language)
    out: list[str] = []
    for para in text.splitlines():
        if para.strip():
            out.extend(s.strip() for s in segmenter.segment(para.strip()) if s.strip())
    return tuple(out)


def split_sentences(text: str, language: str | None = None) -> list[str]:
    """Sentences of `text` in order; `language` (ISO 639-1, e.g. "de") picks pysbd's rules for
    that language when it has them. Empty pieces are dropped."""
    code = (language or DEFAULT_LANGUAGE).lower().split("-")[0]
    return list(_split(text, code if code in LANGUAGE_CODES else DEFAULT_LANGUAGE))
