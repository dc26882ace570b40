"""Index building at scale: wall time, peak RSS and query throughput at 100k and 1M passages.

    python benchmarks/index_scale.py                         # 100k and 1M passages, BM25 + dense
    python benchmarks/index_scale.py --sizes 20000           # quick (seconds)
    python benchmarks/index_scale.py --minilm 10000          # also the bundled MiniLM, 10k passages
    python benchmarks/index_scale.py --src /tmp/old-ragtune  # another checkout's ragtune (before/after)

Passages are short generated sentences: 8-14 words drawn Zipf-like from the ~19k lowercase
English words of the bundled tokenizer's vocabulary (so they tokenize like text, ~1 token a
word), written as JSONL shards of 50,000 and indexed by `ragtune.build_index` as a user would
(`--text-field text`, token chunking with the bundled tokenizer). Each build and each query run
is its own process, so its peak RSS (`resource.getrusage(...).ru_maxrss`) is its own.
Queries: 4 rare words (Zipf rank > 1,000) of a random passage; BM25 answers 1,000 of them,
dense 200 (the query embedding included). `--threads` is torch's thread count in each process
(1 by default: on 2 shared cores more threads mostly wait for each other).

Dense rows embed with a tiny random-initialised sentence-transformers model (1 BERT layer,
hidden 64, projected to 384 dimensions, normalised), built on the fly: its vectors are
MiniLM-sized, so storage and memory are those of a real index, but 1M passages embed in
minutes on 2 cores instead of hours. It measures the pipeline, not the embedder; `--minilm N`
adds a row with the bundled all-MiniLM-L6-v2 for the real embedding rate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARD = 50_000


def lexicon() -> np.ndarray:
    """Lowercase words of 4-12 letters that the bundled tokenizer has as one token (with the
    leading space), in a fixed shuffled order: rank i is the i-th most frequent."""
    import re

    from ragtune.llm.spec import load_tokenizer

    vocab = load_tokenizer("smollm2-135m").get_vocab()
    words = sorted(
        w[1:] for w in vocab if w[:1] == "\u0120" and re.fullmatch(r"[a-z]{4,12}", w[1:])
    )
    return np.random.default_rng(12345).permutation(np.array(words))


def write_corpus(d: Path, n: int, seed: int = 0) -> None:
    """n passages in JSONL shards under d; deterministic in (n, seed)."""
    rng = np.random.default_rng(seed)
    lex = lexicon()
    vocab = len(lex)
    p = 1.0 / np.arange(1, vocab + 1) ** 1.05  # Zipf-like: a few common words, most rare
    p /= p.sum()
    d.mkdir(parents=True, exist_ok=True)
    for s in range(0, n, SHARD):
        m = min(SHARD, n - s)
        ids = rng.choice(vocab, size=(m, 14), p=p)
        lens = rng.integers(8, 15, m)
        with open(d / f"part-{s // SHARD:04d}.jsonl", "w", encoding="utf-8") as f:
            for j in range(m):
                words = lex[ids[j, : lens[j]]]
                text = words[0].capitalize() + " " + " ".join(words[1:]) + "."
                f.write(json.dumps({"id": s + j, "text": text}) + "\n")


def queries(d: Path, n: int, k: int, seed: int = 1) -> list[str]:
    """k queries of 4 rare words, each from one random passage of the corpus under d."""
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(n, size=k, replace=False).tolist())
    lex = {w: i for i, w in enumerate(lexicon())}
    out, row = [], 0
    want = iter(picks)
    nxt = next(want, None)
    for shard in sorted(d.glob("part-*.jsonl")):
        with open(shard, encoding="utf-8") as f:
            for line in f:
                if row == nxt:
                    words = json.loads(line)["text"].lower().rstrip(".").split()
                    rare = [w for w in words if lex.get(w, 0) > 1000] or words
                    out.append(" ".join(rng.choice(rare, min(4, len(rare)), replace=False)))
                    nxt = next(want, None)
                row += 1
    rng.shuffle(out)
    return out


def tiny_embedder(path: Path) -> Path:
    """A random-initialised 1-layer BERT (hidden 64) + mean pooling + 64->384 + normalise, with
    the bundled MiniLM's tokenizer: MiniLM-sized vectors at a fraction of the compute."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from ragtune.llm.bundled import minilm_dir

    if (path / "modules.json").exists():
        return path
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(minilm_dir())
    body = path / "body"
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
    )
    BertModel(cfg).save_pretrained(body)
    tok.save_pretrained(body)
    word = models.Transformer(str(body), max_seq_length=128)
    pool = models.Pooling(64, pooling_mode="mean")
    proj = models.Dense(64, 384, activation_function=torch.nn.Identity())
    SentenceTransformer(modules=[word, pool, proj, models.Normalize()]).save(str(path))
    return path


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _threads(a) -> None:
    import torch

    torch.set_num_threads(a.threads)


def worker_build(a) -> dict:
    import ragtune

    _threads(a)

    t = time.perf_counter()
    idx = ragtune.build_index(
        ragtune.IndexConfig(
            paths=[a.corpus],
            out=a.out,
            text_field="text",
            methods=a.methods.split(","),
            embedder=a.embedder or None,
        )
    )
    return {
        "seconds": time.perf_counter() - t,
        "rss_mb": _rss_mb(),
        "chunks": len(idx.chunks),
        "index_mb": sum(p.stat().st_size for p in Path(a.out).rglob("*") if p.is_file()) / 2**20,
    }


def worker_query(a) -> dict:
    from ragtune.retrieval.index import Index

    _threads(a)

    qs = json.loads(Path(a.qfile).read_text())
    t = time.perf_counter()
    idx = Index.load(a.out)
    out = {"load_s": time.perf_counter() - t}
    methods = idx.params["methods"]
    if "bm25" in methods:
        idx.search(qs[:10], 10, "bm25")  # warm up (opens the searcher)
        t = time.perf_counter()
        res = idx.search(qs, 10, "bm25")
        out["bm25_qps"] = len(qs) / (time.perf_counter() - t)
        out["bm25_hit"] = float((res.ids[:, 0] >= 0).mean())
        _ = [idx.chunks[int(i)].text for i in res.ids[:50, 0] if i >= 0]  # rows map to chunks
    if "dense" in methods:
        dq = qs[:200]
        idx.search(dq[:5], 10, "dense")  # loads the embedder and the vectors
        t = time.perf_counter()
        idx.search(dq, 10, "dense")
        out["dense_qps"] = len(dq) / (time.perf_counter() - t)
    out["rss_mb"] = _rss_mb()
    return out


def run_worker(mode: str, src: str | None, **kw) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    args = [sys.executable, __file__, "--worker", mode]
    for k, v in kw.items():
        args += [f"--{k}", str(v)]
    res = subprocess.run(args, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.stderr.write(res.stderr[-4000:])
        raise SystemExit(f"{mode} worker failed")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000", help="BM25-only builds")
    ap.add_argument("--dense-sizes", default="100000,1000000", help="BM25 + tiny-embedder builds")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--minilm", type=int, default=0, help="also index N passages with MiniLM")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--src", default=None, help="a ragtune checkout to measure instead")
    ap.add_argument("--work", default=None, help="work directory (default: a temporary one)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--corpus", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--methods", default="bm25,dense", help=argparse.SUPPRESS)
    ap.add_argument("--embedder", default="", help=argparse.SUPPRESS)
    ap.add_argument("--qfile", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker_build(a) if a.worker == "build" else worker_query(a)))
        return

    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory(dir=a.work) as d:
        d = Path(d)
        emb = tiny_embedder(d / "tiny-embedder")
        sizes = sorted({int(x) for x in f"{a.sizes},{a.dense_sizes}".split(",") if x})
        plan = []
        for n in sizes:
            if str(n) in a.sizes.split(","):
                plan.append((n, "bm25", ""))
            if str(n) in a.dense_sizes.split(","):
                plan.append((n, "bm25,dense", str(emb)))
        if a.minilm:
            plan.append((a.minilm, "bm25,dense", "minilm"))
        rows = []
        for n, methods, embedder in plan:
            corpus = d / f"corpus-{n}"
            if not corpus.exists():
                t = time.perf_counter()
                write_corpus(corpus, n)
                (d / f"q-{n}.json").write_text(json.dumps(queries(corpus, n, a.queries)))
                print(f"{n:,} passages written in {time.perf_counter() - t:.0f}s", flush=True)
            out = d / "index"
            b = run_worker(
                "build",
                a.src,
                threads=a.threads,
                corpus=corpus,
                out=out,
                methods=methods,
                embedder="" if embedder == "minilm" else embedder,
            )
            q = run_worker("query", a.src, threads=a.threads, out=out, qfile=d / f"q-{n}.json")
            name = {"": "BM25 only", "minilm": "BM25 + dense (MiniLM)"}.get(
                embedder, "BM25 + dense (tiny embedder)"
            )
            row = (n, name, b, q)
            rows.append(row)
            print(json.dumps({"passages": n, "methods": name, **b, **q}), flush=True)
            subprocess.run(["rm", "-rf", str(out)], check=True)

    load = os.getloadavg()
    table = Table(title=f"index scale (load average before the table: {load[0]:.2f})")
    for c in (
        "passages",
        "index",
        "build s",
        "build peak RSS MiB",
        "index MiB",
        "load s",
        "BM25 q/s",
        "dense q/s",
        "query peak RSS MiB",
    ):
        table.add_column(c)
    for n, name, b, q in rows:
        table.add_row(
            f"{n:,}",
            name,
            f"{b['seconds']:.1f}",
            f"{b['rss_mb']:,.0f}",
            f"{b['index_mb']:,.0f}",
            f"{q['load_s']:.2f}",
            f"{q.get('bm25_qps', 0):,.0f}",
            f"{q['dense_qps']:,.0f}" if "dense_qps" in q else "",
            f"{q['rss_mb']:,.0f}",
        )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
