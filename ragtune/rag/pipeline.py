"""Retrieve → fit documents to the context window → generate → attribute citations.

from ragtune import RAG
rag = RAG("out/index", "smollm2-135m")
ans = rag.ask("How do I open a vault?")
ans.answer, [c.source for c in ans.citations]
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError
from ragtune.llm.base import LM, Completion
from ragtune.rag.citations import best_span, cited_numbers, find_quote, overlap_attribution
from ragtune.rag.conversation import (
    REWRITE_MODES,
    fit_history,
    rewrite_with_model,
    standalone_query,
)
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
    # what retrieval searched for: the question, or a follow-up made standalone from the history
    query: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Prepared:
    """A question made ready for the model: its retrieval query, documents and chat messages."""

    question: str
    query: str
    messages: list[dict[str, str]]
    documents: list[Retrieved]
    retrieve_s: float = 0.0


class RAG:
    """Retrieval-augmented answers. `rewrite`: how a follow-up in a conversation becomes a
    search query ("rules", "model", "off"; ragtune.rag.conversation); `max_history_tokens`: the
    most tokens of earlier turns a prompt carries (oldest dropped first). `rerank`: none, dense,
    cross:DIR or lm (ragtune.retrieval.rerank; lm is this RAG's own model), applied to the top
    `rerank_candidates` hits, of which the best k are kept."""

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
        rewrite: str = "rules",
        max_history_tokens: int = 512,
        rerank: Any = None,
        rerank_candidates: int = 20,
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
        if rewrite not in REWRITE_MODES:
            raise ConfigError(
                f"rewrite must be one of {', '.join(REWRITE_MODES)} (got {rewrite!r})"
            )
        self.rewrite, self.max_history_tokens = rewrite, max_history_tokens
        from ragtune.retrieval.rerank import load_reranker, parse_spec

        if rerank_candidates < 1:
            raise ConfigError(f"rerank_candidates must be >= 1 (got {rerank_candidates})")
        self.rerank_candidates = rerank_candidates
        # dense reranks with the index's own embedder (a tuned one when the index has it)
        dense = isinstance(rerank, str) and parse_spec(rerank)[0] == "dense"
        self.reranker = load_reranker(
            rerank, lm=self.lm, embedder=self.index.embedder() if dense else None
        )

    def retrieve(self, question: str, k: int | None = None) -> list[tuple[Any, float]]:
        if self.reranker is not None:
            return self.retrieve_many([question], k)[0]
        return self.index.hits(question, k or self.k, self.method)

    def retrieve_many(
        self, queries: list[str], k: int | list[int | None] | None = None
    ) -> list[list[tuple[Any, float]]]:
        """`retrieve` for many queries as one batched search per distinct k (one embedder pass
        for all of a batch's dense queries)."""
        ks = list(k) if isinstance(k, list) else [k] * len(queries)
        by_k: dict[int, list[int]] = defaultdict(list)
        for i, kk in enumerate(ks):
            by_k[kk or self.k].append(i)
        out: list[list[tuple[Any, float]]] = [[] for _ in queries]
        for kk, rows in by_k.items():
            # with a reranker: the top `rerank_candidates` first, reranked down to kk below
            depth = max(kk, self.rerank_candidates) if self.reranker is not None else kk
            res = self.index.search([queries[i] for i in rows], depth, self.method)
            for r, i in enumerate(rows):
                out[i] = [
                    (self.index.chunks[c], float(s))
                    for c, s in zip(res.ids[r], res.scores[r], strict=True)
                    if c >= 0
                ]
            if self.reranker is not None:
                from ragtune.retrieval.rerank import rerank_hits_batch

                ranked = rerank_hits_batch(
                    self.reranker, [queries[i] for i in rows], [out[i] for i in rows], kk
                )
                for i, hs in zip(rows, ranked, strict=True):
                    out[i] = hs
        return out

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        history: list[dict] | None = None,
        system: str | None = None,
        **gen: Any,
    ) -> Answer:
        """Answer `question`; `history`: the conversation's earlier user/assistant messages;
        `system`: a client's instructions, added to the grounded system prompt (formats that
        were trained without one, raft and dsf, leave it out)."""
        return self.ask_batch([question], k=k, histories=[history], systems=[system], **gen)[0]

    def ask_batch(
        self,
        questions: list[str],
        *,
        k: int | list[int | None] | None = None,
        histories: list[list[dict] | None] | None = None,
        systems: list[str | None] | None = None,
        **gen: Any,
    ) -> list[Answer]:
        """Answer several questions; generation is batched through the backend."""
        max_tokens = gen.pop("max_tokens", self.max_tokens)
        gen.setdefault("stop", self.stop)
        prepared = self.prepare(
            questions, k=k, max_tokens=max_tokens, histories=histories, systems=systems
        )
        t1 = time.perf_counter()
        outs = self.lm.generate([p.messages for p in prepared], max_tokens=max_tokens, **gen)
        each = (time.perf_counter() - t1) / max(1, len(questions))
        return [self.answer(p, out, each) for p, out in zip(prepared, outs, strict=True)]

    def queries(self, questions: list[str], histories: list[list[dict] | None]) -> list[str]:
        """What retrieval searches for: each question, a follow-up made standalone."""
        if self.rewrite == "off" or not any(histories):
            return list(questions)
        if self.rewrite == "model":
            return rewrite_with_model(self.lm, questions, [h or [] for h in histories])
        return [standalone_query(q, h) for q, h in zip(questions, histories, strict=True)]

    def prepare(
        self,
        questions: list[str],
        *,
        k: int | list[int | None] | None = None,
        max_tokens: int | list[int] | None = None,
        histories: list[list[dict] | None] | None = None,
        systems: list[str | None] | None = None,
    ) -> list[Prepared]:
        """Retrieve for every question (one batched search) and build each one's messages:
        the system prompt, the earlier turns that fit, then the documents and the question."""
        n = len(questions)
        limits = list(max_tokens) if isinstance(max_tokens, list) else [max_tokens] * n
        histories = list(histories or [None] * n)
        systems = list(systems or [None] * n)
        t0 = time.perf_counter()
        queries = self.queries(questions, histories)
        hits = self.retrieve_many(queries, k)
        each = (time.perf_counter() - t0) / max(1, n)
        count = self.lm.count_tokens
        out = []
        for q, query, hs, history, system, max_tokens in zip(
            questions, queries, hits, histories, systems, limits, strict=True
        ):
            max_tokens = max_tokens or self.max_tokens
            fmt = self.format
            if system and system.strip() and fmt.system:
                fmt = fmt.with_system(f"{fmt.system}\n\n{system.strip()}")
            base = count(fmt.user_text(q, []))
            if fmt.system:
                base += count(fmt.system)
            # Budget: the window less the answer, the question/system text and template slack;
            # earlier turns take at most half of what is left, documents the rest.
            room = self.lm.context_window - max_tokens - base - 32
            turns = fit_history(history, min(self.max_history_tokens, max(0, room // 2)), count)
            used = sum(count(m["content"]) + 4 for m in turns)
            budget = min(self.max_context_tokens, self.lm.context_window - max_tokens)
            budget -= base + used + 32
            texts = fit_documents([c.text for c, _ in hs], budget, count)
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
            msgs = fmt.messages(q, texts if fmt.documents else [])
            out.append(Prepared(q, query, msgs[:-1] + turns + msgs[-1:], docs, each))
        return out

    def answer(self, p: Prepared, out: Completion, generate_s: float = 0.0) -> Answer:
        """The Answer to a prepared question from the model's completion: the reply parsed in
        the prompt's format, its citations attributed."""
        reply = self.format.parse(out.text)
        docs = p.documents
        return Answer(
            question=p.question,
            answer=reply.answer,
            reasoning=reply.reasoning,
            citations=_quote_citations(reply.quotes, docs) or _citations(reply.answer, docs),
            documents=docs,
            usage={"prompt_tokens": out.prompt_tokens, "completion_tokens": out.completion_tokens},
            seconds={"retrieve": p.retrieve_s, "generate": generate_s},
            query=p.query,
        )


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
