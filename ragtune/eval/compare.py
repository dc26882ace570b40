"""The RAFT paper's comparison on one domain: base, base+RAG, DSF, DSF+RAG, RAFT — and the
robustness sweep (oracle + k distractors at test time).

    ragtune eval --data out/raft --dsf-adapter out/dsf/adapter --raft-adapter out/raft-lora/adapter \
        --out out/eval

RAG configurations see the same context: the top-`k` documents retrieved (`--retriever`: BM25 by
default, dense or hybrid) from every document in the dataset (oracles and distractors of all
splits), in the RAFT prompt format (<DOCUMENT> blocks, then the question). The sweep instead
shows the oracle plus k random distractors, shuffled, for each k. `--rerank dense` orders every
prompt's documents by the bundled embedder's similarity to the question, best first (a reranking
step of the RAG system: the documents stay the same, only their order changes); `cross:DIR` and
`lm` order them by a cross-encoder or the base model (ragtune.retrieval.rerank), and with
`--rerank-candidates N` the main table's k are the reranker's best of N retrieved.

Each finished cell (a configuration, or a configuration at one k) is appended to
`out/cells.jsonl`; a rerun with the same settings skips those cells (resume after Ctrl-C or a
kill), and a rerun with other settings into the same --out is refused.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.errors import ConfigError, DataError
from ragtune.eval.metrics import refusal_stats, score
from ragtune.llm.device import device_field, dtype_field
from ragtune.raft.examples import DistractorPicker, instruction, item_rng
from ragtune.store import check_same_run, read_log
from ragtune.train.data import find_split, read_split

CONFIGS = ("base", "base+rag", "dsf", "dsf+rag", "raft")
SWEEP_CONFIGS = ("base+rag", "dsf+rag", "raft")


@dataclass
class EvalConfig:
    """Compare base, base+RAG, DSF, DSF+RAG and RAFT on a RAFT dataset's test split."""

    data: str = field(
        default="",
        metadata={
            "help": "RAFT output directory (uses raw/test.jsonl or raw/test.parquet).",
            "required": True,
        },
    )
    out: str = field(
        default="",
        metadata={
            "help": "Where results.json, results.md, plots and report.html go.",
            "required": True,
        },
    )
    model: str = field(default="smollm2-135m", metadata={"help": "Base model spec."})
    dsf_adapter: str | None = field(
        default=None, metadata={"help": "DSF LoRA adapter (trained with --view dsf)."}
    )
    raft_adapter: str | None = field(default=None, metadata={"help": "RAFT LoRA adapter."})
    split: str = field(default="test", metadata={"help": "Split to evaluate."})
    index: str | None = field(
        default=None,
        metadata={
            "help": "Take the RAG context from this index (`ragtune index`: your chunks, with "
            "--retriever and -k) instead of an index over the dataset's documents: the RAG "
            "system you run is the one scored."
        },
    )
    test_data: str | None = field(
        default=None,
        metadata={
            "help": "Take the test questions (--split of it) from another RAFT build, e.g. "
            "APIBench's eval file built apart from its train file; --data still gives the "
            "adapters' training data and the distractor pool."
        },
    )
    configs: list[str] = field(
        default_factory=lambda: list(CONFIGS), metadata={"help": "Configurations to run."}
    )
    k: int = field(default=5, metadata={"help": "Documents retrieved for the RAG configurations."})
    retriever: str = field(
        default="bm25",
        metadata={
            "help": "How the RAG context is retrieved: bm25, dense (bundled MiniLM) or hybrid."
        },
    )
    rerank: str = field(
        default="none",
        metadata={
            "help": "Order each prompt's documents best first (main table and sweep): none; "
            "dense (the bundled MiniLM's similarity); cross:DIR (a cross-encoder, `ragtune "
            "reranker train`); lm (the base model's p(Yes) that the document answers)."
        },
    )
    rerank_candidates: int | None = field(
        default=None,
        metadata={
            "help": "Main table: retrieve this many, rerank, keep the best k (default: rerank "
            "only the k retrieved)."
        },
    )
    sweep: list[int] = field(
        default_factory=lambda: [0, 1, 2, 4, 8],
        metadata={"help": "Distractor counts for the robustness sweep (empty: none)."},
    )
    sweep_configs: list[str] = field(
        default_factory=lambda: list(SWEEP_CONFIGS),
        metadata={"help": "Configurations in the sweep."},
    )
    oracle_free: list[int] = field(
        default_factory=list,
        metadata={
            "help": "Distractor counts (>= 1) for oracle-free prompts: k distractors, no oracle; "
            "reports how often each sweep configuration refuses and the precision of the "
            "answers it gives (empty: none)."
        },
    )
    limit: int | None = field(
        default=None, metadata={"help": "Evaluate the first N questions only."}
    )
    sweep_limit: int | None = field(
        default=None, metadata={"help": "Questions per sweep point (default: --limit)."}
    )
    max_tokens: int = field(default=128, metadata={"help": "Longest generated answer."})
    batch_size: int = field(default=4, metadata={"help": "Generation batch size."})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads."})
    device: str = device_field()  # the generator's and the reranker's (ragtune.llm.device)
    dtype: str = dtype_field()
    seed: int = field(default=0, metadata={"help": "Seed for the sweep's distractors."})


def _run_settings(cfg: EvalConfig) -> dict[str, Any]:
    """What a cell's predictions depend on (not where they go, nor which cells are asked for)."""
    skip = {"out", "configs", "sweep", "sweep_configs", "oracle_free", "threads"}
    return {k: v for k, v in asdict(cfg).items() if k not in skip}


def raw_rows(data: str | Path, split: str) -> list[dict]:
    """The raw records of `split` of a RAFT output dir, jsonl or parquet (evaluation needs the
    raw format: the question, gold answer, oracle and documents)."""
    p = find_split(Path(data), "raw", split) if Path(data).is_dir() else None
    if p is None:
        raise DataError(
            f"no raw/{split}.jsonl or raw/{split}.parquet under {data}; build the dataset with "
            "`ragtune raft build` (with raw among --format)"
        )
    return read_split(p)


def _pool(data: Path) -> list[str]:
    seen: set[str] = set()
    pool = []
    for s in ("train", "valid", "test"):
        p = find_split(data, "raw", s)
        if p is not None:
            for r in read_split(p):
                for d in r["oracle"] + r["documents"]:
                    if d not in seen:
                        seen.add(d)
                        pool.append(d)
    return pool


class _Models:
    """Loads each backend once: base, base+DSF adapter, base+RAFT adapter."""

    def __init__(self, cfg: EvalConfig) -> None:
        self.cfg = cfg
        self._lms: dict[str, Any] = {}

    def get(self, config: str):
        from ragtune.llm.spec import load_lm

        which = config.split("+")[0]
        adapter = {"base": None, "dsf": self.cfg.dsf_adapter, "raft": self.cfg.raft_adapter}[which]
        if which != "base" and not adapter:
            raise ConfigError(f"configuration {config!r} needs --{which}-adapter")
        if which not in self._lms:
            self._lms[which] = load_lm(
                self.cfg.model,
                adapter=adapter,
                batch_size=self.cfg.batch_size,
                threads=self.cfg.threads,  # None settings keep the backend's default
                device=self.cfg.device,
                dtype=self.cfg.dtype,
            )
        return self._lms[which]


def _run(
    lm, prompts: list[str], max_tokens: int, bs: int, tick: Callable[[int], None] | None
) -> tuple[list[str], int, int]:
    """The answers; how many stopped at max_tokens rather than ending; and how many of those
    were cut before their final answer: the model reasons first (its prompt format's replies end
    in `<ANSWER>:`, a RAFT adapter) and the cut came before the tag, so the answer is lost
    whatever it would have been, unless the text was looping (a repeated phrase, which more
    tokens would not end). An answer-first reply that is cut keeps its answer's start and is
    scored on it."""
    from ragtune.raft.prompts import ANSWER_TAG
    from ragtune.raft.verify import degenerate

    reasons = bool(getattr(getattr(lm, "prompt_format", None), "reasons", False))
    outs, cut, lost = [], 0, 0
    for i in range(0, len(prompts), bs):
        batch = [[{"role": "user", "content": p}] for p in prompts[i : i + bs]]
        done = lm.generate(batch, max_tokens=max_tokens)
        outs += [c.text for c in done]
        for c in done:
            if c.finish_reason == "length":
                cut += 1
                lost += reasons and ANSWER_TAG not in c.text and not degenerate(c.text)
        if tick:
            tick(len(batch))
    return outs, cut, lost


def oracle_free_documents(
    picker: DistractorPicker, row: dict[str, Any], k: int, seed: int
) -> list[str]:
    """k distractors for one test row and no oracle, in prompt order."""
    rng = item_rng(seed, f"oracle-free:{k}:{row['id']}")
    docs = picker.pick(row["question"], row["oracle"], k, rng)
    return [docs[j] for j in rng.permutation(len(docs))]


def sweep_documents(
    picker: DistractorPicker, row: dict[str, Any], k: int, seed: int
) -> tuple[list[str], np.ndarray]:
    """The sweep's documents for one test row at k: (oracle(s) first, then k distractors; the
    order the prompt shows them in). Per row and k, so any analysis can rebuild a prompt."""
    rng = item_rng(seed, f"sweep:{k}:{row['id']}")
    docs = list(row["oracle"]) + (picker.pick(row["question"], row["oracle"], k, rng) if k else [])
    return docs, rng.permutation(len(docs))


def _reranker(
    how: str, device: str = "auto", lm_of: Callable[[], Any] | None = None
) -> Callable[[list[list[str]], list[str]], list[list[str]]] | None:
    """None, or a function that orders each list of documents best first for its question
    (ragtune.retrieval.rerank; `lm_of()` gives the model the lm reranker scores with)."""
    from ragtune.retrieval.rerank import CrossReranker, DenseReranker, LMReranker, parse_spec

    kind, arg = parse_spec(how)
    if kind == "none":
        return None
    if kind == "dense":
        from ragtune.retrieval.dense import Embedder

        rr: Any = DenseReranker(Embedder(device=device))
    elif kind == "cross":
        from ragtune.llm.device import resolve_device

        rr = CrossReranker(arg, device=str(resolve_device(device)))
    else:
        rr = None  # the model loads when the first prompts are reranked

    def order(docs: list[list[str]], questions: list[str]) -> list[list[str]]:
        nonlocal rr
        if rr is None:
            rr = LMReranker(lm_of())
        return [
            [ds[i] for i in o] for ds, o in zip(docs, rr.order_batch(questions, docs), strict=True)
        ]

    return order


def _mean(scores: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for s in scores for k in s})
    return {k: round(100 * float(np.mean([s[k] for s in scores if k in s])), 2) for k in keys}


def headline(m: dict[str, float]) -> float:
    """The accuracy the tables lead with: the mean of per-question `correct` (AST call match for
    calls, label accuracy for yes/no/maybe, exact match otherwise)."""
    return m.get("correct", 0.0)


def evaluate(
    cfg: EvalConfig, tick: Callable[[str, int, int], None] | None = None
) -> dict[str, Any]:
    from ragtune.corpus.document import Chunk
    from ragtune.retrieval.index import METHODS, Index

    if cfg.retriever not in METHODS:
        raise ConfigError(f"--retriever {cfg.retriever!r}: use one of {', '.join(METHODS)}")
    bad = [c for c in cfg.configs if c not in CONFIGS] + [
        c for c in cfg.sweep_configs if c not in CONFIGS
    ]
    if bad:
        raise ConfigError(f"unknown configuration(s) {bad}; choose from {', '.join(CONFIGS)}")
    if any(k < 1 for k in cfg.oracle_free):
        raise ConfigError(
            f"--oracle-free {cfg.oracle_free}: every count must be >= 1 (with no documents at "
            "all, the base and dsf rows of the main table already show it)"
        )
    data, out = Path(cfg.data), Path(cfg.out)
    qdata = Path(cfg.test_data) if cfg.test_data else data
    rows = raw_rows(qdata, cfg.split)[: cfg.limit or None]
    if not rows:
        raise DataError(f"the {cfg.split} split of {qdata} is empty; build with a test share > 0")
    pool = _pool(data)
    if cfg.test_data:  # the test build's documents are distractors too (a pool of both)
        seen = set(pool)
        pool += [d for d in _pool(qdata) if not (d in seen or seen.add(d))]
    models = _Models(cfg)
    rerank = _reranker(cfg.rerank, cfg.device, lambda: models.get("base"))
    if cfg.rerank_candidates is not None and cfg.rerank_candidates < cfg.k:
        raise ConfigError(f"--rerank-candidates {cfg.rerank_candidates} must be >= -k {cfg.k}")
    depth = cfg.rerank_candidates if rerank and cfg.rerank_candidates else cfg.k
    t0 = time.time()
    results: dict[str, Any] = {
        "settings": asdict(cfg),
        "n": len(rows),
        "main": {},
        "sweep": {},
        # per cell: answers that hit --max-tokens (a cut-off answer scores as wrong)
        "cut_at_max_tokens": {},
        # per cell: of those, reasoning replies cut before their <ANSWER>: (surely wrong)
        "lost_at_max_tokens": {},
        # per cell, over the questions whose prompt lacks the oracle (no documents; retrieval
        # missed it; oracle-free prompts): how often the model refuses, and how precise the
        # answers it does give are
        "refusals": {},
        "oracle_free": {},
        "examples": [],
    }

    # retrieved context, identical for every RAG configuration: from the user's own index, or
    # from an index over the dataset's documents (one document, one chunk)
    questions = [r["question"] for r in rows]
    if cfg.index:
        index = Index.load(cfg.index)
        if cfg.retriever not in index.methods:
            raise ConfigError(
                f"--retriever {cfg.retriever!r} is not in {cfg.index} (it has "
                f"{', '.join(index.methods)}); pick one of those or rebuild the index"
            )
        hits = index.search(questions, depth, cfg.retriever)
        contexts = [[index.chunks[i].text for i in ids if i >= 0] for ids in hits.ids]
    else:
        with tempfile.TemporaryDirectory() as d:
            methods = ("bm25", "dense") if cfg.retriever == "hybrid" else (cfg.retriever,)
            chunks = [Chunk(id=str(i), doc_id=str(i), text=t) for i, t in enumerate(pool)]
            index = Index.build(chunks, Path(d) / "index", methods=methods)
            hits = index.search(questions, depth, cfg.retriever)
        contexts = [[pool[i] for i in ids if i >= 0] for ids in hits.ids]
    if rerank:
        contexts = [c[: cfg.k] for c in rerank(contexts, questions)]
    rag_prompts = [instruction(c, r["question"]) for r, c in zip(rows, contexts, strict=True)]
    # the oracle was retrieved when a retrieved text holds it (or, for a user's index whose
    # chunks cut documents differently, when an oracle holds a retrieved chunk)
    retrieved = [
        any(o in t or (cfg.index and t in o) for o in r["oracle"] for t in c)
        for r, c in zip(rows, contexts, strict=True)
    ]
    recall = float(np.mean(retrieved))
    results["retrieval_oracle_recall"] = round(100 * recall, 2)
    total = len(rows) * len(cfg.configs)
    done = [0]

    def step(label):
        def f(n):
            done[0] += n
            if tick:
                tick(label, done[0], total)

        return f

    # finished cells of an interrupted run with the same settings are reused, not regenerated
    out.mkdir(parents=True, exist_ok=True)
    check_same_run(out, _run_settings(cfg), "cells.jsonl")
    log_path = out / "cells.jsonl"
    logged = {r["cell"]: r for r in read_log(log_path)}

    def cell(name: str, lm_of: str, prompts: list[str], label: str) -> list[str]:
        if name in logged and len(logged[name]["preds"]) == len(prompts):
            step(label)(len(prompts))
            if "cut" in logged[name]:  # logs written before the count was kept have none
                results["cut_at_max_tokens"][name] = logged[name]["cut"]
                results["lost_at_max_tokens"][name] = logged[name].get("lost", 0)
            return logged[name]["preds"]
        preds, cut, lost = _run(
            models.get(lm_of), prompts, cfg.max_tokens, cfg.batch_size, step(label)
        )
        with open(log_path, "a", encoding="utf-8") as log:
            line = {"cell": name, "preds": preds, "cut": cut, "lost": lost}
            log.write(json.dumps(line, ensure_ascii=False) + "\n")
        results["cut_at_max_tokens"][name] = cut
        results["lost_at_max_tokens"][name] = lost
        if lost:  # every cut is counted in results.md; these surely scored wrong because of it
            warnings.warn(
                f"{name}: {lost} of {len(preds)} answers stopped at --max-tokens "
                f"{cfg.max_tokens} before the model reached its <ANSWER>:, so they score as "
                "wrong; raise --max-tokens (a RAFT chain of thought quotes a document first)",
                stacklevel=2,
            )
        return preds

    per_example: dict[str, list[str]] = {}
    per_correct: dict[str, list[float]] = {}
    for c in cfg.configs:
        prompts = (
            rag_prompts if c.endswith("+rag") or c == "raft" else [r["question"] for r in rows]
        )
        preds = cell(f"main/{c}", c, prompts, c)
        per_example[c] = preds
        scores = [score(p, r["answer"], r["type"]) for p, r in zip(preds, rows, strict=True)]
        per_correct[c] = [headline(s) for s in scores]
        results["main"][c] = _mean(scores)
        rag = c.endswith("+rag") or c == "raft"
        absent = [i for i in range(len(rows)) if not (rag and retrieved[i])]
        if absent:
            results["refusals"][f"main/{c}"] = refusal_stats(
                [preds[i] for i in absent],
                [rows[i]["answer"] for i in absent],
                [rows[i]["type"] for i in absent],
            )
    for i, r in enumerate(rows):  # every question, so two runs compare question by question
        results["examples"].append(
            {
                "id": r["id"],
                "question": r["question"],
                "gold": r["answer"],
                **{c: per_example[c][i] for c in cfg.configs},
                "correct": {c: per_correct[c][i] for c in cfg.configs},
            }
        )

    # robustness: oracle + k distractors
    srows = rows[: cfg.sweep_limit or len(rows)]
    picker = DistractorPicker(pool, "random")
    total = len(srows) * (len(cfg.sweep) + len(cfg.oracle_free)) * len(cfg.sweep_configs)
    done[0] = 0
    for k in cfg.sweep:
        contexts = []
        for r in srows:
            docs, order = sweep_documents(picker, r, k, cfg.seed)
            contexts.append([docs[j] for j in order])
        if rerank:
            contexts = rerank(contexts, [r["question"] for r in srows])
        prompts = [instruction(c, r["question"]) for r, c in zip(srows, contexts, strict=True)]
        for c in cfg.sweep_configs:
            preds = cell(f"sweep/{c}/k={k}", c, prompts, f"{c} k={k}")
            m = _mean([score(p, r["answer"], r["type"]) for p, r in zip(preds, srows, strict=True)])
            results["sweep"].setdefault(c, {})[str(k)] = m
    for k in cfg.oracle_free:
        contexts = [oracle_free_documents(picker, r, k, cfg.seed) for r in srows]
        if rerank:
            contexts = rerank(contexts, [r["question"] for r in srows])
        prompts = [instruction(c, r["question"]) for r, c in zip(srows, contexts, strict=True)]
        for c in cfg.sweep_configs:
            preds = cell(f"oracle-free/{c}/k={k}", c, prompts, f"{c} k={k}, no oracle")
            stats = refusal_stats(preds, [r["answer"] for r in srows], [r["type"] for r in srows])
            results["oracle_free"].setdefault(c, {})[str(k)] = stats
    results["seconds"] = round(time.time() - t0, 1)
    write_report(results, out, cfg)
    return results


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"  # no answer given: no precision


def _refusal_cells(s: dict[str, Any]) -> str:
    return f"{s['n']} | {_pct(s['refusal_rate'])} | {_pct(s['answered_precision'])}"


def _by_k_table(title: str, by_config: dict[str, dict], cell: Callable[[Any], str]) -> list[str]:
    """A titled markdown table: one row per configuration, one column per k."""
    ks = list(next(iter(by_config.values())).keys())
    return [
        "",
        title,
        "",
        "| configuration | " + " | ".join(f"k={k}" for k in ks) + " |",
        "|---|" + "---|" * len(ks),
        *(
            f"| {c} | " + " | ".join(cell(by_k[k]) for k in ks) + " |"
            for c, by_k in by_config.items()
        ),
    ]


def markdown_table(results: dict[str, Any]) -> str:
    main = results["main"]
    keys = sorted({k for m in main.values() for k in m})
    lines = [
        "| configuration | headline | " + " | ".join(keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    for c, m in main.items():
        lines.append(
            f"| {c} | {headline(m):.2f} | "
            + " | ".join(f"{m.get(k, float('nan')):.2f}" for k in keys)
            + " |"
        )
    if results["sweep"]:
        lines += _by_k_table(
            "Robustness (headline accuracy, oracle + k distractors):",
            results["sweep"],
            lambda m: f"{headline(m):.2f}",
        )
    refusals = results.get("refusals") or {}
    if refusals:
        lines += [
            "",
            "Without the oracle in the prompt (no documents, or retrieval missed it): refusal "
            "rate and precision of the answers given:",
            "",
            "| cell | questions | refused % | precision of answered % |",
            "|---|---|---|---|",
        ]
        lines += [f"| {c} | {_refusal_cells(s)} |" for c, s in refusals.items()]
    if results.get("oracle_free"):
        lines += _by_k_table(
            "Oracle-free prompts (k distractors, no oracle): refused % / precision of answered %:",
            results["oracle_free"],
            lambda s: f"{_pct(s['refusal_rate'])} / {_pct(s['answered_precision'])}",
        )
    lost = results.get("lost_at_max_tokens", {})
    cut = {c: n for c, n in results.get("cut_at_max_tokens", {}).items() if n}
    if cut:
        lines += [
            "",
            "Answers that stopped at --max-tokens (scored on what was written; those cut before "
            "a chain of thought's <ANSWER>: are lost: raise --max-tokens): "
            + ", ".join(
                f"{c} {n}" + (f" ({lost[c]} before <ANSWER>:)" if lost.get(c) else "")
                for c, n in cut.items()
            ),
        ]
    return "\n".join(lines) + "\n"


def _line_plot(
    path: Path,
    series: dict[str, tuple[list, list]],
    title: str,
    xlabel: str,
    ylabel: str,
    marker: str | None = None,
) -> Path:
    """One PNG with a line per series {label: (xs, ys)}."""
    from ragtune.extras import require

    matplotlib = require("matplotlib", "the evaluation's plots")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker=marker, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(results: dict[str, Any], out: Path, cfg: EvalConfig) -> None:
    """results.json, results.md, sweep.png, loss.png and a self-contained report.html."""
    import base64
    import html

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    table = markdown_table(results)
    (out / "results.md").write_text(table)
    images = {}
    if results["sweep"]:
        series = {
            c: ([int(k) for k in by_k], [headline(m) for m in by_k.values()])
            for c, by_k in results["sweep"].items()
        }
        images["Accuracy vs number of distractors"] = _line_plot(
            out / "sweep.png",
            series,
            "Robustness to distractors",
            "distractor documents at test time (k)",
            "accuracy (%)",
            marker="o",
        )
    logs = {
        name: Path(a).parent / "train_log.jsonl"
        for name, a in (("DSF", cfg.dsf_adapter), ("RAFT", cfg.raft_adapter))
        if a and (Path(a).parent / "train_log.jsonl").exists()
    }
    if logs:
        series = {}
        for name, p in logs.items():
            recs = [r for r in map(json.loads, p.read_text().splitlines()) if "loss" in r]
            series[name] = ([r["step"] for r in recs], [r["loss"] for r in recs])
        images["Training loss"] = _line_plot(
            out / "loss.png", series, "Training loss", "step", "training loss (completion tokens)"
        )
    imgs = "".join(
        f"<h2>{html.escape(t)}</h2><img alt='{html.escape(t)}' src='data:image/png;base64,"
        f"{base64.b64encode(p.read_bytes()).decode()}'>"
        for t, p in images.items()
    )
    ex_rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(e.get(c, '')))[:300]}</td>"
            for c in ["question", "gold", *results["main"]]
        )
        + "</tr>"
        for e in results["examples"][:20]
    )
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["question", "gold", *results["main"]])
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>ragtune evaluation</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}pre{{background:#f6f6f6;padding:1em}}
table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}</style>
</head><body><h1>ragtune evaluation</h1>
<p>{results["n"]} questions from {html.escape(cfg.data)} ({html.escape(cfg.split)} split); model {html.escape(cfg.model)};
{cfg.retriever} retrieval put the oracle in the top {cfg.k} for {results["retrieval_oracle_recall"]}% of questions;{" documents ordered by the bundled embedder's similarity to the question;" if cfg.rerank == "dense" else f" documents reranked by {cfg.rerank};" if cfg.rerank != "none" else ""} {results["seconds"]} s.</p>
<pre>{html.escape(table)}</pre>{imgs}<h2>Examples</h2><table><tr>{head}</tr>{ex_rows}</table></body></html>"""
    (out / "report.html").write_text(page, encoding="utf-8")
