"""End to end on the bundled example, offline: index GlimmerDB, answer with sources, build RAFT
data, then the RAFT story (runs/raft_story.py): DSF and RAFT adapters and the five-way comparison,
then the RoG story (runs/rog_story.py): a film-catalogue KG, a planner/reasoner adapter, answers
with their reasoning paths.

make demo                      # sets up .venv, then runs this
python runs/demo.py --out runs/out/demo
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/out/demo", help="where the index is written")
    ap.add_argument("--model", default="smollm2-135m", help="model spec for answering")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--skip-story", action="store_true", help="stop before the RAFT and RoG stories"
    )
    args = ap.parse_args()

    from rich.console import Console

    from ragtune.cli.commands import print_answer, run_index
    from ragtune.corpus.build import IndexConfig
    from ragtune.examples import GLIMMERDB, GLIMMERDB_QUESTIONS
    from ragtune.llm import load_lm
    from ragtune.rag import RAG
    from ragtune.train.data import read_split

    con = Console()
    t0 = time.time()
    con.rule("1. index the bundled GlimmerDB corpus (fictional: no model knows it)")
    corpus = os.path.relpath(GLIMMERDB)  # relative, so sources print short
    idx = run_index(IndexConfig(paths=[corpus], out=f"{args.out}/index", chunk_size=128))
    con.rule(f"2. answer with {args.model}, citing sources")
    kw = {} if args.model.startswith("openai:") else {"threads": args.threads}
    with con.status("loading model"):
        lm = load_lm(args.model, **kw)
    rag = RAG(idx, lm, k=3, max_tokens=48, stop=["\n\n"])  # one short paragraph
    questions = [json.loads(line) for line in GLIMMERDB_QUESTIONS.read_text().splitlines()]
    found = 0
    for q in questions:
        ans = rag.ask(q["question"])
        print_answer(ans)
        hit = q["answer"].lower() in ans.answer.lower()
        found += hit
        con.print(
            f"   gold: {q['answer']}  ({'in answer' if hit else 'not in answer'}); "
            f"{ans.seconds['generate']:.1f}s\n",
            highlight=False,
        )
    con.rule("3. build RAFT training data from the API records (offline teacher, no LLM)")
    from ragtune.cli.raft import RaftBuildConfig, run_build

    m = run_build(
        RaftBuildConfig(
            paths=[os.path.join(corpus, "api.jsonl")],
            out=f"{args.out}/raft",
            distractors=3,
            restart=True,
        )
    )
    ex = read_split(f"{args.out}/raft/raw/train.jsonl")[0]
    con.print(f"[bold]example question:[/] {ex['question']}", highlight=False)
    con.print(
        f"[bold]{len(ex['documents'])} documents[/], oracle at position "
        f"{ex['oracle_index']} (oracle kept in {m['oracle_present']}/{m['examples']} examples)",
        highlight=False,
    )
    con.print(f"[bold]target:[/] {ex['cot_answer']}", highlight=False)
    rag_line = f"RAG: gold answer in {found}/{len(questions)} answers"
    if not args.skip_story:
        import importlib.util

        spec = importlib.util.spec_from_file_location(
            "raft_story", os.path.join(os.path.dirname(__file__), "raft_story.py")
        )
        story = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(story)
        story.main(["--out", f"{args.out}/story", "--threads", str(args.threads)])
        spec = importlib.util.spec_from_file_location(
            "rog_story", os.path.join(os.path.dirname(__file__), "rog_story.py")
        )
        rog_story = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(rog_story)
        rog_story.main(["--out", f"{args.out}/rog", "--threads", str(args.threads)])
    con.rule(f"demo done in {time.time() - t0:.0f}s; {rag_line}")


if __name__ == "__main__":
    main()
