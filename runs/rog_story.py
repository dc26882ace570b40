"""RoG on a fictional film catalogue, tiny scale: KG -> planning/reasoning data -> LoRA -> answers
with the reasoning paths that explain them (explainable recommendation), then a small scored run.

python runs/rog_story.py --out runs/out/rog            # part of `make demo`, ~4.5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/out/rog")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=45, help="LoRA steps (0: skip training)")
    ap.add_argument("--lr", type=float, default=3e-3, help="LoRA learning rate")
    ap.add_argument("--token-lr", type=float, default=2e-2, help="the path markers' rows' LR")
    ap.add_argument("--eval", type=int, default=12, help="test questions scored per mode")
    ap.add_argument("--modes", default="paths,grounded", help="modes to score (see RoG)")
    args = ap.parse_args(argv)

    from rich.console import Console

    from ragtune.cli.rog import BuildDataConfig, RogTrainConfig, run_build_data, run_rog_train
    from ragtune.examples.catalog import write_catalog
    from ragtune.kg import KG
    from ragtune.llm import load_lm
    from ragtune.rog.evaluate import RogEvalConfig, predict, results_table
    from ragtune.rog.pipeline import RoG

    con = Console()
    t0 = time.time()
    out = args.out
    con.rule("RoG 1. a fictional film catalogue as a knowledge graph")
    kb, qf = write_catalog(f"{out}/catalog")
    kg = KG.from_files([kb], f"{out}/kg")
    con.print(f"{len(kg)} entities, {kg.num_edges} edges, {len(kg.relation_names)} relations")
    con.rule("RoG 2. planning + reasoning training data (shortest relation paths as targets)")
    run_build_data(
        BuildDataConfig(kg=f"{out}/kg", questions=str(qf), out=f"{out}/data", test=0.2, seed=0)
    )
    adapter = None
    if args.steps:
        con.rule(f"RoG 3. LoRA on the bundled model, {args.steps} steps")
        run_rog_train(
            RogTrainConfig(
                data=f"{out}/data",
                out=f"{out}/lora",
                max_steps=args.steps,
                batch_tokens=1024,
                lr=args.lr,
                added_token_lr=args.token_lr,
                threads=args.threads,
                save_every=0,
            )
        )
        adapter = f"{out}/lora/adapter"
    con.rule("RoG 4. ask: answers with their reasoning paths")
    lm = load_lm("smollm2-135m", adapter=adapter, threads=args.threads)
    rog = RoG(kg, lm)
    tests = [json.loads(line) for line in open(f"{out}/data/questions/test.jsonl")]
    shown = [q for q in tests if q["question"].startswith("recommend")][:1] + [
        q for q in tests if not q["question"].startswith("recommend")
    ][:2]
    for q in shown:
        a = rog.ask(q["question"], q["entities"])
        con.print(f"[bold]Q:[/] {q['question']}", highlight=False)
        con.print(f"   plans: {[' → '.join(p['relations']) for p in a.plans]}", highlight=False)
        con.print(f"   answers: {a.answers[:6]}   gold: {q['answers'][:6]}", highlight=False)
        for r in (a.supporting or a.rendered)[:3]:
            con.print(f"   because: {r}", highlight=False)
    con.rule(f"RoG 5. score {args.eval} test questions per mode")
    res = predict(
        RogEvalConfig(
            kg=f"{out}/kg",
            data=f"{out}/data",
            out=f"{out}/eval",
            adapter=adapter,
            limit=args.eval,
            modes=args.modes.split(","),
            threads=args.threads,
        )
    )
    con.print(results_table(res), highlight=False)
    con.rule(f"RoG story done in {time.time() - t0:.0f}s")
    return res


if __name__ == "__main__":
    main()
