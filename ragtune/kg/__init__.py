"""Knowledge graphs for Reasoning on Graphs (RoG): load triples, store, search paths.

    from ragtune.kg import KG, question_entities
    kg = KG.from_files(["kb.txt"], out_dir="out/kg")       # later: KG.open("out/kg")
    ids = [kg.find_entity(n) for n in question_entities(kg, "who directed [Heat]")]
    paths = kg.follow(ids, ["directed_by"])                # RoG retrieval of one plan
    kg.render(paths)       # ["Heat -> directed_by -> Michael Mann"]
    kg.shortest_relation_paths(ids, kg.ids(["Michael Mann"]))   # [("directed_by",)]
    kg.relation_paths(ids, hops=2)                         # plans that exist from Heat

A relation written ``~r`` walks ``r`` backwards (object to subject).
"""

from ragtune.kg.entities import question_entities
from ragtune.kg.graph import INVERSE, KG, inverse
from ragtune.kg.paths import (
    ManyPaths,
    Paths,
    follow,
    follow_many,
    relation_paths,
    render,
    shortest_relation_paths,
)
from ragtune.kg.triples import TripleReport, detect_format, load_triples, read_triples

__all__ = [
    "INVERSE",
    "KG",
    "ManyPaths",
    "Paths",
    "TripleReport",
    "detect_format",
    "follow",
    "follow_many",
    "inverse",
    "load_triples",
    "question_entities",
    "read_triples",
    "relation_paths",
    "render",
    "shortest_relation_paths",
]
