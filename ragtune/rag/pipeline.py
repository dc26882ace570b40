"""Retrieve → fit documents to the context window → generate → attribute citations.

    from ragtune import RAG
    rag = RAG("out/index", "smollm2-135m")
    ans = rag.ask("How do I open a vault?")
    ans.answer, [c.source for c in ans.citations]
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragtune.llm.base import LM
from ragtune.rag.citations import best_span, cited_numbers, overlap_attribution
from ragtune.rag.prompt import DEFAULT_STOP, SYSTEM_PROMPT, build_messages, fit_documents
from ragtune.retrieval.index import Index


@dataclass
class Retrieved:
    """One document placed in the prompt, as number n."""

    n: int
    chunk_id: str
    doc_id: str
    source: str
    title: str | None
    page: int | None
    score: float
    text: str


@dataclass
class Citation:
    n: int
    chunk_id: str
    source: str
    title: str | None
    page: int | None
    score: float
    quote: str  # the sentence of the document the answer rests on
    start: int  # its character offsets in the chunk text
    end: int
    method: str  # "model": the model wrote [n]; "overlap": attributed by shared words


@dataclass
class Answer:
    question: str
    answer: str
    citations: list[Citation]
    documents: list[Retrieved]
    usage: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RAG:
    def __init__(
        self,
        index: Index | str | Path,
        lm: LM | str = "smollm2-135m",
        *,
        k: int = 3,
        method: str | None = None,
        max_tokens: int = 128,
        max_context_tokens: int = 2048,
        system_prompt: str | None = SYSTEM_PROMPT,
        stop: list[str] | None = None,
    ) -> None:
        from ragtune.llm.spec import load_lm

        self.index = index if isinstance(index, Index) else Index.load(index)
        self.lm = load_lm(lm) if isinstance(lm, str) else lm
        self.k, self.method, self.max_tokens = k, method, max_tokens
        self.max_context_tokens = max_context_tokens
        self.system_prompt = system_prompt
        self.stop = list(DEFAULT_STOP if stop is None else stop)

    def retrieve(self, question: str, k: int | None = None) -> list[tuple[Any, float]]:
        return self.index.hits(question, k or self.k, self.method)

    def ask(self, question: str, *, k: int | None = None, **gen: Any) -> Answer:
        return self.ask_batch([question], k=k, **gen)[0]

    def ask_batch(self, questions: list[str], *, k: int | None = None, **gen: Any) -> list[Answer]:
        """Answer several questions; generation is batched through the backend."""
        max_tokens = gen.pop("max_tokens", self.max_tokens)
        gen.setdefault("stop", self.stop)
        t0 = time.perf_counter()
        hits = [self.retrieve(q, k) for q in questions]
        t1 = time.perf_counter()
        prompts, placed = [], []
        for q, hs in zip(questions, hits, strict=True):
            base = self.lm.count_tokens(build_messages(q, [], self.system_prompt)[-1]["content"])
            if self.system_prompt:
                base += self.lm.count_tokens(self.system_prompt)
            # Budget: the window less the answer, the question/system text and template slack.
            budget = min(self.max_context_tokens, self.lm.context_window - max_tokens) - base - 32
            texts = fit_documents([c.text for c, _ in hs], budget, self.lm.count_tokens)
            docs = [
                Retrieved(
                    n=i + 1,
                    chunk_id=c.id,
                    doc_id=c.doc_id,
                    source=str(c.metadata.get("source", "")),
                    title=c.metadata.get("title"),
                    page=c.metadata.get("page"),
                    score=float(s),
                    text=t,
                )
                for i, ((c, s), t) in enumerate(zip(hs, texts, strict=False))
            ]
            placed.append(docs)
            prompts.append(build_messages(q, texts, self.system_prompt))
        outs = self.lm.generate(prompts, max_tokens=max_tokens, **gen)
        t2 = time.perf_counter()
        answers = []
        for q, docs, out in zip(questions, placed, outs, strict=True):
            answers.append(
                Answer(
                    question=q,
                    answer=out.text,
                    citations=_citations(out.text, docs),
                    documents=docs,
                    usage={
                        "prompt_tokens": out.prompt_tokens,
                        "completion_tokens": out.completion_tokens,
                    },
                    seconds={
                        "retrieve": (t1 - t0) / len(questions),
                        "generate": (t2 - t1) / len(questions),
                    },
                )
            )
        return answers


def _citations(answer: str, docs: list[Retrieved]) -> list[Citation]:
    nums = [(n, "model") for n in cited_numbers(answer, len(docs))]
    if not nums:
        n = overlap_attribution(answer, [d.text for d in docs])
        nums = [(n, "overlap")] if n else []
    out = []
    for n, how in nums:
        d = docs[n - 1]
        s, e = best_span(answer, d.text)
        out.append(
            Citation(n, d.chunk_id, d.source, d.title, d.page, d.score, d.text[s:e], s, e, how)
        )
    return out
