"""Answer one question over a KG: plan, retrieve the plan's paths, reason; the answer carries
the paths that explain it.

    ragtune rog ask out/kg "which films did [Ann Lee] direct" --adapter out/rog/adapter
    ragtune rog ask out/kg "..." --planner-kind rank-embed --ranker out/planner --top-plans 1

In Python: `ragtune.ask_rog(ragtune.RogAskConfig(kg=..., question=...))` returns the
`RogAnswer` (answers, plans with scores, supporting paths).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ragtune.rog.args import RogArgs, build_rog


@dataclass
class RogAskConfig(RogArgs):
    """Answer one question over a KG and show the reasoning paths."""

    kg: str = field(
        default="", metadata={"help": "KG directory.", "positional": True, "required": True}
    )
    question: str = field(
        default="", metadata={"help": "The question.", "positional": True, "required": True}
    )
    entities: list[str] = field(
        default_factory=list, metadata={"help": "Topic entities (default: found in the question)."}
    )
    mode: str = field(
        default="grounded", metadata={"help": "lm | paths | rog | constrained | grounded."}
    )
    json: bool = field(default=False, metadata={"help": "Print the answer as JSON."})


def ask_rog(cfg: RogAskConfig):
    """Plan, retrieve and reason over `cfg.kg` for `cfg.question`; returns the RogAnswer."""
    from ragtune.kg import KG

    rog = build_rog(cfg, KG.open(cfg.kg), mode=cfg.mode, need_free_decoding=cfg.mode == "rog")
    return rog.ask(cfg.question, cfg.entities or None)
