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
from ragtune.rag.citations import best_span, cited_numbers, find_quote, overlap_attribution
from ragtune.rag.formats import SYSTEM_PROMPT, PromptFormat, format_of, get_format
from ragtune.rag.prompt import DEFAULT_STOP, fit_documents
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
    quote: str  # the span of the document the answer rests on
    start: int  # its character offsets in the chunk text
    end: int
    # "quote": the model quoted this span (##begin_quote##, a RAFT-tuned model); "model": it
    # wrote [n]; "overlap": attributed by shared words
    method: str


@dataclass
class Answer:
    question: str
    answer: str
    citations: list[Citation]
    documents: list[Retrieved]
    usage: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # the model's whole reply when it reasoned before answering (a RAFT chain of thought); the
    # answer above is then its final answer
    reasoning: str | None = None

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
        prompt_format: PromptFormat | str | None = None,
    ) -> None:
        from ragtune.llm.spec import load_lm

        self.index = index if isinstance(index, Index) else Index.load(index)
        self.lm = load_lm(lm) if isinstance(lm, str) else lm
        self.k, self.method, self.max_tokens = k, method, max_tokens
        self.max_context_tokens = max_context_tokens
        # A tuned model is asked as it was trained (its adapter's recorded format); an untuned
        # one gets the `rag` format with `system_prompt`.
        if isinstance(prompt_format, str):
            prompt_format = get_format(prompt_format)
        fmt = prompt_format or format_of(self.lm)
        self.format = fmt.with_system(system_prompt) if fmt.name == "rag" else fmt
        self.system_prompt = self.format.system
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
            base = self.lm.count_tokens(self.format.user_text(q, []))
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
            prompts.append(self.format.messages(q, texts if self.format.documents else []))
        outs = self.lm.generate(prompts, max_tokens=max_tokens, **gen)
        t2 = time.perf_counter()
        answers = []
        for q, docs, out in zip(questions, placed, outs, strict=True):
            reply = self.format.parse(out.text)
            answers.append(
                Answer(
                    question=q,
                    answer=reply.answer,
                    reasoning=reply.reasoning,
                    citations=_quote_citations(reply.quotes, docs)
                    or _citations(reply.answer, docs),
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


def _quote_citations(quoted: list[str], docs: list[Retrieved]) -> list[Citation]:
    """One citation per quoted span found verbatim (up to case and whitespace) in a document;
    a quote that is in no document (made up by the model) cites nothing."""
    out = []
    for q in quoted:
        for d in docs:
            span = find_quote(q, d.text)
            if span:
                s, e = span
                out.append(
                    Citation(
                        d.n,
                        d.chunk_id,
                        d.source,
                        d.title,
                        d.page,
                        d.score,
                        d.text[s:e],
                        s,
                        e,
                        "quote",
                    )
                )
                break
    return out


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
