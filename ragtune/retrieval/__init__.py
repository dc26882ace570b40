"""Retrieval: BM25 (tantivy), dense (MiniLM + faiss), hybrid (RRF); an index is a directory."""

from ragtune.retrieval.index import Index
from ragtune.retrieval.types import SearchResults

__all__ = ["Index", "SearchResults"]
