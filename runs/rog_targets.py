"""Issue 21 item 1: what RoG's planning targets are on MetaQA-approx (counts in docs/rog.md).

    .venv/bin/python runs/rog_targets.py runs/out/i21/kg runs/out/i21/data-1 runs/out/i21/data-2 [--consensus]

MetaQA's qa_dev_qtype.txt names each question's relation chain (movie_to_director, ...), so the
planning targets `rog build-data` writes (shortest relation paths, ranked by answer precision,
top 3) can be checked against the relation path the question asks about.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from ragtune.kg import KG
from ragtune.rog.data import consensus_targets, load_split, training_targets

QTYPES = Path("../shared/data/kg/metaqa_approx")
# the KB relation of each MetaQA type word, seen from the movie
FROM_MOVIE = {
    "director": "directed_by",
    "writer": "written_by",
    "actor": "starred_actors",
    "year": "release_year",
    "genre": "has_genre",
    "tags": "has_tags",
    "language": "in_language",
    "imdbrating": "has_imdb_rating",
    "imdbvotes": "has_imdb_votes",
    "tag": "has_tags",
}


def gold_path(qtype: str) -> tuple[str, ...]:
    """movie_to_director_to_movie -> (directed_by, ~directed_by)."""
    words = qtype.split("_to_")
    out = []
    for a, b in zip(words, words[1:], strict=False):
        if a == "movie":
            out.append(FROM_MOVIE[b])
        else:
            out.append("~" + FROM_MOVIE[a])
    return tuple(out)


def qtypes(hop: int) -> list[str]:
    return (QTYPES / f"{hop}-hop" / "qa_dev_qtype.txt").read_text().split("\n")


KIND = "auto"  # --targets of `rog build-data`; `--consensus` checks the consensus targets


def main(kg_dir: str, *data_dirs: str) -> None:
    kg = KG.open(kg_dir)
    report = {}
    for d in data_dirs:
        qs = load_split(d, "train")
        hop = int(qs[0].id.split("-")[0])
        types = qtypes(hop)
        n = len(qs)
        c = Counter()
        target_rel = Counter()
        gold_rel = Counter()
        table = consensus_targets(kg, qs) if KIND == "consensus" else None
        for q in qs:
            line = int(q.id.rsplit("-", 1)[1])
            gold = gold_path(types[line - 1])
            gold_rel[" → ".join(gold)] += 1
            ts = table.get(q.id, []) if table is not None else training_targets(kg, q, 2, 3, KIND)
            ts = [tuple(t) for t in ts]
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
        report[d] = {
            "questions": n,
            **c,
            "gold_relations": dict(gold_rel.most_common()),
            "target_relations": dict(target_rel.most_common(15)),
        }
    print(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--consensus" in args:
        args.remove("--consensus")
        KIND = "consensus"
    main(*args)
