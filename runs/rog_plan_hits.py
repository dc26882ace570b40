"""How often a RoG run's plans reach a gold answer (issue 21), from its predictions file.

    .venv/bin/python runs/rog_plan_hits.py KG DATA predictions-grounded.jsonl [margin ...]

A plan "reaches gold" when following it from the question's entities ends at a gold answer
(the whole walk, not only the paths the prompt kept). For each margin: the plans adaptive K
would read (within the margin of the best) and how often one of them reaches gold.
"""

import json
import sys

from ragtune.kg import KG
from ragtune.rog.data import link, load_split
from ragtune.rog.metrics import normalize

kg = KG.open(sys.argv[1])
qs = {q.id: q for q in load_split(sys.argv[2], "test")}
rows = [json.loads(x) for x in open(sys.argv[3], encoding="utf-8")]
margins = [float(m) for m in sys.argv[4:]]
names = kg.entity_names
reach = []  # per row: [bool per plan], scores
for r in rows:
    q = qs[r["id"]]
    ids = link(kg, q)
    gold = {normalize(a) for a in q.answers}
    hits = []
    for p in r["plans"]:
        ends = kg.follow(ids, p["relations"], max_paths=5000).nodes[:, -1].tolist()
        hits.append(any(normalize(names[e]) in gold for e in ends))
    reach.append((hits, [p["score"] for p in r["plans"]]))
n = len(reach)
top = sum(bool(h) and h[0] for h, _ in reach)
anyp = sum(any(h) for h, _ in reach)
print(f"{n} questions: top plan reaches gold {100 * top / n:.1f}%, some plan {100 * anyp / n:.1f}%")
for m in margins:
    read, ok = 0, 0
    for h, s in reach:
        k = [i for i in range(len(s)) if s[i] >= s[0] - m] if s else []
        read += len(k)
        ok += any(h[i] for i in k)
    print(
        f"margin {m}: plans read {read / n:.2f} per question, one reaches gold {100 * ok / n:.1f}%"
    )
