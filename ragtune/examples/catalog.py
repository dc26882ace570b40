"""A fictional film catalogue as a knowledge graph, with 1- and 2-hop questions.

Invented titles and people, so no model knows the answers: they must come from the graph. The
2-hop "recommend" questions are the explainable-recommendation case: "films like [X]" means
films sharing X's director, and the reasoning path is the explanation. They carry
`"exclude_entities": true`: X itself, which the walk X -> director -> X reaches, is no answer.

    python -m ragtune.examples.catalog out/catalog          # kb.tsv + questions.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

FIRST = "Ada Bram Cleo Dario Esme Fenn Gia Hugo Iris Jovan Kaia Lior Mira Nilo Orla Pim".split()
LAST = "Vance Quill Marr Oduya Sarn Tellis Wren Brisk Calloway Denholm Eskar Fairlow".split()
ADJ = "Silent Copper Hollow Northern Paper Glass Midnight Amber Crooked Salt Velvet Iron".split()
NOUN = "Harbour Orchard Lantern Meridian Tide Archive Garden Compass Signal Ember Quarry".split()
GENRES = ["drama", "thriller", "comedy", "documentary", "science fiction", "western"]
LANGS = ["Velish", "Ostran", "Maru", "Kettic"]  # invented languages too

# (relation, question templates for 1 hop from a film)
ONE_HOP = {
    "directed_by": ["who directed [{e}]", "who is the director of [{e}]"],
    "starred_actors": ["who acted in [{e}]", "which actors star in [{e}]"],
    "has_genre": ["what genre is [{e}]", "what kind of film is [{e}]"],
    "release_year": ["when was [{e}] released", "what year did [{e}] come out"],
    "in_language": ["what language is [{e}] in"],
}
# (plan, question templates, start is a film or a person)
TWO_HOP = {
    ("directed_by", "~directed_by"): [
        "recommend films like [{e}]",
        "what other films did the director of [{e}] make",
    ],
    ("~starred_actors", "directed_by"): ["who directed the films starring [{e}]"],
    ("~directed_by", "has_genre"): ["what genres are the films directed by [{e}]"],
    ("~starred_actors", "release_year"): ["when were the films starring [{e}] released"],
}


def make_catalog(n_films: int = 60, seed: int = 0):
    """(triples, questions): triples as (subject, relation, object); questions as dicts."""
    rng = np.random.default_rng(seed)
    people = sorted({f"{a} {b}" for a in FIRST for b in LAST})
    rng.shuffle(people)
    directors, actors = people[:12], people[12:60]
    titles = sorted({f"The {a} {b}" for a in ADJ for b in NOUN})
    rng.shuffle(titles)
    films = titles[:n_films]
    triples: list[tuple[str, str, str]] = []
    for f in films:
        triples.append((f, "directed_by", directors[int(rng.integers(len(directors)))]))
        for a in rng.choice(len(actors), size=2, replace=False):
            triples.append((f, "starred_actors", actors[int(a)]))
        triples.append((f, "has_genre", GENRES[int(rng.integers(len(GENRES)))]))
        triples.append((f, "release_year", str(int(rng.integers(1990, 2025)))))
        triples.append((f, "in_language", LANGS[int(rng.integers(len(LANGS)))]))
    fwd: dict[tuple[str, str], list[str]] = {}
    for s, r, o in triples:
        fwd.setdefault((s, r), []).append(o)
        fwd.setdefault((o, "~" + r), []).append(s)

    def follow(e: str, plan: tuple[str, ...]) -> list[str]:
        ends = {e}
        for r in plan:
            ends = {o for x in ends for o in fwd.get((x, r), [])}
        if plan == ("directed_by", "~directed_by"):
            ends.discard(e)  # "films like X": not X itself
        return sorted(ends)

    questions = []
    for i, f in enumerate(films):
        r = list(ONE_HOP)[i % len(ONE_HOP)]
        for t in ONE_HOP[r]:
            questions.append({"question": t.format(e=f), "answers": follow(f, (r,)), "hops": 1})
    starts = {"directed_by": films, "~starred_actors": actors, "~directed_by": directors}
    for plan, temps in TWO_HOP.items():
        pool = [e for e in starts[plan[0]] if follow(e, plan)]
        for j, e in enumerate(pool[:24]):
            t = temps[j % len(temps)]
            q = {"question": t.format(e=e), "answers": follow(e, plan), "hops": 2}
            if plan == ("directed_by", "~directed_by"):
                q["exclude_entities"] = True  # a recommendation: never the film asked about
            questions.append(q)
    for k, q in enumerate(questions):
        q["id"] = f"catalog-{k}"
    return triples, questions


def write_catalog(out: str | Path, n_films: int = 60, seed: int = 0) -> tuple[Path, Path]:
    """Write `kb.tsv` and `questions.jsonl` (MetaQA-style [bracketed] topic entities)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    triples, questions = make_catalog(n_films, seed)
    kb, qf = out / "kb.tsv", out / "questions.jsonl"
    kb.write_text("".join(f"{s}\t{r}\t{o}\n" for s, r, o in triples), encoding="utf-8")
    qf.write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    return kb, qf


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--films", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    kb, qf = write_catalog(a.out, a.films, a.seed)
    print(f"wrote {kb} and {qf}")
