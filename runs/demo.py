"""The first part of `make demo`: index the bundled GlimmerDB docs and answer its questions with
the bundled model, citing sources. The RAFT and RoG stories that follow are pipeline files
(`ragtune pipeline configs/demo-raft.yaml`, `configs/demo-rog.yaml`; see the Makefile).

    make demo                                   # sets up .venv, then this and the two pipelines
    python runs/demo.py --out runs/out/demo/glimmerdb
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/out/demo/glimmerdb", help="where the index is written")
    ap.add_argument("--model", default="smollm2-135m", help="model spec for answering")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    from rich.console import Console

    import ragtune
    from ragtune.examples import GLIMMERDB, GLIMMERDB_QUESTIONS

    con = Console()
    t0 = time.time()
    con.rule("RAG 1. index the bundled GlimmerDB corpus (fictional: no model knows it)")
    corpus = os.path.relpath(GLIMMERDB)  # relative, so sources print short
    idx = ragtune.build_index(
        ragtune.IndexConfig(paths=[corpus], out=f"{args.out}/index", chunk_size=128)
    )
    con.print(f"{len(idx.chunks)} chunks, retrievers: {', '.join(idx.methods)}")
    con.rule(f"RAG 2. answer with {args.model}, citing sources")
    with con.status("loading model"):
        lm = ragtune.load_lm(args.model, threads=args.threads)
    rag = ragtune.RAG(idx, lm, k=3, max_tokens=48, stop=["\n\n"])  # one short paragraph
    questions = [json.loads(line) for line in GLIMMERDB_QUESTIONS.read_text().splitlines()]
    found = 0
    for q in questions:
        ans = rag.ask(q["question"])
        hit = q["answer"].lower() in ans.answer.lower()
        found += hit
        con.print(f"[bold]Q:[/] {ans.question}\n[bold]A:[/] {ans.answer}", highlight=False)
        for c in ans.citations:
            how = "" if c.method == "model" else f" ({c.method})"
            con.print(f"   [cyan][{c.n}][/] {c.source}{how}: “{c.quote[:160]}”", highlight=False)
        con.print(
            f"   gold: {q['answer']} ({'in answer' if hit else 'not in answer'}); "
            f"{ans.seconds['generate']:.1f}s\n",
            highlight=False,
        )
    con.rule(
        f"RAG done in {time.time() - t0:.0f}s: gold answer in {found}/{len(questions)} answers"
    )


if __name__ == "__main__":
    main()
