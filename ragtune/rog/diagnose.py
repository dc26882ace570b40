"""Diagnosing RoG planning: do the plans reach gold, what can the top plan score, are the
planning targets the relation the question asks about (issue 21).

    python -m ragtune.rog.diagnose plan-hits --kg OUT/kg --data OUT/data \\
        --predictions OUT/eval/predictions-grounded.jsonl --margins 0.05 0.1
    python -m ragtune.rog.diagnose bounds --kg OUT/kg --data OUT/data --ranker OUT/planner [--hops 3]
    python -m ragtune.rog.diagnose targets --kg OUT/kg --data OUT/data-1 OUT/data-2 \\
        --qtypes ../shared/data/kg/metaqa_approx [--targets consensus]

Each command prints its function's dict as JSON; the functions take loaded objects:

    plan_reach(kg, questions, rows, margins)   how often a run's plans reach a gold answer
                                               (`rows`: its predictions file), and how often
                                               adaptive K (`--plan-margin`) would read one
    rank_bounds(kg, questions, planner)        what any grounded reasoner reading only the top
                                               plan's paths (`--top-plans 1`) can score: a
                                               floor and a ceiling on Hits@1, no reasoner run
    target_check(kg, questions, qtypes)        `rog build-data`'s planning targets against the
                                               relation chain MetaQA's qa_*_qtype.txt names

A plan "reaches gold" when following it from the question's entities ends at a gold answer:
the whole walk, not only the paths the prompt kept.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ragtune.errors import DataError
from ragtune.rog.data import (
    TARGETS,
    KGQuestion,
    consensus_targets,
    link,
    load_split,
    training_targets,
)
from ragtune.rog.metrics import normalize
from ragtune.rog.planner import Plan
from ragtune.rog.rank import plans_to_read
from ragtune.rog.retrieve import plan_exists, retrieve_paths


def _reaches(kg, ids: list[int], relations: list[str], gold: set[str], max_paths: int) -> bool:
    # free decoding (mode rog) may name relations the graph lacks: such a plan reaches nothing
    if not ids or not plan_exists(kg, relations):
        return False
    ends = kg.follow(ids, relations, max_paths=max_paths).nodes[:, -1].tolist()
    names = kg.entity_names
    return any(normalize(names[e]) in gold for e in ends)


def plan_reach(
    kg,
    questions: Iterable[KGQuestion],
    rows: Iterable[dict],
    margins: Sequence[float] = (),
    top_plans: int | None = None,
    max_paths: int = 5000,
) -> dict:
    """How often a run's plans reach a gold answer, from its prediction rows.

    rows: `rog predict`'s predictions-{mode}.jsonl rows (`id`, `plans` best first, each with
    `relations` and `score`). Returns counts over the rows: the top plan reaches gold, some
    plan does, and per margin the plans adaptive K reads per question (mean) and how often one
    of them reaches gold (`top_plans` caps them as `--top-plans` does with `--plan-margin`).
    """
    by_id = {q.id: q for q in questions}
    reach: list[tuple[list[bool], list[Plan]]] = []
    for r in rows:
        q = by_id.get(r["id"])
        if q is None:
            raise DataError(
                f"prediction row {r['id']!r} is not among the questions: give the data "
                "directory and split the predictions were made from"
            )
        ids = link(kg, q)
        gold = {normalize(a) for a in q.answers}
        plans = [Plan(list(p["relations"]), float(p["score"])) for p in r.get("plans") or []]
        reach.append(([_reaches(kg, ids, p.relations, gold, max_paths) for p in plans], plans))
    n = len(reach)
    out: dict = {
        "questions": n,
        "top_plan_reaches_gold": sum(bool(h) and h[0] for h, _ in reach),
        "some_plan_reaches_gold": sum(any(h) for h, _ in reach),
        "margins": [],
    }
    for m in margins:
        read = ok = 0
        for hits, plans in reach:
            # the very rule `rog predict --plan-margin` applies, so the count is what it reads; it
            # returns the plans themselves (not copies), so identity says which were kept
            used = {id(p) for p in plans_to_read(plans, top_plans, m)}
            read += len(used)
            ok += any(h for h, p in zip(hits, plans, strict=True) if id(p) in used)
        out["margins"].append(
            {"margin": m, "plans_read": read / n if n else 0.0, "reaches_gold": ok}
        )
    return out


def rank_bounds(
    kg,
    questions: Sequence[KGQuestion],
    planner,
    hops: int = 2,
    max_paths: int = 30,
    exclude_question_entities: bool = True,
) -> dict:
    """Floor and ceiling on a grounded reasoner's Hits@1 when it reads the top plan only.

    With `--top-plans 1` a grounded answer is an end of the top plan's retrieved paths (at most
    `max_paths`), so without running the reasoner: "all_ends_gold" counts questions where
    every end is gold (whatever it names first is right: a floor), "some_end_gold" those where
    one is (it can be right: a ceiling). `planner`: anything with `plan(questions, allowed)`
    that ranks the valid relation paths (RankEmbedPlanner, RankLMPlanner). The question's own
    entities are dropped from the ends by default, as `--exclude-entities` does: MetaQA never
    answers with them (1 of 24,864 questions).
    """
    ids = [link(kg, q) for q in questions]
    plans = planner.plan(
        [q.question for q in questions], [kg.relation_paths(i, hops=hops) for i in ids]
    )
    floor = ceil = 0
    for q, i, ps in zip(questions, ids, plans, strict=True):
        exclude = frozenset(i) if exclude_question_entities else frozenset()
        got = retrieve_paths(
            kg, i, [ps[0].relations] if ps else [], max_paths, exclude_ends=exclude
        )
        gold = {normalize(a) for a in q.answers}
        ends = [normalize(e) for e in got.ends]
        floor += bool(ends) and all(e in gold for e in ends)
        ceil += any(e in gold for e in ends)
    return {"questions": len(questions), "all_ends_gold": floor, "some_end_gold": ceil}


# The KB relation of each MetaQA question-type word, seen from the movie (MetaQA's kb.txt).
METAQA_RELATIONS = {
    "director": "directed_by",
    "writer": "written_by",
    "actor": "starred_actors",
    "year": "release_year",
    "genre": "has_genre",
    "tags": "has_tags",
    "tag": "has_tags",
    "language": "in_language",
    "imdbrating": "has_imdb_rating",
    "imdbvotes": "has_imdb_votes",
}


def metaqa_gold_path(qtype: str) -> tuple[str, ...]:
    """The relation path a MetaQA question type asks about:
    movie_to_director -> (directed_by,); director_to_movie_to_genre -> (~directed_by, has_genre).
    """
    words = qtype.split("_to_")
    if len(words) < 2 or any(w != "movie" and w not in METAQA_RELATIONS for w in words):
        raise DataError(f"MetaQA question type {qtype!r}: expected e.g. movie_to_director")
    # every MetaQA relation starts at a movie, so a step away from a movie walks it forwards
    return tuple(
        METAQA_RELATIONS[b] if a == "movie" else "~" + METAQA_RELATIONS[a]
        for a, b in zip(words, words[1:], strict=False)
    )


_METAQA_ID = re.compile(r"^(\d+-hop)-(.+)-(\d+)$")


def metaqa_qtypes(root: str | Path, questions: Iterable[KGQuestion]) -> dict[str, str]:
    """Question id -> MetaQA question type, from ROOT/{n}-hop/qa_{stem}_qtype.txt.

    `rog build-data --format metaqa` names a question `{n}-hop-{file stem}-{line}`, and line i
    of MetaQA's qa_*_qtype.txt is the type of line i of the question file.
    """
    files: dict[Path, list[str]] = {}
    out = {}
    for q in questions:
        m = _METAQA_ID.match(q.id)
        if not m:
            raise DataError(
                f"question id {q.id!r} is not `{{n}}-hop-{{file}}-{{line}}`: build the data "
                "from MetaQA files with `rog build-data --format metaqa`"
            )
        hop, stem, line = m.group(1), m.group(2), int(m.group(3))
        stem = stem if stem.startswith("qa_") else "qa_" + stem
        path = Path(root) / hop / f"{stem}_qtype.txt"
        if path not in files:
            if not path.exists():
                raise DataError(f"{path} not found: --qtypes is MetaQA's directory")
            files[path] = path.read_text(encoding="utf-8").split("\n")
        out[q.id] = files[path][line - 1].strip()
    return out


_TARGET_COUNTS = (
    "no_target",
    "targets",
    "gold_in_targets",
    "gold_first",
    "with_wrong_target",
    "wrong_targets",
    "shorter_than_gold",
)


def target_check(
    kg,
    questions: Sequence[KGQuestion],
    qtypes: Mapping[str, str],
    targets: str = "auto",
    max_hops: int = 2,
    max_plans: int = 3,
    top: int = 15,
) -> dict:
    """Planning targets (`rog build-data --targets`) against the relation path each question
    asks about (`qtypes`: question id -> MetaQA type, see `metaqa_qtypes`).

    Counts over the questions: no_target; over those with targets: targets (in all),
    gold_in_targets, gold_first (the first target is the asked path), with_wrong_target
    (a question with a coincidental target), wrong_targets (in all), shorter_than_gold; and the
    asked paths and the `top` most common targets, as "r1 → r2" strings.
    """
    # consensus targets are weighed across the question set, so they come as one table
    table = (
        consensus_targets(kg, questions, max_hops, max_plans) if targets == "consensus" else None
    )
    c = dict.fromkeys(_TARGET_COUNTS, 0)
    gold_rel: Counter = Counter()
    target_rel: Counter = Counter()
    for q in questions:
        if q.id not in qtypes:
            raise DataError(f"question {q.id!r} has no question type")
        gold = metaqa_gold_path(qtypes[q.id])
        gold_rel[" → ".join(gold)] += 1
        if table is not None:
            got = table.get(q.id, [])
        else:
            got = training_targets(kg, q, max_hops, max_plans, targets)
        ts = [tuple(t) for t in got]
        if not ts:
            c["no_target"] += 1
            continue
        for t in ts:
            target_rel[" → ".join(t)] += 1
        c["targets"] += len(ts)
        c["gold_in_targets"] += gold in ts
        c["gold_first"] += ts[0] == gold
        c["with_wrong_target"] += any(t != gold for t in ts)
        c["wrong_targets"] += sum(t != gold for t in ts)
        c["shorter_than_gold"] += any(len(t) < len(gold) for t in ts)
    return {
        "questions": len(questions),
        **c,
        "gold_relations": dict(gold_rel.most_common()),
        "target_relations": dict(target_rel.most_common(top)),
    }


def _questions(data: str, split: str, limit: int) -> list[KGQuestion]:
    qs = load_split(data, split)
    return qs[:limit] if limit else qs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Diagnose RoG planning (prints JSON).")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plan-hits", help="how often a run's plans reach a gold answer")
    p.add_argument("--kg", required=True, help="KG directory (kg load)")
    p.add_argument("--data", required=True, help="rog build-data directory of the run")
    p.add_argument("--predictions", required=True, help="predictions-{mode}.jsonl of rog predict")
    p.add_argument("--split", default="test")
    p.add_argument("--margins", type=float, nargs="*", default=[], help="--plan-margin values")
    p.add_argument("--top-plans", type=int, default=None, help="cap on plans read, as rog predict")

    b = sub.add_parser("bounds", help="Hits@1 floor and ceiling from the rank planner's top plan")
    b.add_argument("--kg", required=True)
    b.add_argument("--data", required=True)
    b.add_argument("--ranker", default=None, help="rog train-planner output (default: MiniLM)")
    b.add_argument("--split", default="test")
    b.add_argument("--limit", type=int, default=100, help="first N questions (0: all)")
    b.add_argument("--max-paths", type=int, default=30, help="paths retrieved, as rog predict")
    b.add_argument("--hops", type=int, default=2, help="longest valid path ranked, as rog predict")

    t = sub.add_parser("targets", help="planning targets against MetaQA's question types")
    t.add_argument("--kg", required=True)
    t.add_argument("--data", required=True, nargs="+", help="rog build-data directories")
    t.add_argument("--qtypes", default="../shared/data/kg/metaqa_approx", help="MetaQA directory")
    t.add_argument("--targets", default="auto", choices=TARGETS, help="as rog build-data")
    t.add_argument("--split", default="train")
    t.add_argument("--limit", type=int, default=0, help="first N questions (0: all)")
    args = ap.parse_args(argv)

    from ragtune.kg import KG

    kg = KG.open(args.kg)
    if args.command == "plan-hits":
        from ragtune.rog.metrics import read_predictions

        out = plan_reach(
            kg,
            load_split(args.data, args.split),
            read_predictions(args.predictions),
            args.margins,
            args.top_plans,
        )
    elif args.command == "bounds":
        from ragtune.rog.rank import RankEmbedPlanner

        qs = _questions(args.data, args.split, args.limit)
        out = rank_bounds(
            kg, qs, RankEmbedPlanner(args.ranker), hops=args.hops, max_paths=args.max_paths
        )
    else:
        out = {}
        for d in args.data:
            qs = _questions(d, args.split, args.limit)
            out[d] = target_check(kg, qs, metaqa_qtypes(args.qtypes, qs), args.targets)
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
