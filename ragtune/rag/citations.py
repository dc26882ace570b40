"""Which documents an answer used, and the span of each it rests on.

The model is asked to cite with [n]. Small models often don't; then the answer is attributed to
the document sharing the most words with it (marked method="overlap", never passed off as the
model's own citation).
"""

from __future__ import annotations

import re

from ragtune.corpus.chunking import sentence_spans

_CITE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_WORD = re.compile(r"\w+")
_STOP = frozenset(
    "a an the of to in on for and or is are was were be by with as at from that this it its "
    "what which who how when where why do does did you your i not no".split()
)


def cited_numbers(answer: str, n_docs: int) -> list[int]:
    """Document numbers (1-based) cited as [n] or [n, m], in order of first mention, valid only."""
    seen: list[int] = []
    for m in _CITE.finditer(answer):
        for part in m.group(1).split(","):
            n = int(part)
            if 1 <= n <= n_docs and n not in seen:
                seen.append(n)
    return seen


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def overlap_attribution(answer: str, docs: list[str], min_overlap: int = 2) -> int | None:
    """1-based number of the document sharing the most content words with `answer`, if any."""
    aw = _words(_CITE.sub(" ", answer))
    best, best_n = 0, None
    for i, d in enumerate(docs):
        o = len(aw & _words(d))
        if o > best:
            best, best_n = o, i + 1
    return best_n if best >= min_overlap else None


def best_span(answer: str, doc: str) -> tuple[int, int]:
    """(start, end) of the sentence of `doc` that shares the most content words with `answer`."""
    aw = _words(_CITE.sub(" ", answer))
    spans = sentence_spans(doc) or [(0, len(doc))]
    return max(spans, key=lambda se: (len(aw & _words(doc[se[0] : se[1]])), -se[0]))


def find_quote(quote: str, doc: str) -> tuple[int, int] | None:
    """(start, end) of `quote` in `doc`, matched case-insensitively with any run of whitespace
    for a space (a model re-wraps lines as it copies them), or None when it is not there."""
    words = quote.split()
    if not words:
        return None
    m = re.search(r"\s+".join(re.escape(w) for w in words), doc, re.I)
    return (m.start(), m.end()) if m else None
