"""RAG: retrieve, build the augmented prompt, generate an answer that cites its sources."""

from ragtune.rag.pipeline import RAG, Answer, Citation, Retrieved

__all__ = ["RAG", "Answer", "Citation", "Retrieved"]
