"""How often an in-prompt ordering puts the oracle first in the Gorilla distractor sweep.

    .venv/bin/python runs/gorilla_first_doc.py [runs/out/v3/gorilla/raft] [--limit 73]

A model that answered from the first document of a reranked prompt would score about this
often (when that document's call is the gold call); so these counts bound what "follow the
reranker" gives at each k. Rebuilds each sweep prompt's documents with `ragtune eval`'s own
`sweep_documents` (seed 0, random distractors from the data's document pool) and orders them
by their rank in a search over the whole pool: BM25, the bundled embedder (what `ragtune eval
--rerank dense` uses), and the index's hybrid search (reciprocal-rank fusion of the two).
Documents a search did not return (BM25 omits unmatched ones) tie, and ties go by the
embedder's order, so a tie never favours the oracle's slot.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

from ragtune.corpus.document import Chunk
from ragtune.eval.compare import _pool, _read, sweep_documents
from ragtune.raft.examples import DistractorPicker
from ragtune.retrieval.index import Index

ap = argparse.ArgumentParser()
ap.add_argument("data", nargs="?", default="runs/out/v3/gorilla/raft")
ap.add_argument("--limit", type=int, default=0, help="first N test questions (0: all)")
args = ap.parse_args()
data = Path(args.data)
rows, pool = _read(data / "raw" / "test.jsonl"), _pool(data)
rows = rows[: args.limit] if args.limit else rows
picker = DistractorPicker(pool, "random")
where = {t: i for i, t in enumerate(pool)}
questions = [r["question"] for r in rows]
METHODS = ("bm25", "dense", "hybrid")
with tempfile.TemporaryDirectory() as d:
    chunks = [Chunk(id=str(i), doc_id=str(i), text=t) for i, t in enumerate(pool)]
    index = Index.build(chunks, Path(d) / "index", methods=("bm25", "dense"))
    # (n_questions, len(pool)) pool ids, best first; -1 pads what a method did not return
    ranked = {m: index.search(questions, len(pool), m).ids for m in METHODS}

print("| k | BM25 | embedder | hybrid (RRF) |")
print("|---|---|---|---|")
for k in (1, 2, 4, 8):
    first = dict.fromkeys(METHODS, 0)
    for j, row in enumerate(rows):
        docs, _ = sweep_documents(picker, row, k, 0)  # the oracle is docs[0]
        ids = [where[t] for t in docs]
        pos = {}
        for m, res in ranked.items():
            at = {int(i): n for n, i in enumerate(res[j]) if i >= 0}
            pos[m] = [at.get(i, len(pool)) for i in ids]
        for m in METHODS:
            # the prompt's documents best first; the embedder breaks ties
            first[m] += int(np.lexsort((pos["dense"], pos[m]))[0] == 0)
    n = len(rows)
    print("| " + " | ".join([str(k)] + [f"{first[m]}/{n}" for m in METHODS]) + " |")
