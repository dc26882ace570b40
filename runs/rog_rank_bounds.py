"""Issue 21: what a grounded reasoner can score from the rank-embed planner's top plan, without
running the reasoner (a cheap bound on its true Hits@1).

    .venv/bin/python runs/rog_rank_bounds.py KG DATA RANKER [N]

With `--top-plans 1` the grounded reasoner's answers are ends of the top plan's retrieved paths
(max 30, the question's own entities dropped as MetaQA never answers with them). "all ends gold":
any first answer it names is gold (a floor on Hits@1); "some end gold": one can be (a ceiling).
"""

import sys

from ragtune.kg import KG
from ragtune.rog.data import link, load_split
from ragtune.rog.metrics import normalize
from ragtune.rog.rank import RankEmbedPlanner
from ragtune.rog.retrieve import retrieve_paths

kg = KG.open(sys.argv[1])
qs = load_split(sys.argv[2], "test")[: int(sys.argv[4]) if len(sys.argv) > 4 else 100]
planner = RankEmbedPlanner(sys.argv[3])
ids = [link(kg, q) for q in qs]
plans = planner.plan([q.question for q in qs], [kg.relation_paths(i, hops=2) for i in ids])
floor = ceil = 0
for q, i, ps in zip(qs, ids, plans, strict=True):
    g = retrieve_paths(kg, i, [ps[0].relations] if ps else [], 30, exclude_ends=frozenset(i))
    gold = {normalize(a) for a in q.answers}
    ends = [normalize(e) for e in g.ends]
    floor += bool(ends) and all(e in gold for e in ends)
    ceil += any(e in gold for e in ends)
print(f"{len(qs)} questions: all ends gold {floor}, some end gold {ceil}")
