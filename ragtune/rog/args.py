"""The RoG system a job runs: reasoner, planner, retrieval and device settings, shared by
`rog ask` (RogAskConfig) and `rog predict` (RogEvalConfig), so one field means one thing in both
and a new setting reaches both jobs.

    rog = build_rog(args, KG.open("out/kg"))     # args: any RogArgs (sub)class
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ragtune.llm.device import device_field, dtype_field


@dataclass
class RogArgs:
    """Reasoner, planner and retrieval settings of a RoG system."""

    model: str = field(default="smollm2-135m", metadata={"help": "Reasoner (any LM spec)."})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter (rog train)."})
    planner: str | None = field(
        default=None, metadata={"help": "Planner model spec (default: the reasoner's model)."}
    )
    planner_adapter: str | None = field(
        default=None,
        metadata={"help": "LoRA adapter of the planner (on --planner, else on --model)."},
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
    hops: int = field(default=2, metadata={"help": "Hops for constraints and 'paths' mode."})
    max_paths: int = field(default=30, metadata={"help": "Cap on paths in a prompt."})
    beams: int = field(default=3, metadata={"help": "Beams (and plans) per question."})
    top_plans: int | None = field(
        default=None,
        metadata={"help": "Plans whose paths the reasoner reads (RoG's K; default: all beams)."},
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
            "help": "Keep the question's own entities out of its answers (default: per "
            "question: a data file's exclude_entities field, else on for recommendation and "
            "similarity questions: 'recommend ...', 'films like X', 'similar to X', "
            "'other films ...'; off for question answering)."
        },
    )
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads."})
    device: str = device_field()  # ragtune.llm.device
    dtype: str = dtype_field()


def build_rog(args: RogArgs, kg, mode: str = "grounded", need_free_decoding: bool = False):
    """The RoG of `args` over an opened KG: reasoner, planner LM (none for rank-embed), planner.

    need_free_decoding: the caller will run mode "rog", which only the beam-search planner does.
    """
    from ragtune.errors import ConfigError
    from ragtune.llm.spec import load_lm
    from ragtune.rog.pipeline import RoG, load_planner
    from ragtune.rog.rank import make_planner

    if need_free_decoding and args.planner_kind != "lm":
        raise ConfigError(
            f"mode 'rog' is free decoding, which planner_kind {args.planner_kind!r} does not do "
            "(it ranks the paths that exist): drop rog from --modes or use --planner-kind lm"
        )
    # None values keep the backend's default; load_lm drops local-only ones for endpoints
    kw = {"threads": args.threads, "device": args.device, "dtype": args.dtype}
    lm = load_lm(args.model, adapter=args.adapter, **kw)
    planner_lm = None
    if args.planner_kind != "rank-embed":  # rank-embed needs no LM to plan
        planner_lm = load_planner(args.model, args.planner, args.planner_adapter, **kw)
    ranked = make_planner(
        args.planner_kind, planner_lm or lm, args.ranker, args.beams, args.device or "auto"
    )
    return RoG(
        kg,
        lm,
        planner_lm,
        mode=mode,
        hops=args.hops,
        max_paths=args.max_paths,
        num_beams=args.beams,
        top_plans=args.top_plans,
        exclude_entities=args.exclude_entities,
        planner=ranked,
        plan_margin=args.plan_margin,
        max_relation_paths=args.max_relation_paths,
    )
