"""Answer one question over a KG: plan, retrieve the plan's paths, reason; the answer carries
the paths that explain it.

    ragtune rog ask out/kg "which films did [Ann Lee] direct" --adapter out/rog/adapter
    ragtune rog ask out/kg "..." --planner-kind rank-embed --ranker out/planner --top-plans 1

In Python: `ragtune.ask_rog(ragtune.RogAskConfig(kg=..., question=...))` returns the
`RogAnswer` (answers, plans with scores, supporting paths).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RogAskConfig:
    """Answer one question over a KG and show the reasoning paths."""

    kg: str = field(
        default="", metadata={"help": "KG directory.", "positional": True, "required": True}
    )
    question: str = field(
        default="", metadata={"help": "The question.", "positional": True, "required": True}
    )
    model: str = field(default="smollm2-135m", metadata={"help": "LM spec (reasoner)."})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter (rog train)."})
    planner: str | None = field(default=None, metadata={"help": "Planner spec (default: model)."})
    planner_adapter: str | None = field(
        default=None,
        metadata={"help": "LoRA adapter of the planner (on --planner, else on --model)."},
    )
    entities: list[str] = field(
        default_factory=list, metadata={"help": "Topic entities (default: found in the question)."}
    )
    mode: str = field(
        default="grounded", metadata={"help": "lm | paths | rog | constrained | grounded."}
    )
    hops: int = field(default=2, metadata={"help": "Hops for constraints / paths mode."})
    max_paths: int = field(default=30, metadata={"help": "Cap on paths in the prompt."})
    top_plans: int | None = field(
        default=None,
        metadata={"help": "Plans whose paths the reasoner reads (RoG's K; default: all 3)."},
    )
    planner_kind: str = field(
        default="lm",
        metadata={
            "help": "lm (beam search), rank-lm (the planner LM scores every valid path) or "
            "rank-embed (a bi-encoder ranks them: --ranker)."
        },
    )
    ranker: str | None = field(
        default=None,
        metadata={"help": "rank-embed's bi-encoder (rog train-planner; default: bundled MiniLM)."},
    )
    plan_margin: float | None = field(
        default=None,
        metadata={
            "help": "Adaptive K: read every plan scoring within this of the best (at most "
            "--top-plans); default: fixed K."
        },
    )
    max_relation_paths: int = field(
        default=2000,
        metadata={"help": "Cap on the valid relation paths listed per question (3 hops grow)."},
    )
    exclude_entities: bool | None = field(
        default=None,
        metadata={
            "help": "Keep the question's own entities out of the answers (default: on for "
            "recommendation and similarity questions: 'recommend ...', 'films like X', "
            "'similar to X', 'other films ...'; off for question answering)."
        },
    )
    json: bool = field(default=False, metadata={"help": "Print the answer as JSON."})


def ask_rog(cfg: RogAskConfig):
    """Plan, retrieve and reason over `cfg.kg` for `cfg.question`; returns the RogAnswer."""
    from ragtune.kg import KG
    from ragtune.llm.spec import load_lm
    from ragtune.rog.pipeline import RoG, load_planner
    from ragtune.rog.rank import make_planner

    kg = KG.open(cfg.kg)
    lm = load_lm(cfg.model, adapter=cfg.adapter)
    planner = None
    if cfg.planner_kind != "rank-embed":  # rank-embed needs no LM to plan
        planner = load_planner(cfg.model, cfg.planner, cfg.planner_adapter)
    ranked = make_planner(cfg.planner_kind, planner or lm, cfg.ranker)
    rog = RoG(
        kg,
        lm,
        planner,
        mode=cfg.mode,
        hops=cfg.hops,
        max_paths=cfg.max_paths,
        top_plans=cfg.top_plans,
        exclude_entities=cfg.exclude_entities,
        planner=ranked,
        plan_margin=cfg.plan_margin,
        max_relation_paths=cfg.max_relation_paths,
    )
    return rog.ask(cfg.question, cfg.entities or None)
