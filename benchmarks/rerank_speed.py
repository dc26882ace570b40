"""Reranking latency (cross-encoder vs the generator as an LM reranker) and embedder fine-tuning
throughput (pairs/s), on a RAFT directory.

    python benchmarks/rerank_speed.py --data runs/out/r19/gorilla --cross runs/out/r19/gorilla-ce
    python benchmarks/rerank_speed.py --data DIR --queries 10 --candidates 20 --train-pairs 256

Latency: for `--queries` test questions, the bundled embedder's top `--candidates` documents of
the directory's pool are reranked by (a) the cross-encoder in `--cross` (default: one made from
the bundled MiniLM's weights with an untrained head: the same cost) and (b) `LMReranker` on the
bundled SmolLM2-135M, its one-forward-per-batch path, and (c) the same through `LM.score` (two
passes per document), per query, after one warm-up query. Throughput: `train_retriever` on the
first `--train-pairs` training questions, one epoch, batch 32, one hard negative: pairs/s of the
training loop (mining and the valid evaluation are timed apart by the job and left out).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="A RAFT output directory")
    ap.add_argument("--cross", default=None, help="A cross-encoder directory")
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--train-pairs", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args()

    import numpy as np
    import torch

    from ragtune.llm.spec import load_lm
    from ragtune.retrieval.dense import Embedder
    from ragtune.retrieval.rerank import CrossReranker, LMReranker, load_cross_encoder
    from ragtune.retrieval.train import RetrieverTrainConfig, read_pairs, train_retriever

    torch.set_num_threads(args.threads)
    data = read_pairs(args.data)
    rows = (data.test or data.valid or data.train)[: args.queries + 1]
    emb = Embedder()
    pv = emb.encode(data.pool)
    qv = emb.encode([r["question"] for r in rows])
    top = np.argsort(-(qv @ pv.T), axis=1)[:, : args.candidates]
    cases = [(r["question"], [data.pool[i] for i in ids]) for r, ids in zip(rows, top, strict=True)]

    tmp = tempfile.mkdtemp(prefix="rerank-bench-")
    cross_dir = args.cross
    if cross_dir is None:
        from ragtune.llm.bundled import minilm_dir

        cross_dir = f"{tmp}/ce"
        load_cross_encoder(str(minilm_dir()), num_labels=1).save(cross_dir)
    lm = load_lm("smollm2-135m", threads=args.threads)
    fast = LMReranker(lm)
    slow = LMReranker(lm)
    slow._ids = None  # LM.score: one pass per answer and document
    rerankers = {
        "cross-encoder (MiniLM-L6)": CrossReranker(cross_dir),
        "LM reranker, SmolLM2-135M (one pass per 8 documents)": fast,
        "LM reranker, SmolLM2-135M via LM.score (2 passes per document)": slow,
    }
    for rr in rerankers.values():
        rr.scores(*cases[0])  # warm-up
    times: dict[str, list[float]] = {name: [] for name in rerankers}
    for q, docs in cases[1:]:  # interleaved: every reranker meets the same machine load
        for name, rr in rerankers.items():
            t0 = time.perf_counter()
            rr.scores(q, docs)
            times[name].append(time.perf_counter() - t0)
    ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
    base = ms["cross-encoder (MiniLM-L6)"]
    print(
        f"reranking {args.candidates} candidates, median of {len(cases) - 1} queries, "
        f"{args.threads} threads, load average {os.getloadavg()[0]:.1f}"
    )
    print("| reranker | ms / query | × cross-encoder |")
    print("|---|---|---|")
    for name, v in ms.items():
        print(f"| {name} | {v:.0f} | {v / base:.1f} |")

    if args.skip_train:
        return
    s = train_retriever(
        RetrieverTrainConfig(
            data=args.data,
            out=f"{tmp}/emb",
            epochs=1,
            batch_size=32,
            negatives=1,
            max_pairs=args.train_pairs,
            max_length=128,
            threads=args.threads,
        )
    )
    print(
        f"\nembedder fine-tuning (load average {os.getloadavg()[0]:.1f}): {s['pairs']} pairs (+1 hard negative each), {s['steps']} steps, "
        f"{s['train_seconds']:.1f} s training ({s['mining_seconds']:.1f} s mining): "
        f"{s['pairs_per_s']:.1f} pairs/s"
    )


if __name__ == "__main__":
    main()
