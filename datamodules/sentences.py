"""A shared sentence splitter used by issue shuffling (000 §4.2) and SeaCat (002 §2.2).

Why: both systems depend on sentence boundaries, and using one splitter keeps the shuffled
units of the seq2seq model and the attention units of SeaCat consistent across languages.
A regex splitter (no nltk data to download) that keeps abbreviations and decimals intact.
"""
from __future__ import annotations

import re

_ABBREV = {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "no", "approx",
           "inc", "ltd", "co", "bzw", "z.b", "ca", "usw", "nr", "mme", "m", "p.ex", "u.s", "a.m", "p.m"}
# End of sentence: . ! ? (possibly repeated, or the CJK forms) followed by closing quotes/brackets.
_BOUNDARY = re.compile(r"([.!?。！？…]+[\"'”’)\]]*)(\s+|$)")


def split_sentences(text: str) -> list[str]:
    """Split `text` into sentences; newlines always end a sentence. Empty pieces are dropped."""
    out: list[str] = []
    for para in re.split(r"\s*\n+\s*", text.strip()):
        start = 0
        for m in _BOUNDARY.finditer(para):
            end = m.end(1)
            before = para[start:m.start(1)].rsplit(None, 1)
            last_word = before[-1].lower().rstrip(".") if before else ""
            nxt = para[m.end():m.end() + 1]
            if m.group(1) == "." and (last_word in _ABBREV or (len(last_word) == 1 and last_word.isalpha())):
                continue
            if m.group(1) == "." and nxt and nxt.islower():
                continue
            piece = para[start:end].strip()
            if piece:
                out.append(piece)
            start = m.end()
        tail = para[start:].strip()
        if tail:
            out.append(tail)
    return out
