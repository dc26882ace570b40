"""Reasoning on Graphs: plan relation paths, ground them in the KG, answer from the paths.

rog = RoG(KG.open("out/kg"), load_lm("smollm2-135m", adapter="out/rog/adapter"))
ans = rog.ask("who directed the films starring Sharon Tate")
ans.answers, ans.rendered        # the answers and the paths that support them

Modes (`mode=`), the comparison RoG's paper draws:
  "lm"          the LM alone, no graph;
  "paths"       retrieval without planning: every relation path up to `hops` from the entities;
  "rog"         planned paths, free decoding (plans may not exist in the graph);
  "constrained" planned paths, decoding restricted to relation paths that exist;
  "grounded"    as constrained, and the answers restricted to entities that end a retrieved
                path (ragtune.rog.answer): every answer is backed by a path (default).
Answers are never the question's own entities when `exclude_entities` holds for the question:
by default (None) for recommendation and similarity questions (prompts.asks_for_others:
"recommend ...", "films like X", "similar to X", "other films ..."); True or False forces it.
Paths are walks, so for question answering an answer may be a question entity ("who is
married to the spouse of X"); for "films like X", X is never one.
The reasoner is any backend (an OpenAI-compatible endpoint included); the planner must be a
local model for beam search (it defaults to the reasoner).
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from ragtune.errors import ConfigError
from ragtune.rog.metrics import normalize
from ragtune.rog.planner import Planner
from ragtune.rog.prompts import asks_for_others, no_graph_messages, parse_answers, reason_messages
from ragtune.rog.retrieve import Grounded, all_paths, plan_exists, retrieve_paths

if TYPE_CHECKING:
    from ragtune.llm.base import LM

MODES = ("lm", "paths", "rog", "constrained", "grounded")


@dataclass
class RogAnswer:
    question: str
    answers: list[str]
    paths: list[list[str]] = field(default_factory=list)  # e0, r1, e1, ... each
    rendered: list[str] = field(default_factory=list)  # "e0 -> r1 -> e1"
    plans: list[dict] = field(default_factory=list)  # {"relations", "score", "valid"}
    entities: list[str] = field(default_factory=list)
    raw: str = ""
    mode: str = "grounded"
    excluded: list[str] = field(default_factory=list)  # question entities kept out of answers

    @property
    def supporting(self) -> list[str]:
        """The rendered paths that end at one of the answers: the explanation."""
        ans = {normalize(a) for a in self.answers}
        return [
            r for r, p in zip(self.rendered, self.paths, strict=True) if normalize(p[-1]) in ans
        ]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["supporting"] = self.supporting
        return d


class RoG:
    def __init__(
        self,
        kg,
        lm,
        planner_lm=None,
        mode: str = "grounded",
        hops: int = 2,
        max_paths: int = 30,
        path_tokens: int = 1024,
        num_beams: int = 3,
        max_answer_tokens: int = 64,
        top_plans: int | None = None,
        exclude_entities: bool | None = None,
        planner=None,
        plan_margin: float | None = None,
        max_relation_paths: int = 2000,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"RoG mode {mode!r}: use one of {', '.join(MODES)}")
        self.kg, self.lm, self.mode = kg, lm, mode
        self.hops, self.max_paths, self.path_tokens = hops, max_paths, path_tokens
        self.max_answer_tokens = max_answer_tokens
        # RoG's K: how many of the ranked plans feed retrieval (None: all `num_beams`). A small
        # reasoner answers better from the best plan's paths alone (docs/results.md).
        if top_plans is not None and top_plans < 1:
            raise ConfigError(f"top_plans = {top_plans}: use 1 or more (or leave it unset)")
        self.top_plans = top_plans
        # Adaptive K: read every plan within `plan_margin` of the best plan's score (in the
        # planner's own units: per-token log-prob for lm/rank-lm, cosine for rank-embed).
        if plan_margin is not None and plan_margin < 0:
            raise ConfigError(f"plan_margin = {plan_margin}: give 0 or more (or leave it unset)")
        self.plan_margin = plan_margin
        # The valid relation paths listed per question (the decoder's trie, the rank planners'
        # candidates): at 3 hops an entity's paths multiply, so they are capped.
        if max_relation_paths < 1:
            raise ConfigError(f"max_relation_paths = {max_relation_paths}: give 1 or more")
        self.max_relation_paths = max_relation_paths
        self.exclude_entities = exclude_entities  # None: per question (asks_for_others)
        # `planner`: a ready planner (ragtune.rog.rank: RankLMPlanner, RankEmbedPlanner);
        # by default the LM's beam search
        self.planner = planner or Planner(
            planner_lm or lm, num_beams=num_beams, num_plans=num_beams
        )

    def entity_ids(self, question: str, entities: list[str] | None) -> tuple[list[int], list[str]]:
        from ragtune.kg import question_entities

        names = entities or question_entities(self.kg, question)
        ids, kept = [], []
        for n in names:
            i = self.kg.find_entity(n)
            if i is not None:
                ids.append(i)
                kept.append(self.kg.entity_names[i])
        return ids, kept

    def excludes(self, question: str, exclude_entities: bool | None = None) -> bool:
        """Whether `question`'s own entities are kept out of its answers: the call's setting,
        else this RoG's, else whether it is a recommendation or similarity question."""
        for setting in (exclude_entities, self.exclude_entities):
            if setting is not None:
                return bool(setting)
        return asks_for_others(question)

    def ask(
        self,
        question: str,
        entities: list[str] | None = None,
        mode: str | None = None,
        exclude_entities: bool | None = None,
    ) -> RogAnswer:
        return self.ask_many([question], [entities], mode=mode, exclude_entities=exclude_entities)[
            0
        ]

    def ask_many(
        self,
        questions: list[str],
        entities: list[list[str] | None] | None = None,
        mode: str | None = None,
        exclude_entities: bool | list[bool | None] | None = None,
    ) -> list[RogAnswer]:
        """`exclude_entities`: one setting for all questions, or one per question (None: see
        `excludes`)."""
        mode = mode or self.mode
        if mode not in MODES:
            raise ConfigError(f"RoG mode {mode!r}: use one of {', '.join(MODES)}")
        entities = entities or [None] * len(questions)
        linked = [self.entity_ids(q, e) for q, e in zip(questions, entities, strict=True)]
        if not isinstance(exclude_entities, list):
            exclude_entities = [exclude_entities] * len(questions)
        drop: list[frozenset[int]] = [
            frozenset(ids) if self.excludes(q, x) else frozenset()
            for q, (ids, _), x in zip(questions, linked, exclude_entities, strict=True)
        ]
        grounded: list[Grounded | None] = [None] * len(questions)
        plans_out: list[list[dict]] = [[] for _ in questions]
        if mode == "paths":
            grounded = [
                all_paths(self.kg, ids, self.hops, self.max_paths, _seed(q), drop[i])
                for i, (q, (ids, _)) in enumerate(zip(questions, linked, strict=True))
            ]
        elif mode in ("rog", "constrained", "grounded"):
            from ragtune.rog.rank import plans_to_read

            allowed = None
            if mode in ("constrained", "grounded"):
                allowed = [
                    [
                        tuple(r)
                        for r in self.kg.relation_paths(
                            ids, hops=self.hops, max_paths=self.max_relation_paths
                        )
                    ]
                    if ids
                    else []
                    for ids, _ in linked
                ]
            plans = self.planner.plan(questions, allowed)
            for i, ((ids, _), ps) in enumerate(zip(linked, plans, strict=True)):
                used = plans_to_read(ps, self.top_plans, self.plan_margin)
                g = retrieve_paths(
                    self.kg,
                    ids,
                    [p.relations for p in used],
                    self.max_paths,
                    seed=_seed(questions[i]),
                    exclude_ends=drop[i],
                )
                for p, ok in zip(used, g.valid, strict=True):
                    p.valid = ok
                for p in ps[len(used) :]:  # shown, not retrieved: still say whether it exists
                    p.valid = bool(ids) and plan_exists(self.kg, p.relations)
                    p.valid = p.valid and len(self.kg.follow(ids, p.relations, 1).nodes) > 0
                plans_out[i] = [p.to_dict() for p in ps]
                grounded[i] = g
        msgs = []
        for q, g in zip(questions, grounded, strict=True):
            if g is None:
                msgs.append(no_graph_messages(q))
            else:
                self._fit(g)
                msgs.append(reason_messages(q, g.rendered))
        if mode == "grounded":
            from ragtune.rog.answer import grounded_answers

            cands = [(g.ends if g else []) for g in grounded]
            answers, replies = grounded_answers(self.lm, msgs, cands, self.max_answer_tokens)
        else:
            gen = self.lm.generate(msgs, max_tokens=self.max_answer_tokens)
            replies = [c.text for c in gen]
            answers = [parse_answers(r) for r in replies]
        out = []
        for i, q in enumerate(questions):
            g = grounded[i] or Grounded()
            excluded = [self.kg.entity_names[e] for e in sorted(drop[i])]
            if excluded:  # the LM-only reply, or a free reasoner, may still name them
                own = {normalize(n) for n in excluded}
                answers[i] = [a for a in answers[i] if normalize(a) not in own]
            out.append(
                RogAnswer(
                    question=q,
                    answers=answers[i],
                    paths=g.paths,
                    rendered=g.rendered,
                    plans=plans_out[i],
                    entities=linked[i][1],
                    raw=replies[i],
                    mode=mode,
                    excluded=excluded,
                )
            )
        return out

    def _fit(self, g: Grounded) -> None:
        """Drop paths from the end until the rendered block fits `path_tokens`."""
        while g.rendered and self.lm.count_tokens("\n".join(g.rendered)) > self.path_tokens:
            drop = max(1, len(g.rendered) // 4)
            del g.rendered[-drop:]
            del g.paths[-drop:]
            g.truncated = True


def load_planner(
    model: str, planner: str | None = None, adapter: str | None = None, **kw
) -> LM | None:
    """The planner LM of `--planner`/`--planner-adapter`; None: RoG plans with the reasoner.

    An adapter without `planner` goes on the reasoner's base `model`: a planner trained
    apart from the reasoner (or the reasoner is an endpoint and the planner a local LoRA).
    """
    if not planner and not adapter:
        return None
    from ragtune.llm.spec import load_lm, runs_locally

    if not planner:
        # the adapter goes on the reasoner's base model, which must be one we can load locally
        if not runs_locally(model):
            raise ConfigError(
                f"planner_adapter {adapter!r} needs a local base model, but the reasoner "
                f"{model!r} is an endpoint; name the planner's base model with --planner"
            )
    return load_lm(planner or model, adapter=adapter, **kw)


def _seed(question: str) -> int:
    """Path sampling seeded by the question, not its place in a batch: resumable, repeatable."""
    return zlib.crc32(question.encode("utf-8"))
