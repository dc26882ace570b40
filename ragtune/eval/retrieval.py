"""Retrieval recall@k against gold rows, and a reader for HotpotQA (IRCoT jsonl) paragraphs.

python -m ragtune.eval.retrieval ../shared/data/raft/hotpotqa/dev_300.jsonl --out runs/out/hotpot
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ragtune.corpus.document import Chunk, stable_id
from ragtune.errors import DataError


def recall_at_k(ids: np.ndarray, gold: Sequence[set[int]], ks: Sequence[int]) -> dict[int, float]:
    """Mean over queries of |gold ∩ top-k| / |gold|. ids: (n_queries, max(ks)) rows, best first."""
    out = {}
    for k in ks:
        per = [
            len(g & set(row[:k].tolist())) / len(g) for row, g in zip(ids, gold, strict=True) if g
        ]
        out[k] = float(np.mean(per)) if per else 0.0
    return out


def hotpot_paragraphs(path: str | Path) -> tuple[list[Chunk], list[str], list[set[int]]]:
    """Every distinct paragraph (title + text) as a chunk; questions; gold rows per question."""
    chunks: list[Chunk] = []
    row_of: dict[str, int] = {}
    questions, gold = [], []
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                ctxs, q = rec["contexts"], rec["question_text"]
            except (json.JSONDecodeError, KeyError) as e:
                raise DataError(
                    f"not a HotpotQA IRCoT record ({e})", path=str(path), line=ln
                ) from None
            g = set()
            for c in ctxs:
                text = f"{c['title']}\n{c['paragraph_text']}"
                key = stable_id(text)
                if key not in row_of:
                    row_of[key] = len(chunks)
                    chunks.append(Chunk(key, key, text, {"source": str(path), "title": c["title"]}))
                if c.get("is_supporting"):
                    g.add(row_of[key])
            questions.append(q)
            gold.append(g)
    return chunks, questions, gold


def main() -> None:
    ap = argparse.ArgumentParser(description="recall@k of BM25, dense and hybrid on HotpotQA")
    ap.add_argument("data", help="dev_300.jsonl (IRCoT format)")
    ap.add_argument("--out", default="runs/out/hotpot", help="index directory")
    ap.add_argument("--ks", default="2,5,10")
    args = ap.parse_args()
    from ragtune.retrieval import Index

    ks = [int(k) for k in args.ks.split(",")]
    chunks, qs, gold = hotpot_paragraphs(args.data)
    idx = Index.build(chunks, args.out)
    print(f"{len(qs)} questions, {len(chunks)} distinct paragraphs")
    print("| method | " + " | ".join(f"recall@{k}" for k in ks) + " |")
    print("|---|" + "---|" * len(ks))
    for m in ("bm25", "dense", "hybrid"):
        r = recall_at_k(idx.search(qs, max(ks), m).ids, gold, ks)
        print(f"| {m} | " + " | ".join(f"{r[k]:.3f}" for k in ks) + " |")


if __name__ == "__main__":
    main()
