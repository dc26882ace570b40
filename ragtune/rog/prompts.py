"""RoG's prompts and its relation-path format, as the reference writes them.

plan_messages("who directed [Heat]")  -> chat messages asking for a relation path
format_plan(["directed_by", "~starred_actors"]) == "<PATH>directed_by<SEP>~starred_actors</PATH>"
parse_plans(text) -> [["directed_by", "~starred_actors"], ...]
asks_for_others("recommend films like [Heat]") -> True   (its entities are no answer)
"""

from __future__ import annotations

import re

PATH_START, PATH_SEP, PATH_END = "<PATH>", "<SEP>", "</PATH>"
MARKERS = (PATH_START, PATH_SEP, PATH_END)

PLAN_INSTRUCTION = (
    "Please generate a valid relation path that can be helpful for answering the following "
    "question: "
)
REASON_INSTRUCTION = (
    "Based on the reasoning paths, please answer the given question. Please keep the answer as "
    "simple as possible and return all the possible answers as a list."
)
NO_GRAPH_INSTRUCTION = (
    "Please answer the following questions. Please keep the answer as simple as possible and "
    "return all the possible answer as a list."
)

_PLAN = re.compile(re.escape(PATH_START) + r"(.*?)" + re.escape(PATH_END), re.S)


def _q(question: str) -> str:
    question = question.strip()
    return question if question.endswith("?") else question + "?"


def plan_messages(question: str) -> list[dict]:
    return [{"role": "user", "content": PLAN_INSTRUCTION + question.strip()}]


def reason_messages(question: str, paths: list[str]) -> list[dict]:
    body = f"{REASON_INSTRUCTION}\n\nReasoning Paths:\n" + "\n".join(paths)
    return [{"role": "user", "content": f"{body}\n\nQuestion:\n{_q(question)}"}]


def no_graph_messages(question: str) -> list[dict]:
    return [{"role": "user", "content": f"{NO_GRAPH_INSTRUCTION}\n\nQuestion:\n{_q(question)}"}]


def format_plan(relations: list[str] | tuple[str, ...]) -> str:
    return PATH_START + PATH_SEP.join(relations) + PATH_END


def parse_plans(text: str) -> list[list[str]]:
    """Every `<PATH>...</PATH>` in `text`, split on `<SEP>`; empty plans dropped.

    A plan cut off before `</PATH>` (max tokens) is kept when it has at least one relation.
    """
    plans = [[r.strip() for r in m.split(PATH_SEP) if r.strip()] for m in _PLAN.findall(text)]
    if not plans and PATH_START in text:
        tail = text.split(PATH_START, 1)[1]
        plans = [[r.strip() for r in tail.split(PATH_SEP) if r.strip()]]
    return [p for p in plans if p]


def format_answers(answers: list[str]) -> str:
    """The reasoning target: one answer a line."""
    return "\n".join(a.strip() for a in answers if a.strip())


def parse_answers(text: str) -> list[str]:
    """Answer lines of a reasoning reply; list bullets and numbering stripped, order kept."""
    out: list[str] = []
    for line in text.split("\n"):
        # a bullet or "1." / "2)" numbering, only when a space follows ("2.5 million" stays)
        a = re.sub(r"^\s*(?:[-*•]|\d+[.)])(?=\s)\s*", "", line).strip()
        if a and a not in out:
            out.append(a)
    return out


_NOUN = r"(?:films?|movies?|books?|shows?|series|songs?|albums?|artists?|games?|titles?|works?)"
# Recommendation and similarity questions: "recommend/suggest ...", "films like X", "similar
# to X", "other films by X's director". Their answers are never the question's own entities,
# though a retrieved walk (X -> directed_by -> D -> ~directed_by -> X) may end at one.
_OTHERS = re.compile(
    r"^\W*(?:(?:please|can you|could you|would you)\s+)?(?:recommend|suggest)\b"
    rf"|\bsimilar\s+to\b|\b(?:{_NOUN}|more|others?|anything|something)\s+like\b"
    rf"|\bother\s+{_NOUN}\b",
    re.I,
)


def asks_for_others(question: str) -> bool:
    """Whether a question asks for entities other than its own (recommendation, similarity).

    Question answering keeps walks: "the birthplace of the heir of X's mother" may go X ->
    mother -> X -> birthplace, and "who is married to the spouse of X" is answered by X.
    """
    return bool(_OTHERS.search(question))
