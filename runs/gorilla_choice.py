"""Which document a Gorilla RAFT model chose in the distractor sweep, for the task-first CoT.

    .venv/bin/python runs/gorilla_choice.py runs/out/v3/gorilla/eval [runs/out/v3/gorilla/raft]

Rebuilds each sweep prompt's documents with `ragtune eval`'s own `sweep_documents` and, for
the sweep's test questions (run.json's sweep_limit) at each k it ran, counts: the task the
answer names ("The request is a X task.") is the oracle's domain; the answer is the oracle's
call; the named task is the domain of some document in the prompt; the answer is the call of a
document of the named task.
"""

import json
import re
import sys
from pathlib import Path

from ragtune.eval.compare import _pool, _read, sweep_documents
from ragtune.raft.examples import DistractorPicker

ev = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/out/v3/gorilla/eval")
data = Path(sys.argv[2] if len(sys.argv) > 2 else "runs/out/v3/gorilla/raft")
settings = json.loads((ev / "run.json").read_text())
n = settings.get("sweep_limit") or 40
rows, pool = _read(data / "raw" / "test.jsonl")[:n], _pool(data)
picker = DistractorPicker(pool, "random")
cells = {json.loads(x)["cell"]: json.loads(x)["preds"] for x in open(ev / "cells.jsonl")}
print(
    "| k | task named = the oracle's | oracle's call | named task in a prompt document "
    "| call from a document of the named task |"
)
print("|---|---|---|---|---|")
for k in (0, 1, 2, 4, 8):
    if f"sweep/raft/k={k}" not in cells:  # a sweep run at fewer k (e.g. --sweep 2,4,8)
        continue
    right = oracle_call = in_ctx = consistent = 0
    for r, p in zip(rows, cells[f"sweep/raft/k={k}"], strict=True):
        docs, _ = sweep_documents(picker, r, k, settings.get("seed", 0))
        doms = [re.search(r"^domain: (.*)$", d, re.M).group(1) for d in docs]
        m = re.search(r"The request is an? (.*?) task\.", p)
        named = m.group(1) if m else None
        ans = p.split("<ANSWER>:")[-1].strip()
        right += named == doms[0]
        in_ctx += named in doms
        oracle_call += bool(ans) and ans in docs[0]
        consistent += any(
            ans and ans in d and dm == named for d, dm in zip(docs, doms, strict=True)
        )
    print(f"| {k} | {right}/{n} | {oracle_call}/{n} | {in_ctx}/{n} | {consistent}/{n} |")
