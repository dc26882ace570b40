"""Retrieval that learns the domain: an embedder and a cross-encoder reranker tuned on the
(question, oracle) pairs of a RAFT data directory.

    ragtune retriever train --data out/raft --out out/retriever        # a sentence-transformers dir
    ragtune reranker train --data out/raft --out out/reranker --miner out/retriever
    ragtune retriever reembed out/index --embedder out/retriever       # the index follows it

In Python, `ragtune.train_retriever(ragtune.RetrieverTrainConfig(data=..., out=...))` returns
the summary (`valid_before`, `valid_after`: recall@k and MRR on the valid split; `pairs_per_s`).

Where the pairs come from: the train split of a RAFT build. For QA data (`raft from-qa`:
HotpotQA, Gorilla, PubMedQA) those are the dataset's real questions; for a plain corpus
(`raft build`) they are the teacher's generated questions, the records the RAFT adapter trains
on, so no second generation pass is needed. The valid split measures, the test split is never
read, and documents that are the oracle of a valid or test question are never negatives
(`--heldout-negatives` allows it), so nothing held out is trained on.

Hard negatives are mined from the RAFT directory's document pool (every oracle and distractor of
every split): the mining embedder (the base, or `--miner`) ranks the pool for each training
question and negatives are sampled from a window of that ranking (`--neg-ranks`, default ranks
10-50 for the embedder: close but rarely a second right answer), skipping the question's
oracles, near-duplicates of them (word-set Jaccard >= `--near-dup`) and documents that hold the
gold answer (or, for API records, another record of the oracle's api_name).

Both trainers are sentence-transformers' own (SentenceTransformerTrainer with
MultipleNegativesRankingLoss: in-batch negatives plus the mined ones, batches without duplicate
texts; CrossEncoderTrainer with BinaryCrossEntropyLoss), scored during training by its
evaluators (InformationRetrievalEvaluator; CrossEncoderRerankingEvaluator) on the valid split.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.errors import ConfigError, DataError

Progress = Callable[[int, int, dict], None]  # (step, total steps, last logged values)
SUMMARY = "ragtune_train.json"  # written inside the model directory, beside the model files


@dataclass
class _PairArgs:
    """What the embedder and the reranker trainers share: data, negatives, optimisation."""

    data: str = field(
        default="",
        metadata={
            "help": "RAFT data directory (`ragtune raft build` or `raft from-qa`): its train "
            "split's questions and oracles are the pairs, its documents the corpus.",
            "required": True,
        },
    )
    out: str = field(default="", metadata={"help": "Model directory to write.", "required": True})
    negatives: int = field(default=1, metadata={"help": "Mined hard negatives per pair."})
    neg_ranks: list[int] = field(
        default_factory=lambda: [10, 50],
        metadata={
            "help": "Window of the mining embedder's ranking (1 = best) hard negatives are "
            "sampled from: LO,HI."
        },
    )
    near_dup: float = field(
        default=0.8,
        metadata={"help": "Skip negatives this similar to an oracle (word-set Jaccard)."},
    )
    heldout_negatives: bool = field(
        default=False,
        metadata={
            "help": "Let the oracles of valid and test questions be negatives (default: no "
            "held-out document is trained on)."
        },
    )
    epochs: float = field(default=1.0, metadata={"help": "Passes over the pairs."})
    batch_size: int = field(default=32, metadata={"help": "Pairs per step."})
    lr: float = field(default=5e-5, metadata={"help": "Peak learning rate."})
    warmup: float = field(default=0.1, metadata={"help": "Share of steps of linear warm-up."})
    max_length: int | None = field(
        default=None, metadata={"help": "Tokens per text (default: the model's own limit)."}
    )
    max_pairs: int | None = field(
        default=None, metadata={"help": "Use the first N training questions only."}
    )
    eval_k: list[int] = field(
        default_factory=lambda: [1, 5, 10],
        metadata={"help": "Cut-offs of the valid split's recall@k."},
    )
    seed: int = field(default=0, metadata={"help": "Seed for negatives, order and init."})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads."})


@dataclass
class RetrieverTrainConfig(_PairArgs):
    """Fine-tune an embedder on a RAFT directory's (question, oracle) pairs."""

    base: str | None = field(
        default=None,
        metadata={
            "help": "sentence-transformers directory to start from (default: bundled MiniLM)."
        },
    )
    loss: str = field(
        default="mnrl",
        metadata={
            "help": "mnrl (MultipleNegativesRankingLoss) or cached (its gradient-cached form: "
            "large --batch-size in the memory of --mini-batch)."
        },
    )
    mini_batch: int = field(default=16, metadata={"help": "cached: texts per forward pass."})


@dataclass
class RerankerTrainConfig(_PairArgs):
    """Train a cross-encoder reranker on a RAFT directory's (question, oracle) pairs."""

    base: str | None = field(
        default=None,
        metadata={
            "help": "Encoder to initialise from: a sentence-transformers or Hugging Face "
            "directory, or a cross-encoder to continue (default: the bundled MiniLM's weights)."
        },
    )
    miner: str | None = field(
        default=None,
        metadata={
            "help": "Embedder whose ranking the negatives (and the valid split's candidates) "
            "come from; the first stage you will rerank, e.g. `ragtune retriever train`'s "
            "output (default: the bundled MiniLM)."
        },
    )
    negatives: int = field(default=7, metadata={"help": "Mined hard negatives per question."})
    neg_ranks: list[int] = field(
        default_factory=lambda: [1, 30],
        metadata={
            "help": "Window of the miner's ranking (1 = best) negatives are sampled from: LO,HI "
            "(a reranker learns on what the first stage returns)."
        },
    )
    lr: float = field(default=1e-4, metadata={"help": "Peak learning rate."})
    candidates: int = field(
        default=30, metadata={"help": "Miner's candidates per valid question to rerank."}
    )


# --------------------------------------------------------------------------------- the data


@dataclass
class PairData:
    """A RAFT directory read for retrieval: rows per split and the document pool."""

    train: list[dict]
    valid: list[dict]
    test: list[dict]
    pool: list[str]  # every distinct oracle and document of every split, in first-seen order

    def heldout(self) -> set[str]:
        """Documents that are the oracle of a valid or test question."""
        return {o for r in self.valid + self.test for o in r["oracle"]}


def read_pairs(data: str | Path) -> PairData:
    """The raw splits of a RAFT output directory (jsonl or parquet) and its document pool."""
    from ragtune.train.data import find_split, read_split

    d = Path(data)
    if not d.is_dir():
        raise DataError(
            "no such RAFT data directory; build one with `ragtune raft build` or "
            "`ragtune raft from-qa`",
            path=str(d),
        )
    splits: dict[str, list[dict]] = {}
    for s in ("train", "valid", "test"):
        p = find_split(d, "raw", s)
        rows = read_split(p) if p is not None else []
        for i, r in enumerate(rows, 1):
            if not isinstance(r.get("question"), str) or not isinstance(r.get("oracle"), list):
                raise DataError(
                    "a RAFT raw record needs 'question' and 'oracle' (a list of texts); rebuild "
                    "the data with raw among --format",
                    path=str(p),
                    line=i,
                )
        splits[s] = rows
    if not splits["train"]:
        raise DataError(
            "no training questions: raw/train.jsonl (or .parquet) is missing or empty; build "
            "the data with `ragtune raft build` / `raft from-qa` (raw among --format)",
            path=str(d),
        )
    seen: set[str] = set()
    pool: list[str] = []
    for s in ("train", "valid", "test"):
        for r in splits[s]:
            for t in list(r["oracle"]) + list(r.get("documents") or []):
                if t not in seen:
                    seen.add(t)
                    pool.append(t)
    return PairData(splits["train"], splits["valid"], splits["test"], pool)


def _check(cfg: _PairArgs) -> tuple[int, int]:
    if not cfg.data or not cfg.out:
        raise ConfigError("--data (a RAFT directory) and --out (the model directory) are needed")
    if len(cfg.neg_ranks) != 2 or not 1 <= cfg.neg_ranks[0] <= cfg.neg_ranks[1]:
        raise ConfigError(
            f"--neg-ranks {','.join(map(str, cfg.neg_ranks))}: give LO,HI with 1 <= LO <= HI "
            "(ranks of the mining embedder, 1 = best), e.g. --neg-ranks 10,50"
        )
    if cfg.negatives < 0:
        raise ConfigError(f"--negatives {cfg.negatives}: must be 0 or more")
    if cfg.batch_size < 2:
        raise ConfigError(
            f"--batch-size {cfg.batch_size}: in-batch negatives need at least 2 pairs a step"
        )
    if cfg.epochs <= 0 or cfg.lr <= 0 or not 0 <= cfg.warmup < 1:
        raise ConfigError("--epochs and --lr must be > 0 and --warmup in [0, 1)")
    if not 0 < cfg.near_dup <= 1:
        raise ConfigError(f"--near-dup {cfg.near_dup}: must be in (0, 1]")
    if not cfg.eval_k or min(cfg.eval_k) < 1:
        raise ConfigError(f"--eval-k {cfg.eval_k}: cut-offs must be >= 1")
    return cfg.neg_ranks[0], cfg.neg_ranks[1]


def _model_dir(path: str | None, flag: str) -> str:
    from ragtune.llm.bundled import minilm_dir

    if path is None:
        return str(minilm_dir())
    if not (Path(path) / "config.json").is_file():
        raise ConfigError(
            f"{flag} {path}: not a model directory (no config.json); give a sentence-transformers "
            "directory, e.g. one `ragtune retriever train` wrote, or leave it unset for the "
            "bundled MiniLM"
        )
    return str(path)


def mine_negatives(
    embedder,
    rows: list[dict],
    pool: list[str],
    n: int,
    ranks: tuple[int, int],
    *,
    near_dup: float = 0.8,
    exclude: set[str] | None = None,
    seed: int = 0,
) -> tuple[list[list[str]], dict[str, int]]:
    """`n` hard negatives per row, from ranks LO..HI (1 = best) of `embedder`'s ranking of `pool`.

    Skipped: the row's oracles, near-duplicates of them, documents holding the gold answer (or
    another record of the oracle's API: `ragtune.raft.examples.distractor_guards`) and `exclude`.
    A window with too few usable documents is topped up from the ranks after it, then before it,
    so every row gets `n` (a DataError when the whole pool has fewer).
    """
    from ragtune.eval.metrics import normalize
    from ragtune.raft.examples import distractor_guards, item_rng, jaccard, words

    stats = {"near_duplicate": 0, "holds_answer": 0, "heldout": 0, "outside_window": 0}
    if n == 0 or not rows:
        return [[] for _ in rows], stats
    exclude = exclude or set()
    lo, hi = ranks
    pw = [words(t) for t in pool]
    norm: list[str | None] = [None] * len(pool)
    pv = embedder.encode(pool)
    qv = embedder.encode([r["question"] for r in rows])
    out: list[list[str]] = []
    block = 256  # question rows per similarity block: memory stays (block, |pool|)
    for b in range(0, len(rows), block):
        sims = qv[b : b + block] @ pv.T
        for j, s in enumerate(sims):
            r = rows[b + j]
            oracles = list(r["oracle"])
            ow = [words(o) for o in oracles]
            guards = distractor_guards(r.get("type", "general"), oracles, r.get("answer"))
            ranked = np.argsort(-s, kind="stable")

            def usable(i: int, oracles=oracles, ow=ow, guards=guards) -> bool:
                t = pool[i]
                if t in oracles:
                    return False
                if t in exclude:
                    stats["heldout"] += 1
                    return False
                if any(jaccard(pw[i], o) >= near_dup for o in ow):
                    stats["near_duplicate"] += 1
                    return False
                if guards:
                    if norm[i] is None:
                        norm[i] = f" {normalize(t)} "
                    if any(f" {g} " in norm[i] for g in guards):
                        stats["holds_answer"] += 1
                        return False
                return True

            window = [int(i) for i in ranked[lo - 1 : hi] if usable(int(i))]
            rng = item_rng(seed, f"negatives:{r.get('id', b + j)}")
            if len(window) >= n:
                picked = [window[i] for i in sorted(rng.choice(len(window), n, replace=False))]
            else:
                rest = [int(i) for i in ranked[hi:]] + [int(i) for i in ranked[: lo - 1][::-1]]
                extra = [i for i in rest if usable(i)][: n - len(window)]
                stats["outside_window"] += len(extra)
                picked = window + extra
                if len(picked) < n:
                    raise DataError(
                        f"only {len(picked)} usable negatives (not an oracle, a near-duplicate of "
                        f"one, a held-out oracle or a document holding the answer) for the "
                        f"question {r['question'][:80]!r}, which needs {n}; lower --negatives "
                        "or add documents to the corpus"
                    )
            out.append([pool[i] for i in picked])
    return out, stats


# ------------------------------------------------------------------------------ the runs


def _valid_ir(data: PairData, eval_k: list[int]) -> tuple[dict, dict, dict] | None:
    """InformationRetrievalEvaluator inputs over the whole pool: queries, corpus, relevant."""
    if not data.valid:
        return None
    row = {t: str(i) for i, t in enumerate(data.pool)}
    queries = {str(i): r["question"] for i, r in enumerate(data.valid)}
    relevant = {str(i): {row[o] for o in r["oracle"]} for i, r in enumerate(data.valid)}
    return queries, {v: k for k, v in row.items()}, relevant


def _short(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    """sentence-transformers' metric names (valid_cosine_recall@5) → recall@5, rounded."""
    out = {}
    for k, v in metrics.items():
        name = k[len(prefix) :] if k.startswith(prefix) else k
        name = name.removeprefix("cosine_")
        out[name] = round(float(v), 4)
    return out


def _callback(progress: Progress | None, total: int, losses: list[float]):
    from transformers import TrainerCallback

    class _Report(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))
            if progress:
                progress(state.global_step, total, dict(logs or {}))

        def on_step_end(self, args, state, control, **kw):
            if progress:
                progress(state.global_step, total, {})

    return _Report()


def quiet_trainer(trainer) -> None:
    """No log dicts on stdout: `progress` reports, the summary keeps the log."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)


def card_widget(model, text: str) -> None:
    """Give the model card its widget example before the trainer is built: otherwise
    sentence-transformers' card callback samples one from the dataset behind a tqdm bar of its
    own ("Computing widget examples") in the middle of ragtune's progress display."""
    card = getattr(model, "model_card_data", None)
    if card is not None and not getattr(card, "widget", None):
        card.widget = [{"text": text}]


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _steps(n_pairs: int, cfg: _PairArgs) -> int:
    return max(1, math.ceil(math.ceil(n_pairs / cfg.batch_size) * cfg.epochs))


def train_retriever(cfg: RetrieverTrainConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Fine-tune `cfg.base` (default: the bundled MiniLM) into `cfg.out`; returns the summary
    (also `OUT/ragtune_train.json`): pairs, steps, seconds, pairs/s, the valid split's recall@k
    and MRR before and after."""
    from ragtune.extras import require

    lo, hi = _check(cfg)
    if cfg.loss not in ("mnrl", "cached"):
        raise ConfigError(f"--loss {cfg.loss!r}: use mnrl or cached")
    require("datasets", "ragtune retriever train")
    require("accelerate", "ragtune retriever train")
    _threads(cfg.threads)
    base = _model_dir(cfg.base, "--base")
    data = read_pairs(cfg.data)
    rows = data.train[: cfg.max_pairs or None]

    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from transformers import set_seed

    from ragtune.retrieval.dense import Embedder
    from ragtune.store import staged_dir

    try:  # sentence-transformers >= 5.4 moved them; the old paths still work before that
        from sentence_transformers.sentence_transformer import losses
        from sentence_transformers.sentence_transformer.evaluation import (
            InformationRetrievalEvaluator,
        )
    except ImportError:
        from sentence_transformers import losses
        from sentence_transformers.evaluation import InformationRetrievalEvaluator

    t0 = time.time()
    miner = Embedder(base)
    negs, mining = mine_negatives(
        miner,
        rows,
        data.pool,
        cfg.negatives,
        (lo, hi),
        near_dup=cfg.near_dup,
        exclude=set() if cfg.heldout_negatives else data.heldout(),
        seed=cfg.seed,
    )
    del miner
    cols: dict[str, list[str]] = {"anchor": [], "positive": []}
    cols.update({f"negative_{j + 1}": [] for j in range(cfg.negatives)})
    for r, ns in zip(rows, negs, strict=True):
        for o in r["oracle"]:  # HotpotQA: two oracles, two pairs sharing the negatives
            cols["anchor"].append(r["question"])
            cols["positive"].append(o)
            for j, t in enumerate(ns):
                cols[f"negative_{j + 1}"].append(t)
    n_pairs = len(cols["anchor"])
    mined_s = time.time() - t0

    set_seed(cfg.seed)
    model = SentenceTransformer(base, device=None, local_files_only=True)
    if cfg.max_length:
        model.max_seq_length = cfg.max_length
    ir = _valid_ir(data, cfg.eval_k)
    evaluator = None
    if ir:
        evaluator = InformationRetrievalEvaluator(
            *ir,
            accuracy_at_k=sorted(set(cfg.eval_k)),
            precision_recall_at_k=sorted(set(cfg.eval_k)),
            mrr_at_k=[max(cfg.eval_k)],
            ndcg_at_k=[max(cfg.eval_k)],
            map_at_k=[max(cfg.eval_k)],
            name="valid",
            write_csv=False,
        )
    before = _short(evaluator(model), "valid_") if evaluator else {}
    if cfg.loss == "mnrl":
        loss = losses.MultipleNegativesRankingLoss(model)
    else:
        loss = losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=cfg.mini_batch)
    total = _steps(n_pairs, cfg)
    logged: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ragtune-retriever-") as work:
        args = SentenceTransformerTrainingArguments(
            output_dir=work,
            num_train_epochs=cfg.epochs,
            per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.lr,
            warmup_steps=int(cfg.warmup * total),
            # a text twice in one batch would be its own in-batch negative (a question with two
            # oracles, an oracle several questions share)
            batch_sampler="no_duplicates",
            eval_strategy="epoch" if evaluator else "no",
            save_strategy="no",
            logging_steps=max(1, min(10, total // 10)),
            report_to="none",
            disable_tqdm=True,
            dataloader_pin_memory=pin_memory(),
            seed=cfg.seed,
        )
        card_widget(model, cols["anchor"][0])
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_dict(cols),
            loss=loss,
            evaluator=evaluator,
            callbacks=[_callback(progress, total, logged)],
        )
        quiet_trainer(trainer)
        t1 = time.time()
        result = trainer.train()
        train_s = time.time() - t1
        history = trainer.state.log_history
    after = _short(evaluator(model), "valid_") if evaluator else {}
    summary = {
        "kind": "embedder",
        "base": base,
        "data": str(cfg.data),
        "questions": len(rows),
        "pairs": n_pairs,
        "negatives_per_pair": cfg.negatives,
        "mining": mining,
        "steps": int(result.global_step),
        "first_loss": logged[0] if logged else None,
        "last_loss": logged[-1] if logged else None,
        "train_loss": round(float(result.training_loss), 4),
        "seconds": round(time.time() - t0, 1),
        "mining_seconds": round(mined_s, 1),
        "train_seconds": round(train_s, 1),
        "pairs_per_s": round(n_pairs * cfg.epochs / train_s, 2) if train_s else None,
        "valid_questions": len(data.valid),
        "valid_before": before,
        "valid_after": after,
        "settings": asdict(cfg),
        "log": history,
    }
    with staged_dir(cfg.out, marker="modules.json", what="sentence-transformers model") as tmp:
        model.save(str(tmp))
        (tmp / SUMMARY).write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return summary


def train_reranker(cfg: RerankerTrainConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Train a cross-encoder (one relevance logit per question and document) into `cfg.out`,
    initialised from `cfg.base` (default: the bundled MiniLM's encoder, a new scoring head);
    returns the summary (also `OUT/ragtune_train.json`) with the valid split's reranking MRR
    and NDCG before and after, and the miner's own order's."""
    from ragtune.extras import require
    from ragtune.retrieval.rerank import load_cross_encoder

    lo, hi = _check(cfg)
    if cfg.negatives < 1:
        raise ConfigError("--negatives must be >= 1: a reranker learns from relevant and not")
    if cfg.candidates < 1:
        raise ConfigError(f"--candidates {cfg.candidates}: must be >= 1")
    require("datasets", "ragtune reranker train")
    require("accelerate", "ragtune reranker train")
    _threads(cfg.threads)
    base = _model_dir(cfg.base, "--base")
    miner_dir = _model_dir(cfg.miner, "--miner")
    data = read_pairs(cfg.data)
    rows = data.train[: cfg.max_pairs or None]
    try:
        from sentence_transformers.cross_encoder import (
            CrossEncoderTrainer,
            CrossEncoderTrainingArguments,
        )
        from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator
        from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    except ImportError:
        raise ConfigError(
            "ragtune reranker train needs sentence-transformers >= 4 (its CrossEncoderTrainer); "
            "pip install -U 'sentence-transformers>=4'"
        ) from None
    import torch
    from datasets import Dataset
    from transformers import set_seed

    from ragtune.retrieval.dense import Embedder
    from ragtune.store import staged_dir

    t0 = time.time()
    miner = Embedder(miner_dir)
    negs, mining = mine_negatives(
        miner,
        rows,
        data.pool,
        cfg.negatives,
        (lo, hi),
        near_dup=cfg.near_dup,
        exclude=set() if cfg.heldout_negatives else data.heldout(),
        seed=cfg.seed,
    )
    samples = []
    if data.valid:  # the miner's top candidates for each valid question, as the reranker sees them
        pv = miner.encode(data.pool)
        qv = miner.encode([r["question"] for r in data.valid])
        top = np.argsort(-(qv @ pv.T), axis=1, kind="stable")[:, : cfg.candidates]
        samples = [
            {
                "query": r["question"],
                "positive": list(r["oracle"]),
                "documents": [data.pool[i] for i in ids],
            }
            for r, ids in zip(data.valid, top, strict=True)
        ]
    del miner
    cols: dict[str, list] = {"query": [], "passage": [], "label": []}
    for r, ns in zip(rows, negs, strict=True):
        for t, y in [(o, 1.0) for o in r["oracle"]] + [(t, 0.0) for t in ns]:
            cols["query"].append(r["question"])
            cols["passage"].append(t)
            cols["label"].append(y)
    n_pairs = len(cols["query"])
    n_pos = sum(cols["label"])
    mined_s = time.time() - t0

    set_seed(cfg.seed)  # the new head's initialisation
    kw: dict[str, Any] = {"num_labels": 1}
    if cfg.max_length:
        kw["max_length"] = cfg.max_length
    model = load_cross_encoder(base, device=_train_device(), **kw)
    evaluator = None
    if samples:
        evaluator = CrossEncoderRerankingEvaluator(
            samples,
            at_k=max(cfg.eval_k),
            always_rerank_positives=False,  # a positive the miner missed stays missed
            name="valid",
            write_csv=False,
        )
    before = _short(evaluator(model), "valid_") if evaluator else {}
    # one positive per question against `negatives`: weigh positives up so both count alike
    loss = BinaryCrossEntropyLoss(
        model, pos_weight=torch.tensor((n_pairs - n_pos) / max(1.0, n_pos))
    )
    total = _steps(n_pairs, cfg)
    logged: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ragtune-reranker-") as work:
        args = CrossEncoderTrainingArguments(
            output_dir=work,
            num_train_epochs=cfg.epochs,
            per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.lr,
            warmup_steps=int(cfg.warmup * total),
            eval_strategy="epoch" if evaluator else "no",
            save_strategy="no",
            logging_steps=max(1, min(10, total // 10)),
            report_to="none",
            disable_tqdm=True,
            dataloader_pin_memory=pin_memory(),
            seed=cfg.seed,
        )
        card_widget(model, cols["query"][0])
        trainer = CrossEncoderTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_dict(cols),
            loss=loss,
            evaluator=evaluator,
            callbacks=[_callback(progress, total, logged)],
        )
        quiet_trainer(trainer)
        t1 = time.time()
        result = trainer.train()
        train_s = time.time() - t1
        history = trainer.state.log_history
    after = _short(evaluator(model), "valid_") if evaluator else {}
    summary = {
        "kind": "cross-encoder",
        "base": base,
        "miner": miner_dir,
        "data": str(cfg.data),
        "questions": len(rows),
        "pairs": n_pairs,
        "positives": int(n_pos),
        "mining": mining,
        "steps": int(result.global_step),
        "first_loss": logged[0] if logged else None,
        "last_loss": logged[-1] if logged else None,
        "train_loss": round(float(result.training_loss), 4),
        "seconds": round(time.time() - t0, 1),
        "mining_seconds": round(mined_s, 1),
        "train_seconds": round(train_s, 1),
        "pairs_per_s": round(n_pairs * cfg.epochs / train_s, 2) if train_s else None,
        "valid_questions": len(data.valid),
        "valid_before": before,
        "valid_after": after,
        "settings": asdict(cfg),
        "log": history,
    }
    with staged_dir(cfg.out, marker="config.json", what="cross-encoder") as tmp:
        model.save(str(tmp))
        (tmp / SUMMARY).write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return summary


def pin_memory() -> bool:
    """The trainers' `dataloader_pin_memory`: pinned memory only helps a copy to a GPU (on a
    CPU-only machine torch warns that it is set and unused)."""
    import torch

    return torch.cuda.is_available()


def _train_device() -> str:
    from ragtune.llm.device import resolve_device

    return str(resolve_device("auto"))
