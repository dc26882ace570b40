"""Conversations: earlier turns in the prompt, and follow-ups made into standalone search queries.

    from ragtune.rag.conversation import standalone_query, fit_history
    history = [{"role": "user", "content": "How long does a lease last?"},
               {"role": "assistant", "content": "30 seconds by default."}]
    standalone_query("and how is it renewed?", history)   # 'and how is it renewed? lease long last'
    fit_history(history, budget=256, count=len)            # the newest turns that fit

Retrieval sees one query, so a follow-up ("and what does it return?") would search for "return"
alone. `standalone_query` rewrites it from the history: by rule (the default: small models
rewrite badly), or by the model (`rewrite_with_model`, RAG(rewrite="model")), falling back to
the rule when the model's reply is unusable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

REWRITE_MODES = ("rules", "model", "off")

_WORD = re.compile(r"[\w.()/-]*\w[\w.()/-]*|\w")
_STOP = frozenset(
    """a an the of to in on for and or but is are was were be been being by with as at from that
    this these those it its they them their there here what which who whom whose how when where
    why do does did done doing can could should would will shall may might must you your i me my
    we our us he him his she her not no yes so if then than also about into over under up down
    out just only very more most some any all each one ones much many such get got have has had
    tell me please ok okay thanks thank what's how's does""".split()
)
_PRONOUNS = frozenset(
    "it its they them their theirs this that these those he him his she her there one ones "
    "former latter same".split()
)
_OPENERS = ("and ", "or ", "but ", "also ", "then ", "so ", "what about", "how about", "what if")


def content_words(text: str) -> list[str]:
    """Words that carry meaning (stopwords and pronouns dropped), in order, without repeats."""
    seen, out = set(), []
    for w in _WORD.findall(text):
        low = w.lower().strip(".()/-")
        if not low or low in _STOP or low in _PRONOUNS or low in seen:
            continue
        seen.add(low)
        out.append(w.strip(".") if not _is_code(w) else w)
    return out


def _is_code(w: str) -> bool:
    return any(c in w for c in "._(") and any(c.isalpha() for c in w)


def _is_name(w: str, first: bool) -> bool:
    """A named entity or identifier: CamelCase, an API path, or capitalised mid-sentence."""
    return _is_code(w) or any(c.isupper() for c in w[1:]) or (w[:1].isupper() and not first)


def is_follow_up(question: str) -> bool:
    """Whether a question leans on the conversation: an opener ("and ...", "what about ..."),
    a pronoun, or too few words of its own to search on."""
    q = question.strip().lower()
    words = [w.lower() for w in _WORD.findall(q)]
    if q.startswith(_OPENERS) or any(w in _PRONOUNS for w in words):
        return True
    return len(content_words(question)) <= 2


def standalone_query(question: str, history: Sequence[dict[str, Any]] | None) -> str:
    """The retrieval query for `question` after `history` (rule-based).

    A follow-up gets the previous user question's named entities and content words that it
    lacks appended (names first: they are what pronouns usually stand for); other questions,
    and first questions, are searched as they are.
    """
    users = [_text(m) for m in history or [] if m.get("role") == "user" and _text(m).strip()]
    if not users or not is_follow_up(question):
        return question
    have = {w.lower() for w in content_words(question)}
    prev = users[-1]
    words = content_words(prev)
    firsts = {m.group() for m in re.finditer(r"(?:^|[.!?]\s+)(\w+)", prev)}  # sentence starts
    names = [w for w in words if _is_name(w, w in firsts)]
    rest = [w for w in words if w not in names]
    add = [w for w in names + rest if w.lower() not in have]
    return f"{question.strip()} {' '.join(add)}".strip()


REWRITE_PROMPT = (
    "Rewrite the user's last question as one standalone search query that can be understood "
    "without the conversation: replace pronouns with what they refer to. Reply with the query "
    "only."
)


def rewrite_with_model(lm: Any, questions: list[str], histories: list[list[dict]]) -> list[str]:
    """Standalone queries written by the model (one batched call); an unusable reply (empty,
    over 3 lines, or far longer than question + history) falls back to `standalone_query`."""
    todo = [i for i, (q, h) in enumerate(zip(questions, histories, strict=True)) if h]
    out = list(questions)
    if not todo:
        return out
    prompts = []
    for i in todo:
        convo = "\n".join(f"{m['role']}: {_text(m)}" for m in histories[i][-6:])
        user = f"Conversation:\n{convo}\n\nLast question: {questions[i]}\n\nStandalone query:"
        prompts.append(
            [{"role": "system", "content": REWRITE_PROMPT}, {"role": "user", "content": user}]
        )
    replies = lm.generate(prompts, max_tokens=48, temperature=0.0, stop=["\n\n"])
    for i, rep in zip(todo, replies, strict=True):
        text = rep.text.strip().strip('"').strip()
        text = text.removeprefix("Standalone query:").strip()
        limit = 2 * len(questions[i]) + 200
        if text and text.count("\n") < 3 and len(text) <= limit:
            out[i] = " ".join(text.split())
        else:
            out[i] = standalone_query(questions[i], histories[i])
    return out


def fit_history(
    history: Sequence[dict[str, Any]] | None, budget: int, count: Callable[[str], int]
) -> list[dict[str, str]]:
    """The newest turns of `history` that fit `budget` tokens (oldest dropped first), as plain
    user/assistant messages; the kept part starts with a user turn."""
    msgs = [
        {"role": m["role"], "content": _text(m)}
        for m in history or []
        if m.get("role") in ("user", "assistant") and _text(m).strip()
    ]
    kept: list[dict[str, str]] = []
    used = 0
    for m in reversed(msgs):
        n = count(m["content"]) + 4  # + the chat template's role markers
        if used + n > budget:
            break
        kept.insert(0, m)
        used += n
    while kept and kept[0]["role"] != "user":
        kept.pop(0)
    return kept


def _text(m: dict[str, Any]) -> str:
    c = m.get("content")
    if isinstance(c, str):
        return c
    if isinstance(c, list):  # OpenAI's parts
        return "\n".join(str(p.get("text", "")) for p in c if isinstance(p, dict))
    return ""
