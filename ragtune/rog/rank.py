"""Planners that rank the graph's own relation paths instead of writing one.

The constrained decoder already knows every relation path that exists from the question's
entities (`kg.relation_paths(ids, hops)`); these planners score all of them and return the best:

    RankLMPlanner(lm)            log p(plan reply | planning prompt) per token, batched
    RankEmbedPlanner("out/pl")   cosine(question, path text) of a bi-encoder (`rog train-planner`)

    plans = planner.plan(["who directed Heat"], allowed=[[("directed_by",), ("release_year",)]])
    plans[0] -> [Plan(["directed_by"], score=0.71), Plan(["release_year"], score=0.12)]

The bi-encoder is trained by sentence-transformers' own trainer with
MultipleNegativesRankingLoss from the bundled all-MiniLM-L6-v2, on (question, gold plan text)
pairs with the question's other valid paths as hard negatives:

    ragtune rog train-planner --kg out/kg --data out/rog-data --out out/planner
    ragtune rog predict ... --planner-kind rank-embed --ranker out/planner

`plans_to_read` is RoG's K: a fixed number of plans, or, with a margin, every plan whose score
is within the margin of the best (one when the best is clear, several when they are close).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError, DataError
from ragtune.rog.planner import Plan

PLANNER_KINDS = ("lm", "rank-lm", "rank-embed")
SUMMARY = "ragtune_planner.json"  # written in the ranker's directory, beside the model files


def path_text(relations: list[str] | tuple[str, ...]) -> str:
    """What the bi-encoder reads for a plan: `~directed_by → has_genre`."""
    return " → ".join(relations)


def _need_allowed(allowed, kind: str) -> None:
    if allowed is None:
        raise ConfigError(
            f"planner_kind {kind!r} ranks the relation paths that exist in the graph, so it "
            "needs constrained planning: use mode constrained or grounded (not rog), or "
            "planner_kind lm for free decoding"
        )


def _top(rels: list[tuple[str, ...]], scores: list[float], n: int) -> list[Plan]:
    order = sorted(range(len(rels)), key=lambda k: -scores[k])[:n]
    return [Plan(list(rels[k]), float(scores[k])) for k in order]


class RankEmbedPlanner:
    """Cosine of question and relation-path text under a sentence-transformers bi-encoder."""

    kind = "rank-embed"
    local = True  # takes `allowed` (it ranks them); nothing is generated

    def __init__(self, path: str | Path | None = None, num_plans: int = 3, device: str = "auto"):
        from ragtune.retrieval.dense import Embedder

        if path is not None and not (Path(path) / "modules.json").exists():
            raise ConfigError(
                f"ranker {str(path)!r} is not a sentence-transformers directory (no "
                "modules.json): train one with `ragtune rog train-planner`, or leave --ranker "
                "out for the untrained bundled MiniLM"
            )
        self.embedder = Embedder(path, device=device)
        self.num_plans = num_plans
        self._cache: dict[str, Any] = {}  # path text -> vector: few distinct paths recur

    def _vectors(self, texts: list[str]):
        new = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if new:
            for t, v in zip(new, self.embedder.encode(new), strict=True):
                self._cache[t] = v
        return [self._cache[t] for t in texts]

    def plan(self, questions: list[str], allowed=None) -> list[list[Plan]]:
        import numpy as np

        _need_allowed(allowed, self.kind)
        qv = self.embedder.encode(questions)
        out = []
        for q, rels in zip(qv, allowed, strict=True):
            if not rels:
                out.append([])
                continue
            pv = np.stack(self._vectors([path_text(r) for r in rels]))
            out.append(_top(list(rels), (pv @ q).tolist(), self.num_plans))
        return out


class RankLMPlanner:
    """The planner LM's log-probability of each whole valid plan as its reply, per token.

    Length-normalised (mean log-prob over the reply's tokens, EOS included), as beam search's
    scores are, so a 2-hop plan is not beaten by a 1-hop one for being shorter. A local model is
    scored in batches of prompt+plan rows (one forward per batch); another backend that can
    score (`lm.can_score`) is asked per plan.
    """

    kind = "rank-lm"
    local = True

    def __init__(self, lm, num_plans: int = 3, batch_size: int = 32) -> None:
        if not getattr(lm, "can_score", False):
            raise ConfigError(
                f"planner_kind 'rank-lm' needs a planner that gives log-probabilities "
                f"(lm.can_score); {type(lm).__name__} does not: use a local --planner or "
                "planner_kind rank-embed"
            )
        self.lm, self.num_plans, self.batch_size = lm, num_plans, batch_size

    def plan(self, questions: list[str], allowed=None) -> list[list[Plan]]:
        _need_allowed(allowed, self.kind)
        out = []
        for q, rels in zip(questions, allowed, strict=True):
            rels = list(rels)
            out.append(_top(rels, self.scores(q, rels), self.num_plans) if rels else [])
        return out

    def scores(self, question: str, rels: list[tuple[str, ...]]) -> list[float]:
        from ragtune.rog.prompts import format_plan, plan_messages

        msgs = plan_messages(question)
        conts = [format_plan(list(r)) for r in rels]
        if not getattr(self.lm, "can_constrain", False):  # an endpoint: one call per plan
            return [
                s / max(1, self.lm.count_tokens(c))
                for s, c in zip(self.lm.score(msgs, conts), conts, strict=True)
            ]
        return self._batched(msgs, conts)

    def _batched(self, msgs, conts: list[str]) -> list[float]:
        import torch

        lm, tok = self.lm, self.lm.tokenizer
        prefix = tok(lm.render(msgs), add_special_tokens=False)["input_ids"]
        eos = lm.end_of_turn_id
        # the plan tokenised on its own + end of turn: the sequences the constrained decoder
        # spells (planner.TokenTrie), so both planners score the same tokens
        seqs = [tok(c, add_special_tokens=False)["input_ids"] + [eos] for c in conts]
        pad = tok.pad_token_id if tok.pad_token_id is not None else eos
        out: list[float] = []
        for i in range(0, len(seqs), self.batch_size):
            chunk = seqs[i : i + self.batch_size]
            width = len(prefix) + max(len(s) for s in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for j, s in enumerate(chunk):  # right padding: every row's prefix at 0..len-1
                row = prefix + s
                ids[j, : len(row)] = torch.tensor(row)
                mask[j, : len(row)] = 1
            dev = lm.model.device
            with torch.inference_mode():
                logits = lm.model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits
            logp = torch.log_softmax(logits[:, len(prefix) - 1 : -1].float(), dim=-1)  # (B,T,V)
            tgt = ids[:, len(prefix) :].to(dev)
            got = logp.gather(2, tgt[..., None])[..., 0]  # (B, T)
            for j, s in enumerate(chunk):
                out.append(float(got[j, : len(s)].mean()))
        return out


def make_planner(kind: str, lm, ranker: str | None = None, num_plans: int = 3, device="auto"):
    """The planner of `--planner-kind`: None for `lm` (RoG builds its beam-search Planner)."""
    if kind not in PLANNER_KINDS:
        raise ConfigError(f"planner_kind {kind!r}: use one of {', '.join(PLANNER_KINDS)}")
    if ranker and kind != "rank-embed":
        raise ConfigError(
            f"ranker {ranker!r} is the bi-encoder of planner_kind rank-embed, but planner_kind "
            f"is {kind!r}: add --planner-kind rank-embed or drop --ranker"
        )
    if kind == "lm":
        return None
    if kind == "rank-lm":
        return RankLMPlanner(lm, num_plans=num_plans)
    return RankEmbedPlanner(ranker, num_plans=num_plans, device=device)


def plans_to_read(plans: list[Plan], top_plans: int | None, margin: float | None) -> list[Plan]:
    """RoG's K. Fixed: the first `top_plans` (all when None). Adaptive (`margin` set): every plan
    scoring within `margin` of the best, at most `top_plans` — a clear best plan is read alone,
    close ones together (a wrong lone plan leaves the reasoner without a right path)."""
    used = plans[:top_plans] if top_plans else list(plans)
    if margin is None or not used:
        return used
    best = used[0].score
    return [p for p in used if p.score >= best - margin]


# --- training (`ragtune rog train-planner`) ---------------------------------------------------


@dataclass
class PlannerTrainConfig:
    """Fine-tune a bi-encoder that ranks a question's valid relation paths (rank-embed)."""

    kg: str = field(default="", metadata={"help": "KG directory (kg load).", "required": True})
    data: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Data dir(s) of `rog build-data`: their train questions are the pairs "
            "(give several, e.g. the 1-hop and 2-hop builds).",
            "required": True,
        },
    )
    out: str = field(default="", metadata={"help": "Model directory to write.", "required": True})
    base: str | None = field(
        default=None,
        metadata={"help": "sentence-transformers dir to start from (default: bundled MiniLM)."},
    )
    targets: str = field(
        default="consensus",
        metadata={"help": "Gold plans: consensus (default), auto, gold or shortest (build-data)."},
    )
    hops: int = field(default=2, metadata={"help": "Longest relation path (negatives, targets)."})
    max_relation_paths: int = field(
        default=2000, metadata={"help": "Cap on the valid paths listed per question."}
    )
    negatives: int = field(default=3, metadata={"help": "Hard negatives (other paths) per pair."})
    epochs: float = field(default=1.0, metadata={"help": "Passes over the pairs."})
    batch_size: int = field(default=32, metadata={"help": "Pairs per batch."})
    lr: float = field(default=5e-5, metadata={"help": "Peak learning rate."})
    warmup: float = field(default=0.1, metadata={"help": "Share of steps warming up."})
    valid: float = field(
        default=0.1, metadata={"help": "Share of the train questions held out to measure."}
    )
    limit: int = field(default=0, metadata={"help": "Train questions per data dir (0: all)."})
    seed: int = field(default=0, metadata={"help": "Sampling and training seed."})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads."})


def planner_examples(kg, qs, cfg: PlannerTrainConfig) -> list[dict]:
    """(question, gold plans, the other valid paths) per question with a target."""
    from ragtune.rog.data import consensus_targets, link, training_targets

    table = consensus_targets(kg, qs, cfg.hops) if cfg.targets == "consensus" else None
    rows = []
    for q in qs:
        gold = (
            table.get(q.id, [])
            if table is not None
            else training_targets(kg, q, cfg.hops, 3, cfg.targets)
        )
        if not gold:
            continue
        ids = link(kg, q)
        valid = kg.relation_paths(ids, hops=cfg.hops, max_paths=cfg.max_relation_paths)
        golds = {tuple(g) for g in gold}
        others = [r for r in valid if r not in golds]
        rows.append({"question": q.question, "gold": [tuple(g) for g in gold], "others": others})
    return rows


def plan_accuracy(planner, rows: list[dict]) -> float:
    """Share of rows whose top-ranked valid path is their first gold plan."""
    if not rows:
        return 0.0
    allowed = [r["others"] + r["gold"] for r in rows]
    got = planner.plan([r["question"] for r in rows], allowed)
    hits = sum(
        bool(p) and tuple(p[0].relations) == r["gold"][0] for p, r in zip(got, rows, strict=True)
    )
    return round(100.0 * hits / len(rows), 2)


def train_planner(
    cfg: PlannerTrainConfig, progress: Callable[[int, int, dict], None] | None = None
) -> dict:
    """Train the rank-embed planner into `cfg.out`; the summary (also `OUT/ragtune_planner.json`):
    pairs, steps, seconds, held-out plan accuracy (top path == gold) before and after."""
    from ragtune.extras import require
    from ragtune.kg import KG
    from ragtune.rog.data import TARGETS, load_split

    if not cfg.data:
        raise ConfigError("PlannerTrainConfig.data is empty: name a `rog build-data` dir (--data)")
    if not cfg.out:
        raise ConfigError("PlannerTrainConfig.out is empty: name the model directory (--out)")
    if cfg.targets not in TARGETS:
        raise ConfigError(f"targets {cfg.targets!r}: use one of {', '.join(TARGETS)}")
    if not 0.0 <= cfg.valid < 1.0:
        raise ConfigError(f"valid = {cfg.valid}: a share of the questions, give 0 to <1")
    require("datasets", "ragtune rog train-planner")
    require("accelerate", "ragtune rog train-planner")
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    t0 = time.time()
    kg = KG.open(cfg.kg)
    qs = []
    for d in cfg.data:
        part = load_split(d, "train")
        qs.extend(part[: cfg.limit or None])
    if not qs:
        raise DataError(f"no train questions in {cfg.data}: run `ragtune rog build-data` first")
    rows = planner_examples(kg, qs, cfg)
    # a held-out share of the train questions measures the ranker (the test split is never read)
    rng = random.Random(cfg.seed)
    rng.shuffle(rows)
    n_valid = round(len(rows) * cfg.valid)
    valid, train = rows[:n_valid], rows[n_valid:]
    if not train:
        raise DataError("no training pairs: no train question has a path to an answer")

    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from transformers import set_seed

    try:  # sentence-transformers >= 5.4 moved them; the old path still works before that
        from sentence_transformers.sentence_transformer import losses
    except ImportError:
        from sentence_transformers import losses

    planner = RankEmbedPlanner(cfg.base, num_plans=1)
    before = plan_accuracy(planner, valid)
    cols: dict[str, list[str]] = {"anchor": [], "positive": []}
    cols.update({f"negative_{j + 1}": [] for j in range(cfg.negatives)})
    for r in train:
        # hard negatives first: the paths sharing the gold's length (a 2-hop question's rivals
        # are other 2-hop paths, mostly through the same first relation)
        pool = [o for o in r["others"] if len(o) == len(r["gold"][0])] or r["others"]
        if len(pool) < cfg.negatives:
            pool = pool + [o for o in r["others"] if o not in pool]
        if not pool:
            continue
        negs = rng.sample(pool, min(cfg.negatives, len(pool)))
        while len(negs) < cfg.negatives:  # few valid paths: repeat (each column needs a text)
            negs.append(rng.choice(pool))
        cols["anchor"].append(r["question"])
        cols["positive"].append(path_text(r["gold"][0]))
        for j, n in enumerate(negs):
            cols[f"negative_{j + 1}"].append(path_text(n))
    n_pairs = len(cols["anchor"])
    model = planner.embedder.model
    set_seed(cfg.seed)
    # In-batch negatives are other questions' plans; a batch often holds the same plan twice
    # (there are few relations), which MNRL sees as a negative identical to the positive: it
    # costs a constant, not a wrong push. `no_duplicates` cannot fill batches from ~50 texts.
    loss = losses.MultipleNegativesRankingLoss(model)
    total = max(1, int(-(-n_pairs // cfg.batch_size) * cfg.epochs))
    losses_seen: list[float] = []

    from transformers import TrainerCallback

    class _Report(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses_seen.append(float(logs["loss"]))

        def on_step_end(self, args, state, control, **kw):
            if progress:
                progress(state.global_step, total, {})

    import tempfile

    from ragtune.retrieval.train import card_widget, pin_memory, quiet_trainer
    from ragtune.store import staged_dir

    with tempfile.TemporaryDirectory(prefix="ragtune-planner-") as work:
        args = SentenceTransformerTrainingArguments(
            output_dir=work,
            num_train_epochs=cfg.epochs,
            per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.lr,
            warmup_steps=int(cfg.warmup * total),
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
            callbacks=[_Report()],
        )
        quiet_trainer(trainer)
        t1 = time.time()
        result = trainer.train()
        train_s = time.time() - t1
    planner._cache.clear()
    after = plan_accuracy(planner, valid)
    summary = {
        "kind": "rank-embed",
        "base": cfg.base or "bundled all-MiniLM-L6-v2",
        "questions": len(qs),
        "with_target": len(rows),
        "pairs": n_pairs,
        "valid_questions": len(valid),
        "steps": int(result.global_step),
        "first_loss": losses_seen[0] if losses_seen else None,
        "last_loss": losses_seen[-1] if losses_seen else None,
        "train_seconds": round(train_s, 1),
        "seconds": round(time.time() - t0, 1),
        "valid_plan_accuracy_before": before,
        "valid_plan_accuracy_after": after,
        "settings": asdict(cfg),
    }
    with staged_dir(cfg.out, marker="modules.json", what="sentence-transformers model") as tmp:
        model.save(str(tmp))
        (tmp / SUMMARY).write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return summary
