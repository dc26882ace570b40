"""Checks on a chain-of-thought answer: the <ANSWER>: tag is there, it quotes the oracle, every
quote is real, and (when the source has one) the final answer agrees with the gold."""

from __future__ import annotations

import re

from ragtune.raft.prompts import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE

_QUOTE = re.compile(re.escape(BEGIN_QUOTE) + r"(.*?)" + re.escape(END_QUOTE), re.S)
_WS = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lowercase and collapse whitespace (quotes may be re-wrapped by the teacher)."""
    return _WS.sub(" ", text).strip().lower()


def quotes(cot: str) -> list[str]:
    return [q for q in (m.strip() for m in _QUOTE.findall(cot)) if q]


def final_answer(cot: str) -> str | None:
    """The text after the last <ANSWER>: tag, or None when the tag is missing."""
    i = cot.rfind(ANSWER_TAG)
    return cot[i + len(ANSWER_TAG) :].strip() if i >= 0 else None


def degenerate(answer: str) -> bool:
    """A looping answer (a 3-5 word phrase repeated 3+ times) or a copied placeholder."""
    if "<answer>" in answer.lower():
        return True
    w = answer.lower().split()
    for n in (3, 4, 5):
        grams = [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]
        if grams and max(grams.count(g) for g in set(grams)) >= 3:
            return True
    return False


def answer_agrees(answer: str, gold: str, kind: str = "general") -> bool:
    """Whether a teacher's final answer says the gold: the call AST match for API calls, the
    label for yes/no/maybe golds, else normalised exact match or containment (a teacher may
    answer in a sentence). The eval's own metrics, so what is kept is what would score."""
    from ragtune.eval.metrics import score

    s = score(answer, gold, kind)
    if "call_ast" in s or "accuracy" in s:
        return bool(s["correct"])
    return bool(s["em"] or s["contains"])


def check(cot: str, oracles: list[str], *, require_quote: bool = True) -> str | None:
    """None when `cot` is acceptable, else the reason it is not (a drop-counter key).

    `require_quote`: RAFT's answer cites the oracle, so a CoT with no quoted span is refused
    (`no_quote`); off for the no-CoT ablation, whose target drops the reasoning anyway.
    """
    ans = final_answer(cot)
    if ans is None:
        return "missing_answer_tag"
    if not ans:
        return "empty_answer"
    if degenerate(ans):
        return "degenerate_answer"
    if cot.count(BEGIN_QUOTE) != cot.count(END_QUOTE):
        return "unbalanced_quote_markers"
    qs = quotes(cot)
    if require_quote and not qs:
        return "no_quote"
    norm_oracles = [normalise(o) for o in oracles]
    for q in qs:
        if not any(normalise(q) in o for o in norm_oracles):
            return "quote_not_in_oracle"
    return None
