"""RAG answer latency with the bundled SmolLM2-135M on CPU: p50/p90 over 20 questions.

    python benchmarks/rag_latency.py                  # 20 questions, 3 documents of ~150 tokens
    python benchmarks/rag_latency.py --threads 1

Each question gets 3 retrieved documents of ~150 tokens (GlimmerDB-style synthetic passages, so
the model cannot answer from memory) and a short answer (max 48 tokens, stops at a blank line).
The peer is the same model answering the bare question with no retrieval and no documents:
the ratio is what retrieval + a 3-document prompt cost on top of plain generation.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TOPICS = [
    "lease",
    "shard",
    "snapshot",
    "retention",
    "compaction",
    "vault",
    "ttl",
    "restore",
    "migration",
    "doctor",
]


def passage(i: int) -> str:
    t = TOPICS[i % len(TOPICS)]
    n = 10 + i
    s = (
        f"The {t} setting number {n} of GlimmerDB controls how the {t} subsystem behaves. "
        f"By default the {t} limit is {n * 3} units and it can be changed with glimmer.set_{t}"
        f"(vault, value={n}). When the {t} limit is reached, writes wait until the {t} worker "
        f"has finished. Operators usually raise the {t} limit for large vaults. "
    )
    return s * 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--model", default="smollm2-135m")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from ragtune.corpus.document import Chunk
    from ragtune.llm import load_lm
    from ragtune.rag import RAG
    from ragtune.retrieval import Index

    lm = load_lm(args.model, threads=args.threads)
    chunks = [Chunk(f"c{i}", f"d{i}", passage(i), {"source": f"p{i}.txt"}) for i in range(60)]
    toks = [lm.count_tokens(c.text) for c in chunks]
    with tempfile.TemporaryDirectory() as d:
        idx = Index.build(chunks, f"{d}/idx", methods=("bm25",))
        rag = RAG(idx, lm, k=3, max_tokens=args.max_tokens, stop=["\n\n"])
        qs = [
            f"What is the default {TOPICS[i % 10]} limit of setting {10 + i}?"
            for i in range(args.questions)
        ]
        rag.ask(qs[0])  # warm-up (first call pays one-time costs)
        rag_s, n_prompt, n_gen = [], [], []
        for q in qs:
            t = time.perf_counter()
            a = rag.ask(q)
            rag_s.append(time.perf_counter() - t)
            n_prompt.append(a.usage["prompt_tokens"])
            n_gen.append(a.usage["completion_tokens"])
        bare_s = []
        for q in qs:
            t = time.perf_counter()
            lm.generate(
                [[{"role": "user", "content": q}]], max_tokens=args.max_tokens, stop=["\n\n"]
            )
            bare_s.append(time.perf_counter() - t)

    def pct(xs, p):
        return sorted(xs)[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

    t = Table(
        title=f"{args.questions} questions, 3 documents of ~{statistics.mean(toks):.0f} tokens, "
        f"{args.threads} threads"
    )
    for c in ("", "p50 s", "p90 s", "mean prompt tok", "mean answer tok"):
        t.add_column(c)
    t.add_row(
        "ragtune RAG.ask",
        f"{pct(rag_s, 50):.2f}",
        f"{pct(rag_s, 90):.2f}",
        f"{statistics.mean(n_prompt):.0f}",
        f"{statistics.mean(n_gen):.1f}",
    )
    t.add_row("bare generate (no docs)", f"{pct(bare_s, 50):.2f}", f"{pct(bare_s, 90):.2f}", "", "")
    t.add_row("ratio (RAG / bare)", f"{pct(rag_s, 50) / pct(bare_s, 50):.2f}x", "", "", "")
    Console(width=150).print(t)


if __name__ == "__main__":
    main()
