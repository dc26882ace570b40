"""RAFT's P ablation: how often should training examples keep the oracle document?

For each P, build RAFT data from the same API records (same questions, same split, only the
share of examples that keep the oracle differs), train a RAFT adapter the same way, and score
it with the same retrieved test context. Writes results.json, results.md and p_ablation.png.

    python runs/p_ablation.py --out runs/out/p-ablation                   # P = 0, 0.4, 0.8, 1.0
    python runs/p_ablation.py --out runs/out/p-ablation --quick           # smoke run
    python runs/p_ablation.py --api ../shared/data/raft/samples/apizoo.json --ps 0,1
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/out/p-ablation")
    ap.add_argument("--api", default=None, help="API records (default: the fictional library)")
    ap.add_argument("--apis", type=int, default=48, help="fictional API records to generate")
    ap.add_argument("--ps", default="0,0.4,0.8,1.0", help="oracle shares to train with")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--limit", type=int, default=12, help="test questions")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="2 steps and 2 questions per P")
    args = ap.parse_args(argv)

    from rich.console import Console

    from ragtune.eval.compare import EvalConfig, _line_plot, evaluate
    from ragtune.examples.fictional import write_fictional_api
    from ragtune.raft.jobs import RaftBuildConfig, build_raft
    from ragtune.train.trainer import TrainConfig, train

    con = Console()
    t0 = time.time()
    out = Path(args.out)
    api = args.api or str(write_fictional_api(out / "api.jsonl", n=args.apis))
    ps = [float(p) for p in args.ps.split(",")]
    results: dict = {"api": api, "ps": ps, "by_p": {}}
    for p in ps:
        tag = f"p{p:g}"
        con.rule(f"P = {p:g}: build RAFT data, train, evaluate")
        build_raft(
            RaftBuildConfig(
                paths=[api],
                out=str(out / tag / "raft"),
                p=p,
                questions=2,
                distractors=3,
                test_fraction=0.25,
                valid_fraction=0.1,
                restart=True,
            )
        )
        train(
            TrainConfig(
                data=str(out / tag / "raft"),
                out=str(out / tag / "lora"),
                epochs=args.epochs,
                lr=3e-4,
                batch_tokens=2048,
                bf16=True,
                threads=args.threads,
                **({"max_steps": 2} if args.quick else {}),
            )
        )
        res = evaluate(
            EvalConfig(
                data=str(out / tag / "raft"),
                out=str(out / tag / "eval"),
                raft_adapter=str(out / tag / "lora" / "adapter"),
                configs=["raft"],
                sweep=[],
                k=4,
                limit=2 if args.quick else args.limit,
                max_tokens=96,
                threads=args.threads,
            )
        )
        results["by_p"][f"{p:g}"] = res["main"]["raft"]
    rows = ["| P (oracle kept) | " + " | ".join(next(iter(results["by_p"].values()))) + " |"]
    rows.append("|---" * (1 + len(next(iter(results["by_p"].values())))) + "|")
    for p, m in results["by_p"].items():
        rows.append(f"| {p} | " + " | ".join(f"{v:.1f}" for v in m.values()) + " |")
    table = "\n".join(rows)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(table + "\n")
    metric = "correct" if "correct" in next(iter(results["by_p"].values())) else None
    if metric:
        xs = [float(p) for p in results["by_p"]]
        ys = [m[metric] for m in results["by_p"].values()]
        _line_plot(out / "p_ablation.png", {"RAFT": (xs, ys)}, "P ablation", "P", metric, "o")
    con.print(table, highlight=False)
    con.rule(f"P ablation done in {time.time() - t0:.0f}s")
    return results


if __name__ == "__main__":
    main()
