"""How many valid relation paths a question has at 1, 2 and 3 hops, and how long listing them
takes: the constrained decoder's trie and the rank planners' candidates are these paths.

    python benchmarks/rog_hops.py --kg runs/out/i21/kg --data runs/out/i21/data-1
    python benchmarks/rog_hops.py --kg KG --data DATA --cap 500 --questions 50

`kg.relation_paths(ids, hops, max_paths=--cap)` from the linked entities of each of the first
`--questions` test questions: paths per question (median, max, how many reach the cap) and
milliseconds per listing (median, p95). No peer: the reference RoG decodes plans freely and
never lists the valid ones.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kg", required=True, help="KG directory (ragtune kg load)")
    ap.add_argument("--data", required=True, help="ragtune rog build-data directory")
    ap.add_argument("--questions", type=int, default=100, help="first N test questions")
    ap.add_argument("--cap", type=int, default=2000, help="max_paths of each listing")
    ap.add_argument("--max-hops", type=int, default=3)
    args = ap.parse_args()

    from ragtune.kg import KG
    from ragtune.rog.data import link, load_split

    kg = KG.open(args.kg)
    ids = [link(kg, q) for q in load_split(args.data, "test")[: args.questions]]
    for hops in range(1, args.max_hops + 1):
        n, ms = [], []
        for i in ids:
            t = time.perf_counter()
            got = kg.relation_paths(i, hops=hops, max_paths=args.cap)
            ms.append(1000 * (time.perf_counter() - t))
            n.append(len(got))
        p95 = sorted(ms)[max(0, math.ceil(0.95 * len(ms)) - 1)]
        print(
            f"hops {hops} cap {args.cap}: paths median {statistics.median(n):.0f} max {max(n)} "
            f"capped {sum(x >= args.cap for x in n)}; ms median {statistics.median(ms):.1f} "
            f"p95 {p95:.1f}"
        )


if __name__ == "__main__":
    main()
