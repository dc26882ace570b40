"""Issue 21 item 4: how many valid relation paths a MetaQA-approx question has at 1-3 hops, and
how long listing them takes (the constrained decoder's trie and the rank planners' candidates).

    .venv/bin/python runs/rog_hops.py runs/out/i21/kg runs/out/i21/data-1 [cap]
"""

import statistics
import sys
import time

from ragtune.kg import KG
from ragtune.rog.data import link, load_split

kg = KG.open(sys.argv[1])
qs = load_split(sys.argv[2], "test")[:100]
cap = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
ids = [link(kg, q) for q in qs]
for hops in (1, 2, 3):
    n, ms = [], []
    for i in ids:
        t = time.perf_counter()
        got = kg.relation_paths(i, hops=hops, max_paths=cap)
        ms.append(1000 * (time.perf_counter() - t))
        n.append(len(got))
    print(
        f"hops {hops} cap {cap}: paths median {statistics.median(n):.0f} max {max(n)} "
        f"capped {sum(x >= cap for x in n)}; ms median {statistics.median(ms):.1f} "
        f"p95 {sorted(ms)[94]:.1f}"
    )
