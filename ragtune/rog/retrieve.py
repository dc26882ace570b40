"""RoG's retrieval: ground relation-path plans in the KG from the question's entities.

got = retrieve_paths(kg, [kg.find_entity("Heat")], [["directed_by"]], max_paths=30)
got.rendered  -> ["Heat -> directed_by -> Michael Mann"]
got.valid     -> [True]   (did each plan reach anything?)

Unlike the reference (an undirected simple graph per question, no cap), edges keep their
direction (`~r` walks r backwards), parallel relations stay, and paths are capped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Grounded:
    paths: list[list[str]] = field(default_factory=list)  # [e0, r1, e1, r2, e2] each
    rendered: list[str] = field(default_factory=list)  # "e0 -> r1 -> e1 -> r2 -> e2"
    valid: list[bool] = field(default_factory=list)  # per plan: exists from the entities
    truncated: bool = False

    @property
    def ends(self) -> list[str]:
        seen: dict[str, None] = {}
        for p in self.paths:
            seen.setdefault(p[-1], None)
        return list(seen)


def plan_exists(kg, plan: list[str]) -> bool:
    """Every relation of the plan is in the KG (`~r`: r backwards; `~~r` is not a relation)."""
    return bool(plan) and all(
        kg.relation_id(r[1:] if r.startswith("~") else r) is not None for r in plan
    )


def retrieve_paths(
    kg,
    start_ids: list[int],
    plans: list[list[str]],
    max_paths: int = 30,
    seed: int = 0,
    exclude_ends: set[int] | frozenset[int] = frozenset(),
) -> Grounded:
    """Follow each plan from the start entities; keep at most `max_paths` paths in all.

    Paths ending at an entity of `exclude_ends` are dropped before the cap (a recommendation's
    walk back to the question's own entity explains nothing and would take a place).

    When over the cap, which paths stay is fair three ways: each start entity's paths are
    shuffled (seeded; the reference shuffles when over its prompt budget) and interleaved, so a
    hub entity cannot crowd out the others; plans are taken in turn, so every valid plan is
    represented; the result is listed plan by plan, best plan first (plans come ranked by the
    planner's score, and the reasoner reads the most likely plan's paths first).
    """
    out = Grounded()
    seen: set[str] = set()
    per_plan: list[list[tuple[str, list[str]]]] = []
    for i, plan in enumerate(plans):
        rows: list[tuple[str, list[str]]] = []
        if start_ids and plan_exists(kg, plan):
            per_start = []
            for j, s in enumerate(start_ids):
                # over-fetch so the shuffle has something to choose from; the hard cap stays
                got = kg.follow([s], plan, max_paths=max_paths * 4)
                out.truncated |= bool(got.truncated)
                named = _named(kg, got, exclude_ends)
                random.Random(seed * 7919 + i * 131 + j).shuffle(named)
                per_start.append(named)
            for text, parts in _interleave(per_start):
                if text not in seen:
                    seen.add(text)
                    rows.append((text, parts))
        out.valid.append(bool(rows))
        per_plan.append(rows)
    picked: list[list[tuple[str, list[str]]]] = [[] for _ in per_plan]
    n = 0
    for k in range(max((len(r) for r in per_plan), default=0)):
        for i, rows in enumerate(per_plan):
            if k < len(rows) and n < max_paths:
                picked[i].append(rows[k])
                n += 1
    if sum(len(r) for r in per_plan) > n:
        out.truncated = True
    for text, parts in (x for group in picked for x in group):
        out.rendered.append(text)
        out.paths.append(parts)
    return out


def _named(kg, got, exclude_ends=frozenset()) -> list[tuple[str, list[str]]]:
    names = kg.entity_names
    out = []
    for nodes, codes in zip(got.nodes.tolist(), got.rels.tolist(), strict=True):
        if nodes[-1] in exclude_ends:
            continue
        parts = [names[nodes[0]]]
        for c, e in zip(codes, nodes[1:], strict=True):
            parts += (kg.relation_name(c), names[e])
        out.append((" -> ".join(parts), parts))
    return out


def _interleave(lists: list[list]) -> list:
    """[[a1, a2], [b1]] -> [a1, b1, a2]: one item of each list in turn."""
    out = []
    for i in range(max((len(x) for x in lists), default=0)):
        out.extend(x[i] for x in lists if i < len(x))
    return out


def all_paths(
    kg,
    start_ids: list[int],
    hops: int = 2,
    max_paths: int = 30,
    seed: int = 0,
    exclude_ends: set[int] | frozenset[int] = frozenset(),
):
    """Retrieval without planning: every relation path up to `hops` from the entities."""
    rels = [list(r) for r in kg.relation_paths(start_ids, hops=hops)]
    return retrieve_paths(kg, start_ids, rels, max_paths, seed=seed, exclude_ends=exclude_ends)
