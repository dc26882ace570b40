"""The RAFT story at tiny scale, offline: fictional API docs → RAFT data → DSF and RAFT LoRA
adapters on the bundled SmolLM2-135M → base / base+RAG / DSF / DSF+RAG / RAFT → report.

    python runs/raft_story.py --out runs/out/story            # ~10 min on 2 cores
    python runs/raft_story.py --out runs/out/story --quick    # fewer steps/questions (smoke)
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/out/story")
    ap.add_argument("--apis", type=int, default=48, help="fictional API records to generate")
    ap.add_argument("--epochs", type=float, default=2.0, help="RAFT training epochs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=12, help="test questions")
    ap.add_argument("--sweep", default="0,2,4", help="distractor counts for the robustness sweep")
    ap.add_argument("--sweep-limit", type=int, default=8, help="questions per sweep point")
    ap.add_argument(
        "--quick", action="store_true", help="a smoke run: tiny steps and few questions"
    )
    args = ap.parse_args(argv)

    from rich.console import Console

    from ragtune.cli.evaluate import run_eval
    from ragtune.cli.raft import RaftBuildConfig, run_build
    from ragtune.cli.train import run_train
    from ragtune.eval.compare import EvalConfig
    from ragtune.examples.fictional import write_fictional_api
    from ragtune.train.trainer import TrainConfig

    con = Console()
    t0 = time.time()
    out = args.out
    con.rule("RAFT story 1/4: generate the docs of a fictional API library (unknown to any model)")
    api = write_fictional_api(f"{out}/glimmer_api.jsonl", n=args.apis)
    con.rule("RAFT story 2/4: build RAFT data (offline teacher; oracle + 3 distractors, P = 0.8)")
    run_build(
        RaftBuildConfig(
            paths=[str(api)],
            out=f"{out}/raft",
            questions=2,
            distractors=3,
            test_fraction=0.25,
            valid_fraction=0.1,
            restart=True,
        )
    )
    steps = {"max_steps": 2} if args.quick else {}
    common = dict(threads=args.threads, bf16=True, save_every=20, lr=3e-4, batch_tokens=2048)
    con.rule("RAFT story 3/4: LoRA-train DSF (question -> call, no documents) and RAFT adapters")
    run_train(
        TrainConfig(data=f"{out}/raft", out=f"{out}/dsf", view="dsf", epochs=3, **common, **steps)
    )
    run_train(
        TrainConfig(
            data=f"{out}/raft",
            out=f"{out}/raft-lora",
            view="chat",
            epochs=args.epochs,
            **common,
            **steps,
        )
    )
    con.rule("RAFT story 4/4: evaluate the five configurations and the distractor sweep")
    limit = 4 if args.quick else args.limit
    res = run_eval(
        EvalConfig(
            data=f"{out}/raft",
            out=f"{out}/eval",
            dsf_adapter=f"{out}/dsf/adapter",
            raft_adapter=f"{out}/raft-lora/adapter",
            k=4,
            sweep=[int(k) for k in args.sweep.split(",")],
            limit=limit,
            sweep_limit=min(limit, args.sweep_limit),
            max_tokens=96,
            threads=args.threads,
        )
    )
    con.rule(f"RAFT story done in {time.time() - t0:.0f}s")
    return res


if __name__ == "__main__":
    main()
