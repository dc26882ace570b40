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


def retrieve_paths(
    kg,
    start_ids: list[int],
    plans: list[list[str]],
    max_paths: int = 30,
    seed: int = 0,
) -> Grounded:
    """Follow each plan from the start entities; keep at most `max_paths` paths in all.

    When over the cap, a seeded shuffle picks which paths stay (as the reference does when
    over its prompt budget), so no plan's paths crowd out the others by id order alone.
    """
    out = Grounded()
    seen: set[str] = set()
    per_plan: list[list[tuple[str, list[str]]]] = []
    for plan in plans:
        rows: list[tuple[str, list[str]]] = []
        ok = bool(start_ids) and all(kg.relation_id(r.lstrip("~")) is not None for r in plan)
        if ok:
            # Over-fetch so the shuffle has something to choose from; the hard cap stays.
            got = kg.follow(start_ids, plan, max_paths=max_paths * 4)
            out.truncated |= bool(got.truncated)
            names = kg.entity_names
            for nodes, codes in zip(got.nodes.tolist(), got.rels.tolist(), strict=True):
                parts = [names[nodes[0]]]
                for c, e in zip(codes, nodes[1:], strict=True):
                    parts += (kg.relation_name(c), names[e])
                text = " -> ".join(parts)
                if text not in seen:
                    seen.add(text)
                    rows.append((text, parts))
        out.valid.append(bool(rows))
        per_plan.append(rows)
    # Round-robin over plans so every valid plan is represented before any is repeated;
    # then listed plan by plan, best plan first: plans come ranked by the planner's score, and
    # the reasoner reads the most likely plan's paths first.
    pools = [random.Random(seed + i).sample(r, len(r)) for i, r in enumerate(per_plan)]
    picked: list[list[tuple[str, list[str]]]] = [[] for _ in pools]
    n = 0
    while n < max_paths and any(pools):
        for i, pool in enumerate(pools):
            if pool and n < max_paths:
                picked[i].append(pool.pop())
                n += 1
    if sum(len(r) for r in per_plan) > n:
        out.truncated = True
    for text, parts in (x for group in picked for x in group):
        out.rendered.append(text)
        out.paths.append(parts)
    return out


def all_paths(kg, start_ids: list[int], hops: int = 2, max_paths: int = 30, seed: int = 0):
    """Retrieval without planning: every relation path up to `hops` from the entities."""
    rels = kg.relation_paths(start_ids, hops=hops)
    return retrieve_paths(kg, start_ids, [list(r) for r in rels], max_paths=max_paths, seed=seed)
