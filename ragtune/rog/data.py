"""KG question sets and RoG's training data (planning + reasoning conversations).

`build_rog_data(BuildDataConfig(kg="out/kg", questions="PQ-2H.txt", format="pathquestion",
out="d"))` is `ragtune rog build-data`; step by step, it reads the questions
(`read_questions("pathquestion", path)`, or "metaqa", "jsonl"), splits them
(`split_questions(qs, seed=0, test=0.2)` -> {"train": [...], "test": [...]}) and writes
chat/train.jsonl and questions/*.jsonl (`build_data(kg, splits, cfg)`).

Training targets follow RoG: for planning, each distinct shortest relation path from a question
entity to an answer entity is one example (question -> `<PATH>r1<SEP>r2</PATH>`); for reasoning,
the question with the paths those plans retrieve -> the gold answers, one a line.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ragtune.errors import ConfigError, DataError
from ragtune.rog.prompts import (
    asks_for_others,
    format_answers,
    format_plan,
    plan_messages,
    reason_messages,
)
from ragtune.rog.retrieve import plan_exists


@dataclass
class BuildDataConfig:
    """Split a KG question set and write RoG planning + reasoning training data."""

    kg: str = field(
        default="", metadata={"help": "KG directory.", "positional": True, "required": True}
    )
    questions: str = field(
        default="", metadata={"help": "Question file.", "positional": True, "required": True}
    )
    out: str = field(default="", metadata={"help": "Output directory.", "required": True})
    format: str = field(
        default="jsonl", metadata={"help": "pathquestion | metaqa | jsonl (question, answers)."}
    )
    test: float = field(default=0.2, metadata={"help": "Share of questions held out for test."})
    valid: float = field(default=0.0, metadata={"help": "Share held out for validation loss."})
    seed: int = field(default=0, metadata={"help": "Split seed."})
    max_hops: int = field(default=2, metadata={"help": "Longest planning target (hops)."})
    max_plans: int = field(default=3, metadata={"help": "Planning targets kept per question."})
    max_paths: int = field(default=30, metadata={"help": "Paths in a reasoning example."})
    targets: str = field(
        default="auto",
        metadata={
            "help": "Planning targets: auto (the data's gold path if any, else shortest), "
            "gold, shortest (RoG's), or consensus (shortest paths the question's words "
            "agree on across the training set: drops coincidental paths)."
        },
    )
    distractor_plans: int = field(
        default=2,
        metadata={"help": "Other relation paths whose paths join each reasoning example."},
    )
    gold_first: float = field(
        default=0.8,
        metadata={
            "help": "Share of reasoning examples listing the gold paths first, as inference "
            "lists the best plan's paths first (the rest are shuffled)."
        },
    )
    train_limit: int = field(
        default=0, metadata={"help": "Use only the first N training questions (0: all)."}
    )


@dataclass
class KGQuestion:
    id: str
    question: str  # as shown to the model (MetaQA's [brackets] removed)
    answers: list[str]
    entities: list[str] = field(default_factory=list)  # topic entities, when the data marks them
    gold_relations: list[list[str]] | None = None  # the data's own relation path, if it has one
    # answers are never the question's entities (recommendation); None: from the question text
    exclude_entities: bool | None = None

    def excludes(self) -> bool:
        return (
            asks_for_others(self.question)
            if self.exclude_entities is None
            else self.exclude_entities
        )

    def to_dict(self) -> dict:
        return asdict(self)


_BRACKET = re.compile(r"\[([^\]]+)\]")


def read_pathquestion(path: Path) -> list[KGQuestion]:
    """`question<TAB>ans(a1/a2/)<TAB>subj#r1#e1#r2#ans[#<end>#ans]` (PQ and PQL files)."""
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise DataError(
                "expected question<TAB>answer(a1/a2/)<TAB>subject#r1#e1#... (PathQuestion)",
                path=str(path),
                line=i,
            )
        q, ans, chain = parts
        m = re.match(r"^(.*?)\((.*)\)\s*$", ans)
        answers = [a for a in (m.group(2).split("/") if m else [ans]) if a.strip()]
        hops = chain.split("#<end>#")[0].split("#")
        if len(hops) < 3 or len(hops) % 2 == 0:
            raise DataError(
                "the path must alternate entity#relation#entity", path=str(path), line=i
            )
        out.append(
            KGQuestion(
                id=f"{path.stem}-{i}",
                question=q.strip(),
                answers=answers,
                entities=[hops[0]],
                gold_relations=[hops[1::2]],
            )
        )
    return out


def read_metaqa(path: Path) -> list[KGQuestion]:
    """`question with [topic]<TAB>ans1|ans2` (MetaQA)."""
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        q, sep, ans = line.partition("\t")
        ents = _BRACKET.findall(q)
        if not sep or not ents:
            raise DataError(
                "expected 'question with [topic entity]<TAB>answer1|answer2' (MetaQA)",
                path=str(path),
                line=i,
            )
        out.append(
            KGQuestion(
                id=f"{path.parent.name}-{path.stem}-{i}",
                question=_BRACKET.sub(r"\1", q).strip(),
                answers=[a for a in ans.split("|") if a.strip()],
                entities=ents,
            )
        )
    return out


def read_jsonl_questions(path: Path) -> list[KGQuestion]:
    """`{"question", "answers": [...], "entities"?: [...], "id"?}` a line."""
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"not JSON ({e.msg})", path=str(path), line=i) from None
        ans = r.get("answers", r.get("ground_truth", r.get("answer")))
        if isinstance(ans, str):
            ans = [ans]
        if not isinstance(r.get("question"), str) or not ans:
            raise DataError(
                "each line needs 'question' and 'answers' (a list of strings)",
                path=str(path),
                line=i,
            )
        ents = list(r.get("entities") or r.get("q_entity") or [])
        exclude = r.get("exclude_entities")
        if exclude is not None and not isinstance(exclude, bool):
            raise DataError(
                f"'exclude_entities' is {exclude!r}: give true (answers are never the question's "
                "entities, as for a recommendation), false, or leave it out (from the question)",
                path=str(path),
                line=i,
            )
        q = r["question"]
        if not ents and _BRACKET.search(q):  # MetaQA-style [topic] marks
            ents, q = _BRACKET.findall(q), _BRACKET.sub(r"\1", q)
        out.append(
            KGQuestion(
                id=str(r.get("id", f"{path.stem}-{i}")),
                question=q,
                answers=[str(a) for a in ans],
                entities=ents,
                gold_relations=r.get("gold_relations"),
                exclude_entities=exclude,
            )
        )
    return out


READERS = {"pathquestion": read_pathquestion, "metaqa": read_metaqa, "jsonl": read_jsonl_questions}


def read_questions(fmt: str, path: str | Path) -> list[KGQuestion]:
    path = Path(path)
    if fmt not in READERS:
        raise ConfigError(f"unknown question format {fmt!r}: use one of {', '.join(READERS)}")
    if not path.exists():
        raise DataError(f"question file {path} does not exist; check the path")
    return READERS[fmt](path)


def split_questions(
    qs: list[KGQuestion], seed: int = 0, test: float = 0.2, valid: float = 0.0
) -> dict[str, list[KGQuestion]]:
    """Seeded split by group (topic entities + answers), so paraphrases of one question
    (PathQuestion writes each three ways) never straddle train and test."""
    groups: dict[tuple, list[KGQuestion]] = {}
    for q in qs:
        groups.setdefault((tuple(q.entities), tuple(sorted(q.answers))), []).append(q)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    n_test = round(len(keys) * test)
    n_valid = round(len(keys) * valid)
    parts = {
        "test": keys[:n_test],
        "valid": keys[n_test : n_test + n_valid],
        "train": keys[n_test + n_valid :],
    }
    return {name: [q for k in ks for q in groups[k]] for name, ks in parts.items()}


def link(kg, q: KGQuestion) -> list[int]:
    """Entity ids of the question: the data's topic entities, else found in the text."""
    names = [n for n in q.entities if kg.find_entity(n) is not None]
    if not names:
        from ragtune.kg import question_entities

        names = question_entities(kg, q.question)
    return [kg.find_entity(n) for n in names]


TARGETS = ("auto", "gold", "shortest", "consensus")


def training_targets(
    kg, q: KGQuestion, max_hops: int = 2, max_plans: int = 3, targets: str = "auto"
) -> list[list[str]]:
    """Planning targets: the data's own relation path when it has one and `targets` is auto or
    gold; otherwise RoG's: distinct shortest relation paths, question -> answer entities.

    (Shortest paths can be shortcuts: on PathQuestion 12% of questions have a 1-hop path to
    the answer beside the 2-hop one the question asks about.)
    """
    if targets not in TARGETS:
        raise ConfigError(f"targets {targets!r}: use one of {', '.join(TARGETS)}")
    src = link(kg, q)
    if targets in ("auto", "gold", "consensus") and q.gold_relations:
        ok = [list(p) for p in q.gold_relations if plan_exists(kg, p)]
        if ok:
            return ok[:max_plans]
    dst = [i for i in (kg.find_entity(a) for a in q.answers) if i is not None]
    if not src or not dst:
        return []
    paths = kg.shortest_relation_paths(src, dst, max_hops=max_hops)
    if len(paths) > max_plans:
        # Keep the paths whose ends are most often answers ("films like X" is reached by
        # the shared director, but also, noisily, by a shared genre or year).
        gold = set(dst)

        def precision(p) -> float:
            ends = set(kg.follow(src, list(p), max_paths=2000).nodes[:, -1].tolist())
            return len(ends & gold) / max(1, len(ends))

        paths = sorted(paths, key=precision, reverse=True)
    return [list(p) for p in paths[:max_plans]]


_WORD = re.compile(r"[a-z0-9]+")


def _words(q: KGQuestion) -> set[str]:
    """The question's words without its topic entities' (the template, not the topic)."""
    text = q.question.lower()
    for e in q.entities:
        text = text.replace(e.lower(), " ")
    return set(_WORD.findall(text))


def consensus_targets(
    kg, qs: list[KGQuestion], max_hops: int = 2, max_plans: int = 3, keep: float = 0.3
) -> dict[str, list[list[str]]]:
    """Planning targets with the coincidences taken out, per question id.

    A shortest path to an answer is not always the relation the question asks about: on
    MetaQA-approx "who directed X" also reaches the answer by `written_by` (the director
    wrote it) and by `has_tags` (the director's name is a tag), and per question the two are
    indistinguishable (same ends, same precision). Across questions they are not: the words
    "directed"/"director" come with `directed_by` in nearly every question and with
    `written_by` only sometimes. So each question's candidates (its shortest paths) are
    weighed by how well its ends match the answers (F1) times naive Bayes over its words
    (P(path) * prod P(word | path)), the counts
    re-estimated from those weights for a few rounds (EM), and the candidates kept whose
    posterior is at least `keep` times the best's, best first, at most `max_plans`.
    Questions with a gold path (PathQuestion) keep it.
    """
    import math
    from collections import defaultdict

    cands: dict[str, list[tuple[str, ...]]] = {}
    words: dict[str, set[str]] = {}
    fit: dict[str, list[float]] = {}  # log F1 of each candidate's ends against the answers
    for q in qs:
        ps = training_targets(kg, q, max_hops, 10_000, "auto")
        if not ps:
            continue
        cands[q.id] = [tuple(p) for p in ps]
        words[q.id] = _words(q)
        if q.gold_relations:
            fit[q.id] = [0.0] * len(ps)
            continue
        src = link(kg, q)
        gold = {i for i in (kg.find_entity(a) for a in q.answers) if i is not None}
        fit[q.id] = []
        for p in ps:
            # "films with the same actor" also reaches some answers by a shared genre, among
            # thousands of other films: such a path's F1 is tiny, the asked one's near 1
            ends = set(kg.follow(src, list(p), max_paths=2000).nodes[:, -1].tolist())
            hit = len(ends & gold)
            fit[q.id].append(math.log(max(2 * hit / (len(ends) + len(gold)), 1e-3)))
    weights = {i: [1.0 / len(ps)] * len(ps) for i, ps in cands.items()}
    post = weights
    for _ in range(5):
        n_path: dict[tuple, float] = defaultdict(float)
        n_word: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for i, ps in cands.items():
            for p, w in zip(ps, weights[i], strict=True):
                n_path[p] += w
                for t in words[i]:
                    n_word[p][t] += w
        total = sum(n_path.values())
        post = {}
        for i, ps in cands.items():
            logs = []
            for p, f in zip(ps, fit[i], strict=True):
                # naive Bayes over the words present, smoothed (a word never seen with a
                # path costs, not forbids)
                lp = math.log(n_path[p] / total) + f
                for t in words[i]:
                    lp += math.log((n_word[p].get(t, 0.0) + 0.1) / (n_path[p] + 0.1 * 2))
                logs.append(lp)
            top = max(logs)
            ex = [math.exp(v - top) for v in logs]
            z = sum(ex)
            post[i] = [v / z for v in ex]
        weights = post
    out = {}
    for i, ps in cands.items():
        order = sorted(range(len(ps)), key=lambda k: -post[i][k])
        best = post[i][order[0]]
        out[i] = [list(ps[k]) for k in order if post[i][k] >= keep * best][:max_plans]
    return out


def build_examples(
    kg, qs: list[KGQuestion], cfg: BuildDataConfig | None = None
) -> tuple[list[list[dict]], dict[str, int]]:
    """Chat conversations (planning and reasoning, interleaved) and counts of what was made."""
    from ragtune.rog.retrieve import retrieve_paths

    cfg = cfg or BuildDataConfig()
    max_hops, max_paths = cfg.max_hops, cfg.max_paths
    convs: list[list[dict]] = []
    stats = {"questions": len(qs), "planning": 0, "reasoning": 0, "no_target": 0}
    table = (
        consensus_targets(kg, qs, max_hops, cfg.max_plans) if cfg.targets == "consensus" else None
    )
    for q in qs:
        plans = (
            table.get(q.id, [])
            if table is not None
            else training_targets(kg, q, max_hops, cfg.max_plans, cfg.targets)
        )
        if not plans:
            stats["no_target"] += 1
            continue
        for p in plans:
            convs.append(
                plan_messages(q.question) + [{"role": "assistant", "content": format_plan(p)}]
            )
            stats["planning"] += 1
        # Like RAFT's distractor documents: the paths of other relation sequences that exist
        # from the entities join the gold ones, shuffled, so the reasoner learns to pick the
        # paths the question asks about (at inference the plans' paths are not all relevant).
        seed = zlib.crc32(q.id.encode())
        src = link(kg, q)
        others = [list(r) for r in kg.relation_paths(src, hops=max_hops) if list(r) not in plans]
        rng = random.Random(seed)
        # Hard ones first (sharing the gold plan's first relation, as the planner's other
        # beams usually do: "children" beside "children -> parents"), then any.
        firsts = {p[0] for p in plans}
        hard = [o for o in others if o[0] in firsts]
        rest = [o for o in others if o[0] not in firsts]
        noise = rng.sample(hard, min(cfg.distractor_plans, len(hard)))
        noise += rng.sample(rest, min(cfg.distractor_plans - len(noise), len(rest)))
        # as at inference: a recommendation's walks back to its own entity are not shown
        drop = frozenset(src) if q.excludes() else frozenset()
        got = retrieve_paths(kg, src, plans, max_paths, seed=seed, exclude_ends=drop)
        extra = retrieve_paths(kg, src, noise, max(1, max_paths // 2), seed=seed, exclude_ends=drop)
        gold_paths = list(got.rendered)
        noise_paths = [p for p in extra.rendered if p not in got.rendered]
        rng.shuffle(gold_paths)
        rng.shuffle(noise_paths)
        if rng.random() < cfg.gold_first:
            # As at inference, where the best plan's paths are listed first (the planner ranks
            # them): the reasoner learns to trust that order...
            paths = gold_paths + noise_paths
        else:
            # ...and, in the other examples, to find the relevant paths anywhere.
            paths = gold_paths + noise_paths
            rng.shuffle(paths)
        convs.append(
            reason_messages(q.question, paths)
            + [{"role": "assistant", "content": format_answers(q.answers)}]
        )
        stats["reasoning"] += 1
    return convs, stats


def write_jsonl(path: Path, rows: list[dict]) -> None:
    from ragtune.store import atomic_write as _atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def build_data(kg, splits: dict[str, list[KGQuestion]], cfg: BuildDataConfig) -> dict:
    """Write `chat/{train,valid}.jsonl` (for `ragtune train`) and `questions/{split}.jsonl`
    into `cfg.out`; `manifest.json` records the config the examples were built with."""
    if not cfg.out:
        raise ConfigError("BuildDataConfig.out is empty: name the output directory (--out)")
    if not 0.0 <= cfg.gold_first <= 1.0:
        raise ConfigError(f"gold_first = {cfg.gold_first}: it is a share, give 0 to 1")
    if cfg.targets not in TARGETS:  # checked here too, before any file is written
        raise ConfigError(f"targets {cfg.targets!r}: use one of {', '.join(TARGETS)}")
    out = Path(cfg.out)
    manifest: dict = {**asdict(cfg), "splits": {}}
    for name, qs in splits.items():
        write_jsonl(out / "questions" / f"{name}.jsonl", [q.to_dict() for q in qs])
        manifest["splits"][name] = {"questions": len(qs)}
        if name in ("train", "valid") and qs:
            convs, stats = build_examples(kg, qs, cfg)
            random.Random(cfg.seed).shuffle(convs)  # mix planning and reasoning examples
            write_jsonl(out / "chat" / f"{name}.jsonl", [{"messages": c} for c in convs])
            manifest["splits"][name].update(stats)
    from ragtune.store import atomic_write as _atomic_write

    _atomic_write(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def build_rog_data(cfg: BuildDataConfig) -> dict:
    """`ragtune rog build-data`: read and split the questions, write the data; the manifest."""
    from ragtune.kg import KG

    kg = KG.open(cfg.kg)
    qs = read_questions(cfg.format, cfg.questions)
    splits = split_questions(qs, seed=cfg.seed, test=cfg.test, valid=cfg.valid)
    if cfg.train_limit:
        splits["train"] = splits["train"][: cfg.train_limit]
    return build_data(kg, splits, cfg)


def load_split(data: str | Path, split: str) -> list[KGQuestion]:
    p = Path(data) / "questions" / f"{split}.jsonl"
    if not p.exists():
        raise DataError(f"{p} not found: run `ragtune rog build-data` first")
    return read_jsonl_questions(p)
