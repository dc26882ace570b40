"""`ragtune ask`: one question against an index, answered with citations.

from ragtune.rag.ask import AskConfig, ask
ans = ask(AskConfig(index="out/index", question="How do I open a vault read-only?"))
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ragtune.llm.args import ModelArgs


@dataclass
class RAGArgs(ModelArgs):
    """An index and a model, and how to retrieve and generate (shared by ask and serve)."""

    index: str = field(default="", metadata={"help": "Index directory.", "required": True})
    k: int = field(default=3, metadata={"help": "Documents to retrieve.", "short": "-k"})
    method: str | None = field(default=None, metadata={"help": "bm25 | dense | hybrid."})
    max_tokens: int = field(default=128, metadata={"help": "Longest answer in tokens."})
    max_context_tokens: int = field(default=2048, metadata={"help": "Token budget for documents."})
    rerank: str = field(
        default="none",
        metadata={
            "help": "Rerank the top --rerank-candidates hits down to k: none, dense (the index's "
            "embedder), cross:DIR (`ragtune reranker train`) or lm (the model itself: p(Yes) to "
            "'does this document answer the question?')."
        },
    )
    rerank_candidates: int = field(
        default=20, metadata={"help": "Hits retrieved for the reranker to choose k from."}
    )

    def load_rag(self, lm=None):
        """The RAG pipeline these arguments describe (`lm`: an already loaded backend)."""
        from ragtune.rag import RAG
        from ragtune.retrieval.index import Index
        from ragtune.retrieval.rerank import parse_spec

        parse_spec(self.rerank)  # a typo fails before the model loads
        return RAG(
            # the query embedder (dense, hybrid) runs on the model's --device too
            Index.load(self.index, device=self.device),
            lm if lm is not None else self.load_lm(),
            k=self.k,
            method=self.method,
            max_tokens=self.max_tokens,
            max_context_tokens=self.max_context_tokens,
            rerank=self.rerank,
            rerank_candidates=self.rerank_candidates,
        )


@dataclass
class AskConfig(RAGArgs):
    """Answer a question from an index with a cited answer."""

    index: str = field(
        default="", metadata={"help": "Index directory.", "positional": True, "required": True}
    )
    question: str = field(
        default="", metadata={"help": "The question.", "positional": True, "required": True}
    )
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy."})
    json: bool = field(default=False, metadata={"help": "Print the full result as JSON."})
    show_reasoning: bool = field(
        default=False,
        metadata={"help": "Also print a tuned model's chain of thought (RAFT adapters)."},
    )


def ask(cfg: AskConfig, lm=None):
    """Retrieve, generate and attribute: the Answer (answer, citations, documents, reasoning)."""
    return cfg.load_rag(lm).ask(cfg.question, temperature=cfg.temperature)
