"""RoG planner latency per question on CPU, for each `--planner-kind` in one run, ratios printed.

    python benchmarks/rog_planner.py --kg runs/out/i21/kg --data runs/out/i21/data-2 \\
        --ranker runs/out/i21/planner                                   # 20 questions, all kinds
    python benchmarks/rog_planner.py --kg KG --data DATA --kinds rank-embed,rank-lm --questions 3

Constrained planning of the first `--questions` test questions over each one's valid relation
paths (at most `--hops` 2), one question at a time (batch 1, as `rog ask`), the listing of the
valid paths included. `rank-embed` is the bi-encoder in `--ranker` (the untrained bundled
MiniLM without it: the same cost); `rank-lm` (scores every valid plan) and `lm` (constrained
beam search, 3 beams) run the bundled SmolLM2-135M on `--threads` threads. Each planner plans
one question untimed first (loading, caches); then every question is planned by each kind in
turn, so a busy machine slows them alike. The kinds are each other's peers: the ratio is each
median over the first kind's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

KINDS = ("rank-embed", "rank-lm", "lm")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kg", required=True, help="KG directory (ragtune kg load)")
    ap.add_argument("--data", required=True, help="ragtune rog build-data directory")
    ap.add_argument("--ranker", default=None, help="rog train-planner output, for rank-embed")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated planner kinds")
    ap.add_argument("--questions", type=int, default=20, help="first N test questions")
    ap.add_argument("--hops", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the SmolLM2 kinds")
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    if bad := [k for k in kinds if k not in KINDS]:
        ap.error(f"unknown planner kind {bad[0]!r}: use {', '.join(KINDS)}")

    from ragtune.kg import KG
    from ragtune.llm.spec import load_lm
    from ragtune.rog.data import link, load_split
    from ragtune.rog.planner import Planner
    from ragtune.rog.rank import RankEmbedPlanner, RankLMPlanner

    kg = KG.open(args.kg)
    qs = load_split(args.data, "test")[: args.questions]
    lm = load_lm("smollm2-135m", threads=args.threads) if {"rank-lm", "lm"} & set(kinds) else None
    makers = {
        "rank-embed": lambda: RankEmbedPlanner(args.ranker),
        "rank-lm": lambda: RankLMPlanner(lm),
        "lm": lambda: Planner(lm, num_beams=3, num_plans=3),
    }
    planners = {k: makers[k]() for k in kinds}

    def plan(p, q) -> None:
        # the listing is part of each question's planning (`rog ask` lists, then plans)
        p.plan([q.question], [kg.relation_paths(link(kg, q), hops=args.hops)])

    for p in planners.values():
        plan(p, qs[0])  # warm-up
    ms: dict[str, list[float]] = {k: [] for k in kinds}
    for q in qs:
        for k, p in planners.items():
            t = time.perf_counter()
            plan(p, q)
            ms[k].append(1000 * (time.perf_counter() - t))
    base = statistics.median(ms[kinds[0]])
    print(f"| planner kind | questions | ms median | ms mean | × {kinds[0]} |")
    print("|---|---|---|---|---|")
    for k in kinds:
        med = statistics.median(ms[k])
        print(
            f"| {k} | {len(ms[k])} | {med:,.0f} | {statistics.mean(ms[k]):,.0f} "
            f"| {med / base:.1f} |"
        )


if __name__ == "__main__":
    main()
