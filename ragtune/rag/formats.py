"""Prompt formats: one named contract for how documents and a question become chat messages and
how a reply is read back. A tuned model is asked in the format it was trained on.

    from ragtune.rag.formats import get_format
    fmt = get_format("raft")
    msgs = fmt.messages("How do I open a vault?", ["Vaults open with gdb.open(path)."])
    reply = fmt.parse("##begin_quote##Vaults open with gdb.open(path).##end_quote## <ANSWER>: gdb.open")
    reply.answer, reply.quotes, reply.reasoning

- `rag`: numbered ``[n] <DOCUMENT>`` blocks under a system prompt that asks for ``[n]`` citations
  (the untuned model's prompt; `ragtune ask` without an adapter).
- `raft`: the RAFT reference's bare ``<DOCUMENT>`` blocks, one a line, then the question, as one
  user message (what `ragtune raft build` writes as each example's instruction); the reply is a
  chain of thought with ``##begin_quote##`` spans and a final ``<ANSWER>:``.
- `dsf`: the question alone (what a DSF adapter was trained on; documents are not shown).

`ragtune train` records the format it trained on in the adapter directory (`ragtune.json`), and
the local backend reads it back as `lm.prompt_format`, so `ask`, `serve`, `eval` and `RAG` use
it without being told. The RoG planning and reasoning prompts are in `ragtune.rog.prompts`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError

ADAPTER_INFO = "ragtune.json"  # beside adapter_config.json: what the adapter was trained on

SYSTEM_PROMPT = (
    "You answer questions using only the numbered documents you are given. "
    "Cite the documents you used with their numbers in square brackets, like [1]. "
    "Answer briefly, in one or two sentences. "
    "If the documents do not contain the answer, say that you do not know."
)


def render_document(n: int, text: str) -> str:
    return f"[{n}] <DOCUMENT>{text}</DOCUMENT>"


@dataclass
class Reply:
    """A reply read back: the answer to show, the quoted spans, the raw text (chain of thought)."""

    answer: str
    quotes: list[str] = field(default_factory=list)
    reasoning: str | None = None  # the whole reply when it carried a chain of thought


@dataclass(frozen=True)
class PromptFormat:
    name: str
    system: str | None = None  # system message (None: no system message)
    documents: bool = True  # whether documents go into the prompt at all
    numbered: bool = False  # "[n] <DOCUMENT>..." (rag) or bare "<DOCUMENT>...</DOCUMENT>" (raft)
    reasons: bool = False  # replies are a chain of thought ending in "<ANSWER>: ..."

    def user_text(self, question: str, docs: Sequence[str]) -> str:
        q = question.strip()
        if not self.documents:
            return q
        if self.numbered:
            blocks = "\n".join(render_document(i + 1, d) for i, d in enumerate(docs))
            return f"{blocks}\n\nQuestion: {q}" if docs else f"Question: {q}"
        from ragtune.raft.examples import instruction

        return instruction(list(docs), q)

    def messages(self, question: str, docs: Sequence[str]) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": self.user_text(question, docs)}]

    def with_system(self, system: str | None) -> PromptFormat:
        return PromptFormat(self.name, system, self.documents, self.numbered, self.reasons)

    def parse(self, text: str) -> Reply:
        """The answer to show. A chain of thought (``<ANSWER>:``) shows its final answer; its
        ``##begin_quote##`` spans become `quotes` and the whole text stays as `reasoning`."""
        from ragtune.raft.prompts import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE
        from ragtune.raft.verify import final_answer, quotes

        if ANSWER_TAG not in text and BEGIN_QUOTE not in text:
            return Reply(answer=text.strip())
        final = final_answer(text)
        if final is None:  # cut before the tag: show the text without the markers
            final = text.replace(BEGIN_QUOTE, "").replace(END_QUOTE, "")
        return Reply(answer=final.strip(), quotes=quotes(text), reasoning=text)


FORMATS: dict[str, PromptFormat] = {
    "rag": PromptFormat("rag", SYSTEM_PROMPT, documents=True, numbered=True),
    "raft": PromptFormat("raft", None, documents=True, numbered=False, reasons=True),
    "dsf": PromptFormat("dsf", None, documents=False),
}

# The training view of `ragtune train --view` -> the format its adapter is asked in.
VIEW_FORMAT = {"chat": "raft", "completion": "raft", "dsf": "dsf"}


def get_format(name: str, system: str | None = None) -> PromptFormat:
    if name not in FORMATS:
        raise ConfigError(f"unknown prompt format {name!r}; use one of {', '.join(FORMATS)}")
    fmt = FORMATS[name]
    return fmt.with_system(system) if system is not None else fmt


def read_adapter_info(adapter: str | Path) -> dict[str, Any] | None:
    """What `ragtune train` recorded about an adapter (None for adapters from elsewhere)."""
    f = Path(adapter) / ADAPTER_INFO
    if not f.exists():
        return None
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{f}: not valid JSON ({e}); retrain or delete the file") from None


def format_of(lm: Any) -> PromptFormat:
    """The format a backend's model was trained on (its declared `prompt_format`), else `rag`."""
    return getattr(lm, "prompt_format", None) or FORMATS["rag"]


def adapter_format(adapter: str | Path | None) -> PromptFormat | None:
    """The prompt format recorded in an adapter directory (None when nothing is recorded)."""
    info = read_adapter_info(adapter) if adapter else None
    if not info or info.get("prompt_format") not in FORMATS:
        return None  # not recorded, or not a document prompt (RoG's, chat data from elsewhere)
    return get_format(info["prompt_format"], info.get("system_prompt"))
