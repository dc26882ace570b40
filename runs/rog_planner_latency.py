"""Issue 21: planner latency per question on CPU for each --planner-kind (docs/benchmarks.md).

    .venv/bin/python runs/rog_planner_latency.py KG DATA RANKER [N] [KIND,KIND]

Constrained planning over the question's valid relation paths (2 hops), one question at a time
(batch 1, as `rog ask`), the bundled SmolLM2-135M for lm (beam search, 3 beams) and rank-lm;
the listing of valid paths is included.
"""

import statistics
import sys
import time

from ragtune.kg import KG
from ragtune.llm.spec import load_lm
from ragtune.rog.data import link, load_split
from ragtune.rog.planner import Planner
from ragtune.rog.rank import RankEmbedPlanner, RankLMPlanner

kg = KG.open(sys.argv[1])
qs = load_split(sys.argv[2], "test")[: int(sys.argv[4]) if len(sys.argv) > 4 else 20]
kinds = sys.argv[5].split(",") if len(sys.argv) > 5 else ["rank-embed", "rank-lm", "lm"]
lm = load_lm("smollm2-135m", threads=2) if {"rank-lm", "lm"} & set(kinds) else None
makers = {
    "rank-embed": lambda: RankEmbedPlanner(sys.argv[3]),
    "rank-lm": lambda: RankLMPlanner(lm),
    "lm": lambda: Planner(lm, num_beams=3, num_plans=3),
}
for name in kinds:
    p = makers[name]()
    p.plan([qs[0].question], [kg.relation_paths(link(kg, qs[0]), hops=2)])  # warm up
    ms = []
    for q in qs:
        t = time.perf_counter()
        p.plan([q.question], [kg.relation_paths(link(kg, q), hops=2)])
        ms.append(1000 * (time.perf_counter() - t))
    print(f"{name}: median {statistics.median(ms):.0f} ms, mean {statistics.mean(ms):.0f} ms")
