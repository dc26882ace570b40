"""The augmented prompt: numbered <DOCUMENT> blocks fitted to a token budget, then the question."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ragtune.rag.formats import SYSTEM_PROMPT, get_format, render_document

# Small models tend to go on to invent the next question; stop them there.
DEFAULT_STOP = ["\nQuestion:", "\n\n\n"]


def fit_documents(
    texts: Sequence[str],
    budget: int,
    count: Callable[[str], int],
    min_tokens: int = 48,
) -> list[str]:
    """Take documents in rank order while they fit in `budget` tokens.

    The first one that does not fit is cut (by characters, re-measured in tokens) if at least
    `min_tokens` remain; later ones are dropped. Returns the (possibly cut) texts kept.
    """
    kept: list[str] = []
    left = budget
    for i, t in enumerate(texts):
        n = count(render_document(i + 1, t)) + 1  # +1: the newline between blocks
        if n <= left:
            kept.append(t)
            left -= n
            continue
        if left >= min_tokens:
            lo, hi = 0, len(t)  # binary search the longest prefix that fits
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if count(render_document(i + 1, t[:mid] + " …")) + 1 <= left:
                    lo = mid
                else:
                    hi = mid - 1
            if lo > 0:
                kept.append(t[:lo] + " …")
        break
    return kept


def build_messages(question: str, docs: Sequence[str], system: str | None = SYSTEM_PROMPT):
    """The `rag` format's chat messages: the system instruction, the numbered documents, then
    the question (ragtune.rag.formats holds every format)."""
    return get_format("rag").with_system(system).messages(question, docs)
