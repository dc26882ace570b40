"""Find a question's topic entities in the KG (the start entities of RoG's retrieval).

    question_entities(kg, "what movies did [Sharon Tate] star in")   # ["Sharon Tate"]
    question_entities(kg, "which nationality is frederica_of_mecklenburg-strelitz 's couple ?")
                                                     # ["frederica_of_mecklenburg-strelitz"]

1. Names in square brackets (MetaQA marks the topic entity so): the KG name equal to the
   bracketed text (exactly, ignoring case, or token for token, so ``[sharon_tate]`` finds
   "Sharon Tate"). A question with brackets links nothing else: the brackets say where the
   entity is, and a name elsewhere or a part of an unknown bracketed name
   ("[Eddie Marsan]" -> the film "Eddie") would be the wrong entity.
2. Without brackets, the longest non-overlapping mentions of entity names, matched on token
   boundaries and ignoring case. Names and question are cut into the same tokens: runs of
   letters/digits, and single punctuation marks; underscores separate tokens like spaces do,
   so PathQuestion's ``frederica_of_mecklenburg-strelitz`` is found written with underscores
   or spaces. Names made only of stop words or punctuation ("the", "of", "?") are never matched.

The matcher (built once per KG and cached on it) maps each name's token string to entity ids
and keeps the set of proper prefixes, so a scan extends a candidate only while it is still
the start of some name: about one dict lookup per question token and name token.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ragtune.kg.graph import KG

TOKEN = re.compile(r"[^\W_]+|[^\w\s]")
BRACKET = re.compile(r"\[([^\[\]]+)\]")
SEP = "\x1f"  # joins tokens in matcher keys; cannot occur inside a token
STOPWORDS = frozenset(
    "a an the of in on at to for by from with and or is are was were be been what which who "
    "whom whose when where why how did do does s".split()
)


def tokens(text: str) -> list[str]:
    """The matching tokens of `text`, casefolded."""
    return TOKEN.findall(text.casefold())


class NameMatcher:
    """Token-level longest-match finder over all entity names of a KG."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.full: dict[str, list[int]] = {}  # token key -> entity ids spelled so
        self.prefixes: set[str] = set()  # proper prefixes of some name's token key
        for i, name in enumerate(names):
            toks = tokens(name)
            if not toks:
                continue
            for k in range(1, len(toks)):
                self.prefixes.add(SEP.join(toks[:k]))
            if all(t in STOPWORDS or not t[0].isalnum() for t in toks):
                continue
            self.full.setdefault(SEP.join(toks), []).append(i)

    def find(self, text: str) -> list[int]:
        """Entity ids of the longest non-overlapping mentions, in order of appearance."""
        spans = [(m.start(), m.end()) for m in TOKEN.finditer(text)]
        toks = [text[a:b].casefold() for a, b in spans]
        found = []  # (n_tokens, start token, end token, ids)
        for i in range(len(toks)):
            key, j = toks[i], i + 1
            while True:
                ids = self.full.get(key)
                if ids is not None:
                    found.append((j - i, i, j, ids))
                if j >= len(toks) or key not in self.prefixes:
                    break
                key += SEP + toks[j]
                j += 1
        # Longest first, then leftmost; a mention overlapping a kept one is dropped.
        found.sort(key=lambda f: (-f[0], f[1]))
        taken = [False] * len(toks)
        kept = []
        for _, i, j, ids in found:
            if any(taken[i:j]):
                continue
            taken[i:j] = [True] * (j - i)
            kept.append((i, self._pick(ids, text[spans[i][0] : spans[j - 1][1]])))
        return [e for _, e in sorted(kept)]

    def whole(self, text: str) -> int | None:
        """The entity whose tokens are exactly those of `text`, or None."""
        ids = self.full.get(SEP.join(tokens(text)))
        return None if ids is None else self._pick(ids, text.strip())

    def _pick(self, ids: list[int], mention: str) -> int:
        """Of names that tokenise alike ("a_b", "A b"), the one written as in the question."""
        if len(ids) == 1:
            return ids[0]
        for same in (lambda n: n == mention, lambda n: n.casefold() == mention.casefold()):
            for i in ids:
                if same(self.names[i]):
                    return i
        return ids[0]


def matcher(kg: KG) -> NameMatcher:
    """The KG's name matcher, built on first use and cached on the KG object."""
    if kg._matcher is None:
        kg._matcher = NameMatcher(kg.entity_names)
    return kg._matcher


def question_entities(kg: KG, question: str) -> list[str]:
    """The KG names of the question's topic entities (bracketed ones first; see module doc)."""
    seen: dict[str, None] = {}
    marked = BRACKET.findall(question)
    for text in marked:
        i = kg.find_entity(text)
        if i is None:  # the same tokens written differently ("sharon_tate", "Sharon  Tate")
            i = matcher(kg).whole(text)
        if i is not None:
            seen.setdefault(kg.entity_names[i], None)
    if marked:
        # Brackets say where the topic entity is; a name found elsewhere in the question
        # ("who acted together with [X]" -> the film "Together") or inside an unknown
        # bracketed name ("[Eddie Marsan]" -> the film "Eddie") would be the wrong entity.
        return list(seen)
    for i in matcher(kg).find(question):
        seen.setdefault(kg.entity_names[i], None)
    return list(seen)
