"""Retrieval recall@k against gold rows, and a reader for HotpotQA (IRCoT jsonl) paragraphs.

python -m ragtune.eval.retrieval ../shared/data/raft/hotpotqa/dev_300.jsonl --out runs/out/hotpot

`ragtune retriever eval` (`RetrieverEvalConfig`, `evaluate_retrieval`) scores retrievers on a RAFT
directory: the oracles of its test questions among every document of the directory, recall@k and
MRR for BM25, the bundled embedder, hybrid, a tuned embedder and rerankers on top:

    ragtune retriever eval --data out/raft --embedder out/retriever --rerank cross:out/reranker
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.corpus.document import Chunk, stable_id
from ragtune.errors import ConfigError, DataError


def recall_at_k(ids: np.ndarray, gold: Sequence[set[int]], ks: Sequence[int]) -> dict[int, float]:
    """Mean over queries of |gold ∩ top-k| / |gold|. ids: (n_queries, max(ks)) rows, best first."""
    out = {}
    for k in ks:
        per = [
            len(g & set(row[:k].tolist())) / len(g) for row, g in zip(ids, gold, strict=True) if g
        ]
        out[k] = float(np.mean(per)) if per else 0.0
    return out


def mrr_at_k(ids: np.ndarray, gold: Sequence[set[int]], k: int) -> float:
    """Mean over queries of 1 / rank of the first gold row in the top k (0 when none is)."""
    per = []
    for row, g in zip(ids, gold, strict=True):
        if not g:
            continue
        hit = next((j for j, x in enumerate(row[:k].tolist()) if x in g), None)
        per.append(0.0 if hit is None else 1.0 / (hit + 1))
    return float(np.mean(per)) if per else 0.0


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


@dataclass
class RetrieverEvalConfig:
    """Recall@k and MRR of retrievers and rerankers on a RAFT directory's test questions."""

    data: str = field(
        default="",
        metadata={
            "help": "RAFT data directory: its split's questions and oracles; every document of "
            "the directory (all splits) is the corpus searched.",
            "required": True,
        },
    )
    split: str = field(default="test", metadata={"help": "Split whose questions are scored."})
    index: str | None = field(
        default=None,
        metadata={
            "help": "Search this index's chunks instead of the RAFT directory's documents "
            "(gold: chunks whose text is an oracle's)."
        },
    )
    out: str | None = field(
        default=None, metadata={"help": "Write results.json and results.md here."}
    )
    methods: list[str] = field(
        default_factory=lambda: ["bm25", "dense", "hybrid"],
        metadata={"help": "First-stage rows with the bundled embedder: bm25, dense, hybrid."},
    )
    embedder: str | None = field(
        default=None,
        metadata={
            "help": "A tuned sentence-transformers directory (`ragtune retriever train`): adds "
            "its dense and hybrid rows."
        },
    )
    rerank: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Rerankers (dense, cross:DIR, lm), each a row reranking --rerank-over's top "
            "--candidates."
        },
    )
    rerank_over: str = field(
        default="hybrid",
        metadata={
            "help": "First stage the rerankers rerank: bm25, dense or hybrid (with --embedder: "
            "the tuned embedder's)."
        },
    )
    candidates: int = field(default=50, metadata={"help": "Hits each reranker chooses from."})
    ks: list[int] = field(
        default_factory=lambda: [1, 5, 10], metadata={"help": "Cut-offs for recall@k."}
    )
    model: str = field(default="smollm2-135m", metadata={"help": "Model spec for --rerank lm."})
    limit: int | None = field(default=None, metadata={"help": "Score the first N questions."})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads."})


def _key(text: str) -> str:
    """Texts compared up to whitespace (a reader may strip what an indexer kept)."""
    return " ".join(text.split())


def _scores(ids: np.ndarray, gold: list[set[int]], ks: list[int]) -> dict[str, float]:
    r = recall_at_k(ids, gold, ks)
    out = {f"recall@{k}": round(r[k], 4) for k in ks}
    out[f"mrr@{max(ks)}"] = round(mrr_at_k(ids, gold, max(ks)), 4)
    return out


def evaluate_retrieval(
    cfg: RetrieverEvalConfig, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Score every row `cfg` asks for; returns {"rows": {label: metrics}, ...} (and writes
    results.json / results.md under `cfg.out`). `progress(label)` before each row."""
    from ragtune.retrieval.index import METHODS, Index
    from ragtune.retrieval.reembed import ReembedConfig, reembed_index
    from ragtune.retrieval.rerank import load_reranker, parse_spec
    from ragtune.retrieval.train import read_pairs

    bad = [m for m in [*cfg.methods, cfg.rerank_over] if m not in METHODS]
    if bad:
        raise ConfigError(f"--methods/--rerank-over {bad}: use {', '.join(METHODS)}")
    if not cfg.ks or min(cfg.ks) < 1:
        raise ConfigError(f"--ks {cfg.ks}: cut-offs must be >= 1")
    ks = sorted(set(cfg.ks))
    if cfg.candidates < max(ks):
        raise ConfigError(f"--candidates {cfg.candidates} must be >= the largest k ({max(ks)})")
    for spec in cfg.rerank:
        parse_spec(spec)  # a typo fails before any index is built
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    data = read_pairs(cfg.data)
    rows = {"train": data.train, "valid": data.valid, "test": data.test}.get(cfg.split)
    if rows is None:
        raise ConfigError(f"--split {cfg.split!r}: use train, valid or test")
    rows = rows[: cfg.limit or None]
    if not rows:
        raise DataError(f"the {cfg.split} split is empty; nothing to score", path=cfg.data)
    given = Index.load(cfg.index) if cfg.index else None
    texts = [c.text for c in given.chunks] if given else data.pool
    row_of: dict[str, int] = {}
    for i, t in enumerate(texts):
        row_of.setdefault(_key(t), i)
    questions = [r["question"] for r in rows]
    gold = [{row_of[_key(o)] for o in r["oracle"] if _key(o) in row_of} for r in rows]
    missing = sum(_key(o) not in row_of for r in rows for o in r["oracle"])
    if given and missing == sum(len(r["oracle"]) for r in rows):
        raise DataError(
            f"none of the {cfg.split} questions' oracles is a chunk of {cfg.index}; index the "
            "same documents one chunk each (e.g. `ragtune index ... --chunk-mode record`)",
            path=cfg.index,
        )
    depth = max(ks)
    results: dict[str, Any] = {
        "settings": asdict(cfg),
        "questions": len(rows),
        "documents": len(texts),
        # oracles with no chunk of that text (a given index) count as missed
        "oracles_not_indexed": missing,
        "rows": {},
    }
    t_all = time.time()
    with tempfile.TemporaryDirectory(prefix="ragtune-reval-") as tmp:
        if given is None:
            chunks = [Chunk(id=str(i), doc_id=str(i), text=t) for i, t in enumerate(texts)]
            bundled = Index.build(chunks, Path(tmp) / "bundled")
        elif given.params.get("dense", {}).get("embedder", "").startswith("bundled:"):
            bundled = given
        else:  # the bundled rows need the bundled embedder's vectors: a re-embedded copy
            bundled = reembed_index(ReembedConfig(index=cfg.index, out=f"{tmp}/bundled"))
        indexes = {"bundled": bundled}
        if cfg.embedder:
            indexes["tuned"] = reembed_index(
                ReembedConfig(index=str(bundled.path), embedder=cfg.embedder, out=f"{tmp}/tuned")
            )

        def run(label: str, fn: Callable[[], np.ndarray]) -> None:
            if progress:
                progress(label)
            t0 = time.time()
            ids = fn()
            results["rows"][label] = {
                **_scores(ids, gold, ks),
                "seconds_per_query": round((time.time() - t0) / len(rows), 4),
            }

        for m in cfg.methods:
            name = m if m == "bm25" else f"{m} (bundled)"
            run(name, lambda m=m: bundled.search(questions, depth, m).ids)
        if "tuned" in indexes:
            for m in ("dense", "hybrid"):
                run(f"{m} (tuned)", lambda m=m: indexes["tuned"].search(questions, depth, m).ids)
        first = indexes["tuned" if cfg.embedder else "bundled"]
        over = cfg.rerank_over
        if over != "bm25":
            over += " (tuned)" if cfg.embedder else " (bundled)"
        if cfg.rerank:
            cand = first.search(questions, cfg.candidates, cfg.rerank_over).ids
            n = cfg.candidates
            results["candidates_recall"] = {
                "over": over,
                f"recall@{n}": round(recall_at_k(cand, gold, [n])[n], 4),
            }
        lm = None
        for spec in cfg.rerank:
            kind, _ = parse_spec(spec)
            if kind == "lm" and lm is None:
                from ragtune.llm.spec import load_lm

                lm = load_lm(cfg.model, threads=cfg.threads)
            rr = load_reranker(spec, lm=lm, embedder=first.embedder() if kind == "dense" else None)

            def reranked(rr=rr) -> np.ndarray:
                docs = [[texts[i] for i in ids if i >= 0] for ids in cand]
                orders = rr.order_batch(questions, docs)
                out = np.full((len(rows), depth), -1, np.int64)
                for qi, (ids, o) in enumerate(zip(cand, orders, strict=True)):
                    kept = [int(ids[j]) for j in o][:depth]
                    out[qi, : len(kept)] = kept
                return out

            run(f"{over} + {spec if kind != 'cross' else 'cross-encoder'}", reranked)
    results["seconds"] = round(time.time() - t_all, 1)
    if cfg.out:
        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
        (out / "results.md").write_text(retrieval_table(results) + "\n", encoding="utf-8")
    return results


def retrieval_table(results: dict[str, Any]) -> str:
    """The rows of `evaluate_retrieval` as a markdown table."""
    rows = results["rows"]
    cols = [c for c in next(iter(rows.values())) if c != "seconds_per_query"]
    lines = ["| retriever | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for label, m in rows.items():
        lines.append(f"| {label} | " + " | ".join(f"{m[c]:.3f}" for c in cols) + " |")
    return "\n".join(lines)


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
