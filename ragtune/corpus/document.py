"""The records the corpus layer produces: documents (a file, page or record) and chunks."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any


def stable_id(*parts: str, n: int = 16) -> str:
    """A short id that depends only on `parts` (so re-indexing the same corpus gives the same ids)."""
    h = hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()
    return h[:n]


@dataclass
class Document:
    id: str
    text: str
    # source (path), title, page (1-based, PDFs), record (index in a json/jsonl file), format
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Chunk:
    id: str
    doc_id: str
    text: str
    metadata: dict[str, Any] = field(
        default_factory=dict
    )  # the document's, plus chunk index/tokens

    def to_dict(self) -> dict[str, Any]:
        # what asdict gives (a deep copy), without its per-field recursion: an index writes
        # one of these per chunk, millions for a large corpus
        return {
            "id": self.id,
            "doc_id": self.doc_id,
            "text": self.text,
            "metadata": _copy(self.metadata),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Chunk:
        return cls(id=d["id"], doc_id=d["doc_id"], text=d["text"], metadata=d.get("metadata", {}))


_ATOMS = (str, int, float, bool, type(None))


def _copy(v: Any) -> Any:
    """A deep copy of JSON-like metadata (scalars shared, containers copied)."""
    if isinstance(v, _ATOMS):
        return v
    if type(v) is dict:
        return {k: _copy(x) for k, x in v.items()}
    if type(v) is list:
        return [_copy(x) for x in v]
    import copy

    return copy.deepcopy(v)
