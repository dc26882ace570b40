"""Split documents into chunks measured in the generator's tokens.

Chunks are packed from whole sentences up to `size` tokens; consecutive chunks share up to
`overlap` tokens of trailing sentences. A sentence longer than `size` is cut into token windows.
`mode="record"` keeps each document (e.g. one API record) as exactly one chunk.

    chunks = chunk_documents(docs, tokenizer, size=256, overlap=32)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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
    # Fast tokenizers batch-encode in Rust; fall back to one-by-one for anything else.
    if callable(tok) and hasattr(tok, "batch_decode"):
        enc = tok(texts, add_special_tokens=False)["input_ids"]
        return [len(x) for x in enc]
    return [len(tok.encode(t, add_special_tokens=False)) for t in texts]


def chunk_text(text: str, tok: Tokenizer, size: int, overlap: int) -> list[tuple[int, int, int]]:
    """Chunk spans (start, end, n_tokens) of `text`."""
    spans = sentence_spans(text)
    if not spans:
        return []
    counts = _count(tok, [text[s:e] for s, e in spans])
    # Cut over-long sentences into token windows first, so every unit fits in `size`.
    units: list[tuple[int, int, int]] = []
    for (s, e), n in zip(spans, counts, strict=True):
        if n <= size:
            units.append((s, e, n))
            continue
        units.extend(_token_windows(text, s, e, tok, size, overlap))
    chunks: list[tuple[int, int, int]] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and total + units[j][2] <= size:
            total += units[j][2]
            j += 1
        j = max(j, i + 1)
        s, e = units[i][0], units[j - 1][1]
        n = _count(tok, [text[s:e]])[0]
        # Joining sentences can add a token or two at the seams: drop sentences until it fits.
        while n > size and j - 1 > i:
            j -= 1
            e = units[j - 1][1]
            n = _count(tok, [text[s:e]])[0]
        chunks.append((s, e, n))
        if j >= len(units):
            break
        # Next chunk starts with trailing sentences worth <= overlap tokens (never this start).
        back, k = 0, j
        while k - 1 > i and back + units[k - 1][2] <= overlap:
            k -= 1
            back += units[k][2]
        i = k
    return chunks


def _token_windows(text, s, e, tok, size, overlap):
    """Cut text[s:e] into windows of `size` tokens, mapping token windows back to char spans."""
    piece = text[s:e]
    enc = tok(piece, add_special_tokens=False, return_offsets_mapping=True)
    offs = enc["offset_mapping"]
    step = max(1, size - overlap)
    out = []
    for a in range(0, len(offs), step):
        b = min(a + size, len(offs))
        out.append((s + offs[a][0], s + offs[b - 1][1], b - a))
        if b == len(offs):
            break
    return out


def chunk_documents(
    docs: Iterable[Document],
    tokenizer: Tokenizer | None,
    *,
    size: int = 256,
    overlap: int = 32,
    mode: str = "tokens",
) -> list[Chunk]:
    """Chunks of every document, with the document's metadata plus `chunk`, `start`, `end`, `tokens`."""
    if mode not in ("tokens", "record"):
        raise ConfigError(f"chunk mode {mode!r} is unknown; use 'tokens' or 'record'")
    if mode == "tokens" and (size <= 0 or not 0 <= overlap < size):
        raise ConfigError(
            f"need size > 0 and 0 <= overlap < size (got size={size}, overlap={overlap})"
        )
    out: list[Chunk] = []
    for doc in docs:
        if mode == "record":
            spans = [(0, len(doc.text), _count(tokenizer, [doc.text])[0] if tokenizer else -1)]
        else:
            spans = chunk_text(doc.text, tokenizer, size, overlap)
        for i, (s, e, n) in enumerate(spans):
            meta = dict(doc.metadata, chunk=i, start=s, end=e, tokens=n)
            out.append(Chunk(stable_id(doc.id, str(i)), doc.id, doc.text[s:e], meta))
    return out
