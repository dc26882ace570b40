"""The RAFT data builder: corpus (or QA data) → teacher → verified CoT → examples → datasets.

    ragtune raft build ragtune/examples/glimmerdb/api.jsonl --out out/raft          # offline teacher
    ragtune raft build docs/ --out out/raft --teacher openai:gpt-4o-mini@https://api.openai.com/v1
    ragtune raft from-qa hotpotqa dev.jsonl --out out/raft-hotpot

Work is done per unit (a chunk, or a group of QA items) by `--workers` threads; each finished
unit is appended to `OUT/.raft-work/units.jsonl` and fsynced, so a killed run, re-run with the
same command, resumes where it stopped: no unit is lost or written twice. Randomness is seeded
per item from (--seed, item id), so results do not depend on which worker finished first.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError, DataError
from ragtune.raft.examples import (
    DistractorPicker,
    TooFewDistractors,
    assemble,
    distractor_guards,
    split_of,
)
from ragtune.raft.types import QAItem, RaftExample
from ragtune.raft.verify import answer_agrees, check, final_answer, quotes
from ragtune.store import atomic_write as _atomic_write
from ragtune.store import read_log, staged_dir

FORMATS = ("chat", "completion", "raw")
WORK = ".raft-work"


@dataclass
class RaftConfig:
    """Build RAFT training data (shared by `raft build` and `raft from-qa`)."""

    out: str = field(default="", metadata={"help": "Output directory.", "required": True})
    teacher: str = field(
        default="offline",
        metadata={
            "help": "'offline' (records/templates, no LLM) or a model spec: smollm2-135m, "
            "a model dir, openai:MODEL@URL; with --engine ray also vllm:MODEL (Ray Data's "
            "vLLM processor on GPUs: Ray's 'llm' extra)."
        },
    )
    questions: int = field(default=5, metadata={"help": "Questions per chunk (corpus path)."})
    distractors: int = field(default=4, metadata={"help": "Distractor documents per example (k)."})
    p: float = field(default=0.8, metadata={"help": "Share of examples that keep the oracle (P)."})
    distractor_mode: str = field(
        default="random",
        metadata={
            "help": "'random', 'hard' (top BM25 hits for the question) or 'mixed' (half of "
            "each: BM25 hits, then random)."
        },
    )
    doc_order: str = field(
        default="shuffle",
        metadata={
            "help": "Order of each example's documents: 'shuffle' (the paper's: random) or "
            "'dense' (by the bundled MiniLM's similarity to the question, best first, as "
            "`ragtune eval --rerank dense` shows them at test time)."
        },
    )
    refusal_rate: float = field(
        default=0.0, metadata={"help": "When the oracle is absent, share of answers that refuse."}
    )
    no_cot: bool = field(
        default=False, metadata={"help": "Answers without chain of thought (ablation)."}
    )
    allow_unquoted: bool | None = field(
        default=None,
        metadata={
            "help": "Keep teacher answers that quote nothing from the oracle (default: on with "
            "--no-cot, whose target drops the reasoning; off otherwise, as RAFT's CoT cites)."
        },
    )
    format: list[str] = field(
        default_factory=lambda: ["chat", "completion", "raw"],
        metadata={"help": "Output formats: chat, completion, raw (besides the HF dataset)."},
    )
    output_type: str = field(default="jsonl", metadata={"help": "'jsonl' or 'parquet'."})
    system_prompt: str | None = field(
        default=None, metadata={"help": "System message for the chat format (none by default)."}
    )
    completion_stop: str = field(
        default="</s>", metadata={"help": "Stop marker appended to completion targets."}
    )
    valid_fraction: float = field(default=0.1, metadata={"help": "Share of groups in valid."})
    test_fraction: float = field(default=0.1, metadata={"help": "Share of groups in test."})
    seed: int = field(default=0, metadata={"help": "Random seed (results are deterministic)."})
    workers: int = field(default=4, metadata={"help": "Concurrent units (chunks) in flight."})
    engine: str = field(
        default="local",
        metadata={
            "help": "'local' (--workers threads) or 'ray' (Ray Data: --workers units at a "
            "time, on this machine or the cluster at --ray-address; ragtune's 'ray' extra). "
            "Same records, same checkpoint."
        },
    )
    ray_address: str | None = field(
        default=None,
        metadata={
            "help": "--engine ray: the cluster to join ('auto', 'ray://HOST:10001'); default: "
            "a local Ray instance."
        },
    )
    rate_limit: float = field(default=0.0, metadata={"help": "Max teacher requests/s (0: none)."})
    concurrency: int = field(
        default=16,
        metadata={"help": "Max teacher requests in flight (OpenAI-compatible endpoints)."},
    )
    few_shot: bool | None = field(
        default=None,
        metadata={"help": "Add a worked example to the teacher prompts (off by default)."},
    )
    scaffold: bool | None = field(
        default=None,
        metadata={
            "help": "Prefill the CoT's shape (quote, then <ANSWER>:) so small local teachers "
            "follow it (default: on for local models; endpoints can't prefill)."
        },
    )
    max_chunks: int | None = field(default=None, metadata={"help": "Use only the first N chunks."})
    restart: bool = field(default=False, metadata={"help": "Discard a previous run's checkpoint."})
    # corpus path only
    text_field: str | None = field(default=None, metadata={"help": "JSON/JSONL text field."})
    chunk_size: int = field(default=512, metadata={"help": "Chunk size in tokens (prose)."})
    chunk_overlap: int = field(default=0, metadata={"help": "Chunk overlap in tokens."})
    chunk_mode: str = field(
        default="auto",
        metadata={
            "help": "'auto' (records for JSON/JSONL, tokens otherwise), 'tokens' or 'record'."
        },
    )

    def record_settings(self) -> dict[str, Any]:
        """The settings that decide the records (a checkpoint is valid only if these match)."""
        keys = (
            "teacher",
            "questions",
            "distractors",
            "p",
            "distractor_mode",
            "refusal_rate",
            "no_cot",
            "allow_unquoted",
            "seed",
            "few_shot",
            "scaffold",
            "text_field",
            "chunk_size",
            "chunk_overlap",
            "chunk_mode",
            "max_chunks",
        )
        return {k: getattr(self, k) for k in keys}

    def validate(self) -> None:
        if not self.out:
            raise ConfigError("missing --out: the directory to write the dataset to")
        bad = [f for f in self.format if f not in FORMATS]
        if bad:
            raise ConfigError(f"unknown --format {', '.join(bad)}; use any of {', '.join(FORMATS)}")
        if self.doc_order not in ("shuffle", "dense"):
            raise ConfigError(f"--doc-order {self.doc_order!r}: use 'shuffle' or 'dense'")
        if self.output_type not in ("jsonl", "parquet"):
            raise ConfigError(f"--output-type {self.output_type!r}: use 'jsonl' or 'parquet'")
        if not 0.0 <= self.p <= 1.0:
            raise ConfigError(f"-p must be within [0, 1] (got {self.p})")
        if self.distractors < 0 or self.questions < 1:
            raise ConfigError("--distractors must be >= 0 and --questions >= 1")
        if not 0 <= self.valid_fraction + self.test_fraction < 1:
            raise ConfigError("valid_fraction + test_fraction must be in [0, 1)")
        if self.engine not in ("local", "ray"):
            raise ConfigError(f"--engine {self.engine!r}: use 'local' (threads) or 'ray'")
        if self.ray_address and self.engine != "ray":
            raise ConfigError("--ray-address needs --engine ray (the local engine uses threads)")
        from ragtune.raft.ray_engine import check_vllm

        check_vllm(self)  # a vllm: teacher: --engine ray and Ray Data's LLM processor


@dataclass
class Unit:
    """One checkpointed piece of work: a chunk (corpus path) or a group of QA items."""

    key: str
    kind: str  # "general" | "api call"
    chunk: str | None = None  # corpus path: the oracle chunk to ask questions about
    items: list[QAItem] = field(default_factory=list)  # from-QA path


class _RateLimiter:
    def __init__(self, per_s: float) -> None:
        self.interval = 1.0 / per_s if per_s > 0 else 0.0
        self.next = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            t = max(now, self.next)
            self.next = t + self.interval
        if t > now:
            time.sleep(t - now)


class Builder:
    """Runs units through the teacher, verifies, assembles and checkpoints them."""

    def __init__(self, cfg: RaftConfig, units: list[Unit], pool: list[str], source: dict[str, Any]):
        cfg.validate()
        self.cfg, self.units, self.source = cfg, units, source
        self.out = Path(cfg.out)
        self.picker = DistractorPicker(pool, cfg.distractor_mode)
        self._check_pool()  # before any teacher call is paid for
        self.teacher = None
        self.lm = None
        # --engine ray: the teacher lives in the Ray actors (ragtune.raft.ray_engine), whose
        # counters the driver sums here
        self.remote_usage: Counter = Counter()
        self.remote_retries: Counter = Counter()
        if cfg.engine == "ray":
            from ragtune.extras import require

            require("ray", "--engine ray")  # before any work, not after the first unit
        elif cfg.teacher != "offline":
            from ragtune.llm.spec import load_lm
            from ragtune.raft.teacher import LLMTeacher

            self.lm = load_lm(cfg.teacher, concurrency=cfg.concurrency)  # endpoints only
            few = bool(cfg.few_shot)
            scaffold = cfg.scaffold if cfg.scaffold is not None else self.lm.can_prefill
            self.teacher = LLMTeacher(self.lm, few_shot=few, scaffold=scaffold)
        self.rate = _RateLimiter(cfg.rate_limit)

    def _check_pool(self) -> None:
        """Every example must be able to get its distractors: k, or with P < 1 (some oracles
        dropped) k plus one per oracle, in the oracle's place. The corpus path's answers are
        not known yet, so only their API guard counts here (see `run_unit`)."""
        cfg, k = self.cfg, self.cfg.distractors
        for u in self.units:
            for it in u.items or [QAItem(u.key, "", [u.chunk or ""], type=u.kind)]:
                n_or = len(it.oracle)
                need = k + n_or if cfg.p < 1 else k
                guards = distractor_guards(it.type, it.oracle, it.answer)
                have = self.picker.available(it.oracle, need, it.distractors, guards)
                if have >= need:
                    continue
                what = f"the question {it.question!r}" if u.items else f"the chunk {u.key}"
                rules = "distinct, not the oracle or a near-duplicate of it"
                if guards and it.answer:
                    rules += ", not holding the answer"
                if it.type == "api call":
                    rules += ", not another record of its API"
                why = (
                    f"an example whose oracle is dropped (-p {cfg.p} < 1) needs {need} "
                    f"distractors (--distractors {k} plus {n_or} in the oracle's place)"
                    if cfg.p < 1
                    else f"each example needs {need} distractors (--distractors {k})"
                )
                raise DataError(
                    f"{why}, so {need + n_or} distinct documents with the oracle; {what} has "
                    f"{have} usable ({rules}) among the {len(self.picker.pool)} documents of the "
                    "pool: add documents, lower --distractors"
                    + (" or use -p 1 (the oracle always kept)" if cfg.p < 1 and have >= k else "")
                )

    # -- one unit ------------------------------------------------------------------------
    def _verdict(self, it: QAItem, cot: str) -> str | None:
        """None when `cot` may train on `it`, else the drop reason: the format and quote checks,
        then (when the source has a gold answer) whether the CoT's final answer agrees with it."""
        cfg = self.cfg
        allow = cfg.no_cot if cfg.allow_unquoted is None else cfg.allow_unquoted
        why = check(cot, it.oracle, require_quote=not allow)
        if (
            why is None
            and it.answer
            and not answer_agrees(final_answer(cot) or "", it.answer, it.type)
        ):
            why = "answer_mismatch"
        return why

    def _items_for(self, u: Unit, drops: Counter, stats: Counter) -> list[tuple[QAItem, str, str]]:
        """(item, cot, answer) triples that passed verification. The answer is the source's gold
        when it has one (the eval's gold and DSF's target: a teacher's wording must not replace
        it), else the teacher's final answer (the corpus path, where the teacher wrote the
        question)."""
        from ragtune.corpus.document import stable_id
        from ragtune.raft.teacher import RecordTeacher, template_cot

        cfg = self.cfg
        if u.chunk is not None:  # corpus path: questions from the chunk
            if self.teacher is None:
                triples = RecordTeacher().qa(u.chunk, cfg.questions)
                items = [
                    QAItem(stable_id(u.key, q), q, [u.chunk], a, c, None, u.key, u.kind)
                    for q, a, c in triples
                ]
            else:
                self.rate.wait()
                qs = self.teacher.questions_with_focus(u.chunk, cfg.questions, u.kind)
                stats["teacher_calls"] += 1
                if not qs:
                    drops["no_questions"] += 1
                items = [
                    QAItem(stable_id(u.key, q), q, [u.chunk], group=u.key, type=u.kind, focus=f)
                    for q, f in qs
                ]
        else:
            items = u.items
        out: list[tuple[QAItem, str, str]] = []
        todo: list[QAItem] = []
        for it in items:
            if it.cot:
                cot = it.cot
            elif self.teacher is None:
                if not it.answer:
                    drops["no_answer"] += 1
                    continue
                cot = template_cot(it.question, it.answer, it.oracle)
            else:
                todo.append(it)
                continue
            why = self._verdict(it, cot)
            if why:
                drops[why] += 1
                continue
            if not quotes(cot):
                stats["answers_without_quote"] += 1
            out.append((it, cot, it.answer or final_answer(cot) or ""))
        for attempt in (0, 1):  # ask once, then once more for the ones that failed
            if not todo:
                break
            for _ in todo:
                self.rate.wait()
            cots = self.teacher.answers(
                [(it.question, "\n".join(it.oracle), it.answer) for it in todo],
                u.kind,
                attempt,
                focus=[it.focus for it in todo],
            )
            stats["teacher_calls"] += len(todo)
            retry = []
            for it, cot in zip(todo, cots, strict=True):
                why = self._verdict(it, cot)
                if why is None:
                    if not quotes(cot):
                        stats["answers_without_quote"] += 1
                    out.append((it, cot, it.answer or final_answer(cot) or ""))
                elif attempt == 0:
                    stats["retried_answers"] += 1
                    retry.append(it)
                else:
                    drops[why] += 1
            todo = retry
        return out

    def run_unit(self, u: Unit) -> dict[str, Any]:
        drops: Counter = Counter()
        stats: Counter = Counter()
        examples = []
        for it, cot, ans in self._items_for(u, drops, stats):
            try:
                ex = assemble(
                    it,
                    cot,
                    ans,
                    k=self.cfg.distractors,
                    p=self.cfg.p,
                    picker=self.picker,
                    seed=self.cfg.seed,
                    refusal_rate=self.cfg.refusal_rate,
                    no_cot=self.cfg.no_cot,
                )
            except TooFewDistractors:
                # `_check_pool` vouched for every gold known up front; only an answer written
                # here (the corpus path's) can be in so many documents that too few are left.
                if u.chunk is None:
                    raise
                drops["answer_in_too_many_documents"] += 1
                continue
            examples.append(ex.to_dict())
        return {"key": u.key, "examples": examples, "drops": dict(drops), "stats": dict(stats)}

    # -- checkpoint ----------------------------------------------------------------------
    def _work_dir(self) -> Path:
        w = self.out / WORK
        settings = {"settings": self.cfg.record_settings(), "source": self.source}
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        sfile = w / "settings.json"
        if self.cfg.restart and w.exists():
            from ragtune.store import remove_dir

            remove_dir(w)  # never a half-deleted checkpoint that a later run would resume
        if sfile.exists():
            old = json.loads(sfile.read_text())
            if old.get("digest") != digest:
                raise ConfigError(
                    f"{self.out} holds a checkpoint of a run with other settings "
                    f"({WORK}/settings.json); re-run with --restart to discard it, or use another --out"
                )
        else:
            w.mkdir(parents=True, exist_ok=True)
            _atomic_write(sfile, json.dumps({"digest": digest, **settings}, indent=2))
        return w

    def run(self, progress: Callable[[int, int, dict], None] | None = None) -> dict[str, Any]:
        """Process every unit not yet checkpointed, then write the datasets. Returns the manifest."""
        w = self._work_dir()
        upath = w / "units.jsonl"
        done = {r["key"]: r for r in read_log(upath)}
        todo = [u for u in self.units if u.key not in done]
        resumed = len(self.units) - len(todo)
        t0 = time.time()
        if progress:
            progress(resumed, len(self.units), self._usage())
        with open(upath, "a", encoding="utf-8") as f:

            def commit(rec: dict) -> None:  # one finished unit, durable before it counts
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
                done[rec["key"]] = rec
                if progress:
                    progress(len(done), len(self.units), self._usage())

            if self.cfg.engine == "ray":
                from ragtune.raft.ray_engine import run_units

                run_units(self, todo, commit, self.remote_usage, self.remote_retries)
            else:
                self._run_threads(todo, commit)
        return self.finish(done, resumed, time.time() - t0)

    def _run_threads(self, todo: list[Unit], commit: Callable[[dict], None]) -> None:
        with ThreadPoolExecutor(max(1, self.cfg.workers)) as ex:
            pending = set()
            it = iter(todo)
            # Keep at most 2 x workers units in flight, so a huge corpus is not all queued at once.
            for u in it:
                pending.add(ex.submit(self.run_unit, u))
                if len(pending) >= 2 * max(1, self.cfg.workers):
                    break
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    commit(fut.result())  # a teacher error after all retries stops the run here
                    nxt = next(it, None)
                    if nxt is not None:
                        pending.add(ex.submit(self.run_unit, nxt))

    def _usage(self) -> dict[str, int]:
        if self.cfg.engine == "ray":
            return dict(self.remote_usage)
        return self.lm.usage.as_dict() if self.lm is not None else {}

    # -- outputs -------------------------------------------------------------------------
    def finish(self, done: dict[str, dict], resumed: int, seconds: float) -> dict[str, Any]:
        cfg = self.cfg
        drops: Counter = Counter()
        stats: Counter = Counter()
        records: list[dict] = []
        for u in self.units:  # unit order, not completion order: deterministic output
            rec = done[u.key]
            drops.update(rec["drops"])
            stats.update(rec["stats"])
            records.extend(rec["examples"])
        seen: set[str] = set()
        unique = []
        for r in records:  # the same question twice in one chunk is one example
            if r["id"] in seen:
                drops["duplicate_question"] += 1
                continue
            seen.add(r["id"])
            r["split"] = split_of(r["group"], cfg.seed, cfg.valid_fraction, cfg.test_fraction)
            unique.append(r)
        if not unique:
            raise DataError(
                "no examples survived: every question was dropped "
                f"({', '.join(f'{k}: {v}' for k, v in drops.items()) or 'no questions'}); "
                "try another teacher"
            )
        if cfg.doc_order == "dense":
            unique = dense_order(unique)
        splits = {s: [r for r in unique if r["split"] == s] for s in ("train", "valid", "test")}
        write_outputs(self.out, splits, cfg)
        manifest = {
            "settings": asdict(cfg),
            "source": self.source,
            "counts": {s: len(v) for s, v in splits.items()},
            "examples": len(unique),
            "units": len(self.units),
            "units_resumed": resumed,
            "oracle_present": sum(r["oracle_present"] for r in unique),
            "drops": dict(drops),
            "stats": dict(stats),
            "teacher_usage": self._usage(),
            "teacher_retries": (
                dict(self.remote_retries)
                if self.cfg.engine == "ray"
                else dict(getattr(self.lm, "stats", {}) or {})
            ),
            "seconds": round(seconds, 2),
        }
        _atomic_write(
            self.out / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False)
        )
        return manifest


def dense_order(records: list[dict]) -> list[dict]:
    """The records with each one's documents ordered by the bundled embedder's similarity to its
    question, best first; oracle positions and the prompt follow the new order. Applied when the
    datasets are written, so the checkpointed (shuffled) units serve either order."""
    from ragtune.raft.examples import instruction
    from ragtune.retrieval.dense import Embedder, similarity_order

    orders = similarity_order(
        Embedder(), [r["documents"] for r in records], [r["question"] for r in records]
    )
    out = []
    for r, o in zip(records, orders, strict=True):
        docs = [r["documents"][i] for i in o]
        idx = [i for i, d in enumerate(docs) if d in r["oracle"]] if r["oracle_present"] else []
        out.append(
            {
                **r,
                "documents": docs,
                "oracle_index": idx[0] if idx else -1,
                "oracle_indices": idx,
                "instruction": instruction(docs, r["question"]),
            }
        )
    return out


def to_chat(r: dict, system: str | None) -> dict:
    msgs = [{"role": "system", "content": system}] if system else []
    return {
        "messages": msgs
        + [
            {"role": "user", "content": r["instruction"]},
            {"role": "assistant", "content": r["cot_answer"]},
        ]
    }


def to_completion(r: dict, stop: str) -> dict:
    return {"prompt": r["instruction"], "completion": r["cot_answer"] + stop}


def write_outputs(out: Path, splits: dict[str, list[dict]], cfg: RaftConfig) -> None:
    """HF datasets directory (raw fields) + each --format as jsonl/parquet, all atomically."""
    from ragtune.extras import require

    datasets = require("datasets", "writing RAFT data")
    from datasets import Dataset, DatasetDict

    datasets.disable_progress_bars()
    out.mkdir(parents=True, exist_ok=True)
    dd = DatasetDict({s: Dataset.from_list(rows) for s, rows in splits.items() if rows})
    # hf/ is ragtune's own name inside the output directory: no marker to check.
    with staged_dir(out / "hf", marker=None) as tmp:
        dd.save_to_disk(str(tmp))
    for fmt in cfg.format:
        d = out / fmt
        d.mkdir(exist_ok=True)
        for s, rows in splits.items():
            if fmt == "chat":
                rows = [to_chat(r, cfg.system_prompt) for r in rows]
            elif fmt == "completion":
                rows = [to_completion(r, cfg.completion_stop) for r in rows]
            target = d / f"{s}.{cfg.output_type}"
            if cfg.output_type == "jsonl":
                _atomic_write(
                    target, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
                )
            else:
                tmpf = target.with_suffix(".parquet.tmp")
                Dataset.from_list(rows).to_parquet(str(tmpf)) if rows else _empty_parquet(tmpf)
                os.replace(tmpf, target)


def _empty_parquet(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({}), str(path))


# -- the two sources ---------------------------------------------------------------------------
def corpus_units(
    paths: Iterable[str], cfg: RaftConfig, on_skip=None
) -> tuple[list[Unit], list[str], dict]:
    """Chunks of a corpus as units; the pool is every chunk."""
    from ragtune.corpus.chunking import chunk_documents
    from ragtune.corpus.loaders import load_corpus
    from ragtune.raft.teacher import record_fields

    paths = list(paths)
    docs, report = load_corpus(paths, text_field=cfg.text_field, on_skip=on_skip)
    if not docs:
        raise DataError(
            f"the corpus {', '.join(paths)} has no documents ({report.summary()}); "
            "give files with text (txt, md, html, pdf, json, jsonl)"
        )
    record_docs = [d for d in docs if d.metadata.get("format") in ("json", "jsonl")]
    mode = cfg.chunk_mode
    if mode == "auto":
        mode = "record" if len(record_docs) == len(docs) else "tokens"
    tok = None
    if mode == "tokens":
        from ragtune.llm.spec import load_tokenizer

        tok = load_tokenizer(
            "smollm2-135m"
            if cfg.teacher == "offline" or cfg.teacher.startswith("vllm:")
            else cfg.teacher  # an endpoint's tokens are measured with the bundled tokenizer
        )
    chunks = chunk_documents(docs, tok, size=cfg.chunk_size, overlap=cfg.chunk_overlap, mode=mode)
    if cfg.max_chunks:
        chunks = chunks[: cfg.max_chunks]
    units = []
    for c in chunks:
        kind = "api call" if any(k == "api_call" for k, _ in record_fields(c.text)) else "general"
        units.append(Unit(key=c.id, kind=kind, chunk=c.text))
    source = {"paths": paths, "load_report": report.summary(), "chunks": len(chunks)}
    return units, [c.text for c in chunks], source


def qa_units(items: list[QAItem], pool: list[str], cfg: RaftConfig) -> tuple[list[Unit], list[str]]:
    """QA items grouped into units by their group (e.g. one API, one question)."""
    groups: dict[str, list[QAItem]] = {}
    for it in items:
        groups.setdefault(it.group or it.id, []).append(it)
    units = [Unit(key=g, kind=its[0].type, items=its) for g, its in groups.items()]
    if cfg.max_chunks:
        units = units[: cfg.max_chunks]
    if not pool:
        seen = set()
        pool = [o for it in items for o in it.oracle if not (o in seen or seen.add(o))]
    return units, pool


def load_records(out: str | Path, split: str = "train") -> list[RaftExample]:
    """Read back the raw examples of a built dataset (from the HF directory)."""
    from datasets import load_from_disk

    ds = load_from_disk(str(Path(out) / "hf"))[split]
    return [RaftExample(**r) for r in ds]
