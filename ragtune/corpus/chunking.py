"""Split documents into chunks measured in the generator's tokens.

Chunks are packed from whole sentences up to `size` tokens, and each starts with at least
`overlap` tokens of the one before: its trailing sentences when they are not much more than
that, else its last `overlap` tokens from a word boundary inside a sentence. A sentence longer
than `size` is cut at token (preferably word) boundaries, and so is a sentence that would not
fit beside the overlap.
`mode="record"` keeps each document (e.g. one API record) as exactly one chunk.

    chunks = chunk_documents(docs, tokenizer, size=256, overlap=32)
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Protocol

from ragtune.corpus.document import Chunk, Document, stable_id
from ragtune.errors import ConfigError


class Tokenizer(Protocol):
    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...


# A sentence ends at . ! ? (optionally followed by quotes/brackets) before whitespace, or at a
# blank line / line break (headings, list items). Spans keep the text exact: text[start:end].
_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n\s*\n|\n(?=\s*(?:[-*#]|\d+[.)])\s)")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of sentences in `text`, whitespace trimmed."""
    spans, pos = [], 0
    for m in _SENT_END.finditer(text):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def _count(tok: Tokenizer, texts: list[str]) -> list[int]:
    # A transformers fast tokenizer: its Rust backend counts directly (transformers' wrapping
    # of each encoding costs twice the tokenizing on short texts); the same call it makes,
    # so the same counts, when no truncation or padding is set on the backend.
    bt = getattr(tok, "backend_tokenizer", None)
    if bt is not None and bt.truncation is None and bt.padding is None:
        fast = getattr(bt, "encode_batch_fast", None) or bt.encode_batch  # tokenizers < 0.21
        return [len(e.ids) for e in fast(texts, add_special_tokens=False)]
    # Other fast tokenizers batch-encode in Rust; fall back to one-by-one for anything else.
    if callable(tok) and hasattr(tok, "batch_decode"):
        enc = tok(texts, add_special_tokens=False)["input_ids"]
        return [len(x) for x in enc]
    return [len(tok.encode(t, add_special_tokens=False)) for t in texts]


def chunk_text(
    text: str,
    tok: Tokenizer,
    size: int,
    overlap: int,
    counted: tuple[list[tuple[int, int]], list[int]] | None = None,
) -> list[tuple[int, int, int]]:
    """Chunk spans (start, end, n_tokens) of `text`. `counted`: its sentence spans and their
    token counts, when the caller tokenized them already (with other documents' at once)."""
    spans, counts = counted if counted is not None else (sentence_spans(text), None)
    if not spans:
        return []
    if counts is None:
        counts = _count(tok, [text[s:e] for s, e in spans])
    # Units are placed whole: sentences, and over-long sentences cut into pieces that fit.
    units: list[tuple[int, int, int]] = []
    for (s, e), n in zip(spans, counts, strict=True):
        while n > size:
            first, (s, e, n) = _cut(text, s, e, tok, size)
            units.append(first)
        units.append((s, e, n))
    # The next chunk starts on a sentence when the tail from there is at most twice the overlap;
    # a longer tail is worth a start inside the sentence, so chunks do not become mostly repeats.
    cap = min(2 * overlap, size - 1)
    chunks: list[tuple[int, int, int]] = []
    prev = (0, 0, 0)  # the last chunk
    head: int | None = None  # where the tail of the last chunk, repeated by this one, starts
    i = 0
    while i < len(units):
        start, room = units[i][0], size
        if head is not None:
            # Counted with the whitespace up to the next unit: a run of spaces or newlines
            # between them can be many tokens.
            used = _count(tok, [text[head : units[i][0]]])[0]
            if used >= size:  # no room left for anything new: the tail at its shortest
                head = _tail(text, *prev, tok, overlap, overlap, [])
                used = _count(tok, [text[head : units[i][0]]])[0]
            if used < size:  # else no overlap this once
                start, room = head, size - used
        j, total = i, 0
        while j < len(units) and total + units[j][2] <= room:
            total += units[j][2]
            j += 1
        # The next unit does not fit. End on this sentence unless that leaves the chunk less
        # than half of the room used, or no longer than the overlap (the next chunk could not
        # move on): then cut the next unit to fill the room.
        filled = False
        if j < len(units) and (total < room // 2 or size - room + total <= overlap):
            first, rest = _cut(text, units[j][0], units[j][1], tok, room - total)
            if first[2] > 0:
                units[j : j + 1] = [first, rest]
                j += 1
                filled = True
        end = units[j - 1][1]
        # one whole unit on its own is the span counted above (most short documents)
        alone = j == i + 1 and start == units[i][0] and not filled
        n = units[i][2] if alone else _count(tok, [text[start:end]])[0]
        # Joining pieces can add a token or two at the seams: give back the last sentence, or
        # tokens of a cut piece, until it fits; as a last resort drop the overlap this once.
        while n > size:
            s, e, m = units[j - 1]
            if j - 1 > i and (not filled or m <= 1):
                j -= 1
                filled = False
            elif m > 1:
                units[j - 1 : j] = list(_cut(text, s, e, tok, max(1, m - (n - size))))
            else:
                start = units[i][0]
            end = units[j - 1][1]
            n = _count(tok, [text[start:end]])[0]
        chunks.append((start, end, n))
        starts = [units[k][0] for k in range(i, j)]
        i = j
        prev = (start, end, n)
        # the tail only matters to a next chunk (a tokenizer call or two saved per document)
        head = _tail(text, *prev, tok, overlap, cap, starts) if overlap and i < len(units) else None
    return chunks


def _tail(text, start, end, n, tok, overlap, cap, starts) -> int:
    """Where the shortest tail of text[start:end] holding >= `overlap` tokens starts.

    It begins on the latest unit start (a sentence) when that tail is at most `cap` tokens,
    otherwise on the word boundary nearest `overlap` tokens before the end.
    """
    if n <= overlap:  # the whole chunk is less than the overlap: repeat all of it
        return start
    offs = tok(text[start:end], add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    # Tokens from a position on, read off the chunk's own tokens (one tokenizer call); only
    # the chosen start is re-counted, as tokenizing from there may differ at the cut.
    firsts = [start + a for a, _ in offs]
    for s in reversed([s for s in starts if start < s < end]):
        if len(offs) - bisect_left(firsts, s) >= overlap:
            if _count(tok, [text[s:end]])[0] in range(overlap, cap + 1):
                return s
            break
    ideal = len(offs) - overlap
    near = (t for t in range(ideal, max(0, ideal - 8), -1) if _at_word_boundary(text, firsts[t]))
    for t in range(next(near, ideal), 0, -1):  # from a word boundary a few tokens back, if any
        p = _word_start(text, firsts[t], end)
        if _count(tok, [text[p:end]])[0] >= overlap:
            return p
    return start


def _word_start(text: str, p: int, end: int) -> int:
    while p < end and text[p].isspace():
        p += 1
    return p


def _at_word_boundary(text: str, p: int) -> bool:
    return p == 0 or text[p - 1].isspace() or not text[p - 1].isalnum() or not text[p].isalnum()


def _cut(text, s, e, tok, room) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Cut text[s:e] after at most `room` tokens (on a word boundary within 8 tokens of it if
    there is one): the two pieces as (start, end, n_tokens)."""
    offs = tok(text[s:e], add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    k = next(
        (k for k in range(room, max(0, room - 8), -1) if _at_word_boundary(text, s + offs[k][0])),
        room,
    )
    cut = s + offs[k][0]
    a_end, b_start = cut, _word_start(text, cut, e)
    while a_end > s and text[a_end - 1].isspace():
        a_end -= 1
    na, nb = _count(tok, [text[s:a_end], text[b_start:e]])
    return (s, a_end, na), (b_start, e, nb)


def chunk_documents(
    docs: Iterable[Document],
    tokenizer: Tokenizer | None,
    *,
    size: int = 256,
    overlap: int = 32,
    mode: str = "tokens",
) -> list[Chunk]:
    """Chunks of every document, with the document's metadata plus `chunk`, `start`, `end`, `tokens`."""
    return list(iter_chunks(docs, tokenizer, size=size, overlap=overlap, mode=mode))


def iter_chunks(
    docs: Iterable[Document],
    tokenizer: Tokenizer | None,
    *,
    size: int = 256,
    overlap: int = 32,
    mode: str = "tokens",
) -> Iterator[Chunk]:
    """`chunk_documents` one document at a time (for corpora streamed from disk); the settings
    are checked at the call, not at the first chunk."""
    if mode not in ("tokens", "record"):
        raise ConfigError(f"chunk mode {mode!r} is unknown; use 'tokens' or 'record'")
    if mode == "tokens" and (size <= 0 or not 0 <= overlap < size):
        raise ConfigError(
            f"need size > 0 and 0 <= overlap < size (got size={size}, overlap={overlap})"
        )
    return _chunks(docs, tokenizer, size, overlap, mode)


# Documents whose sentences are tokenized in one call: a call costs far more than its tokens
# for short texts, and a corpus of short passages is mostly call overhead otherwise.
WINDOW = 256


def _chunks(docs, tokenizer, size, overlap, mode) -> Iterator[Chunk]:
    it = iter(docs)
    while window := list(itertools.islice(it, WINDOW)):
        if mode == "record":
            texts = [d.text for d in window]
            ns = _count(tokenizer, texts) if tokenizer and texts else [-1] * len(window)
            per_doc = [[(0, len(d.text), n)] for d, n in zip(window, ns, strict=True)]
        else:
            sents = [sentence_spans(d.text) for d in window]
            flat = [d.text[s:e] for d, sp in zip(window, sents, strict=True) for s, e in sp]
            counts = iter(_count(tokenizer, flat) if flat else [])
            per_doc = [
                chunk_text(d.text, tokenizer, size, overlap, (sp, [next(counts) for _ in sp]))
                for d, sp in zip(window, sents, strict=True)
            ]
        for doc, spans in zip(window, per_doc, strict=True):
            for i, (s, e, n) in enumerate(spans):
                meta = dict(doc.metadata, chunk=i, start=s, end=e, tokens=n)
                yield Chunk(stable_id(doc.id, str(i)), doc.id, doc.text[s:e], meta)
