"""Retrieval throughput: ragtune BM25 (tantivy) vs rank_bm25, ragtune dense (faiss) vs numpy.

    python benchmarks/retrieval.py                     # 100k passages, 1,000 queries
    python benchmarks/retrieval.py --passages 10000    # quicker

Passages are synthetic (~50 Zipf-distributed pseudo-words each); queries are 4 words drawn from
a random passage. Both BM25s see the same tokens (lowercase, split on non-word characters:
ragtune's index is built with tantivy's "default" tokenizer here, not the stemming default) and
the same k1=1.2, b=0.75. rank_bm25 is slow, so it answers a subset of the queries
(--rank-bm25-queries); throughput is per query either way, and top-10 overlap is measured on that
subset. Dense search uses random unit vectors (384-d, like MiniLM): it times the search, not the
embedder.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np


def synth(n: int, words: int, vocab: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    lex = np.array([f"w{i:05d}{chr(97 + i % 26)}" for i in range(vocab)])
    # Zipf-like frequencies so some words are common and most are rare, as in real text.
    p = 1.0 / np.arange(1, vocab + 1) ** 1.05
    p /= p.sum()
    ids = rng.choice(vocab, size=(n, words), p=p)
    return [" ".join(row) for row in lex[ids]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=1_000)
    ap.add_argument("--rank-bm25-queries", type=int, default=50)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from rank_bm25 import BM25Okapi
    from rich.console import Console
    from rich.table import Table

    from ragtune.retrieval.bm25 import BM25Index
    from ragtune.retrieval.dense import DenseIndex

    con = Console(width=150)
    rng = np.random.default_rng(args.seed + 1)
    passages = synth(args.passages, 50, 30_000, args.seed)
    # Two query mixes: 4 words drawn at random from a passage (most are very common words, as
    # "the" is in English: long posting lists, the hard case for a top-k engine), and 4 of the
    # passage's distinctive words (document frequency < 1%, as a person would type).
    df = Counter(w for p in passages for w in set(p.split()))
    rare_cut = 0.01 * len(passages)
    mixes: dict[str, list[str]] = {"random passage words": [], "distinctive words": []}
    for i in rng.integers(0, len(passages), args.queries):
        w = passages[i].split()
        mixes["random passage words"].append(" ".join(rng.choice(w, 4, replace=False)))
        rare = sorted({x for x in w if df[x] < rare_cut}) or w
        mixes["distinctive words"].append(
            " ".join(rng.choice(rare, min(4, len(rare)), replace=False))
        )
    tok = re.compile(r"\w+")

    rows = []
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        bm = BM25Index.build(passages, Path(d) / "bm25", tokenizer="default")
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        ref = BM25Okapi([tok.findall(p.lower()) for p in passages], k1=1.2, b=0.75)
        ref_build_s = time.perf_counter() - t
        for mix, queries in mixes.items():
            bm.search(queries[:10], 10)  # warm up
            t = time.perf_counter()
            ours = bm.search(queries, 10)
            ours_qps = len(queries) / (time.perf_counter() - t)
            sub = queries[: args.rank_bm25_queries]
            t = time.perf_counter()
            ref_top = [np.argsort(-ref.get_scores(tok.findall(q.lower())))[:10] for q in sub]
            ref_qps = len(sub) / (time.perf_counter() - t)
            overlap = np.mean(
                [len(set(a) & set(b[b >= 0])) / 10 for a, b in zip(ref_top, ours.ids, strict=False)]
            )
            rows.append(
                (
                    f"BM25, {mix}",
                    f"ragtune (tantivy) {ours_qps:,.0f} q/s",
                    f"rank_bm25 {ref_qps:,.2f} q/s",
                    f"{ours_qps / ref_qps:,.0f}x",
                    f"top-10 overlap {overlap:.3f}; build {build_s:.1f}s vs {ref_build_s:.1f}s",
                )
            )
    queries = mixes["random passage words"]

    vec = (
        np.random.default_rng(args.seed + 2)
        .standard_normal((len(passages), args.dim))
        .astype(np.float32)
    )
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    qv = vec[rng.integers(0, len(vec), len(queries))] + 0.1 * rng.standard_normal(
        (len(queries), args.dim)
    ).astype(np.float32)
    qv /= np.linalg.norm(qv, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as d:
        dense = DenseIndex.build(vec, Path(d) / "dense")
        t = time.perf_counter()
        res = dense.search_vectors(qv, 10)
        dense_s = time.perf_counter() - t
    t = time.perf_counter()
    sims = qv @ vec.T  # (q, n)
    top = np.argpartition(-sims, 10, axis=1)[:, :10]
    order = np.take_along_axis(sims, top, 1).argsort(1)[:, ::-1]
    np_top = np.take_along_axis(top, order, 1)
    np_s = time.perf_counter() - t
    agree = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(np_top, res.ids, strict=False)])
    rows.append(
        (
            "dense exact",
            f"ragtune (faiss) {len(qv) / dense_s:,.0f} q/s",
            f"numpy {len(qv) / np_s:,.0f} q/s",
            f"{np_s / dense_s:,.1f}x",
            f"top-10 agreement {agree:.3f}",
        )
    )

    table = Table(title=f"{args.passages:,} passages, {args.queries:,} queries")
    for c in ("task", "ragtune", "peer", "ratio", "notes"):
        table.add_column(c)
    for r in rows:
        table.add_row(*r)
    con.print(table)


if __name__ == "__main__":
    main()
