"""The KG store: ids, de-duplication, parallel relations, save/open round trip, lookups."""

import json

import numpy as np
import pytest

from ragtune.errors import ConfigError, DataError
from ragtune.kg import INVERSE, KG, inverse

MOVIES = [
    ("Heat", "directed_by", "Michael Mann"),
    ("Heat", "written_by", "Michael Mann"),  # parallel relation between the same pair
    ("Heat", "starred_actors", "Al Pacino"),
    ("Heat", "starred_actors", "Robert De Niro"),
    ("Heat", "directed_by", "Michael Mann"),  # duplicate triple
    ("Collateral", "directed_by", "Michael Mann"),
    ("Ronin", "starred_actors", "Robert De Niro"),
]


@pytest.fixture
def kg():
    return KG.build(MOVIES)


def test_counts_dedup_and_parallel_relations(kg):
    assert len(kg) == 6 and kg.num_relations == 3 and kg.num_edges == 6
    assert kg.params["duplicates_dropped"] == 1
    heat, mann = kg.entity_id("Heat"), kg.entity_id("Michael Mann")
    to_mann = kg.fwd.rel[kg.fwd.indptr[heat] : kg.fwd.indptr[heat + 1]][
        kg.fwd.nbr[kg.fwd.indptr[heat] : kg.fwd.indptr[heat + 1]] == mann
    ]
    assert sorted(kg.relation_names[r] for r in to_mann) == ["directed_by", "written_by"]


def test_names_sorted_and_csr_sorted(kg):
    assert kg.entity_names == sorted(kg.entity_names)
    assert kg.relation_names == ["directed_by", "starred_actors", "written_by"]
    for adj in (kg.fwd, kg.rev):
        assert np.all(np.diff(adj.key) >= 0)
        assert adj.indptr[-1] == kg.num_edges
        src = np.repeat(np.arange(len(kg)), np.diff(adj.indptr))
        np.testing.assert_array_equal(adj.key, src * kg.num_relations + adj.rel)
        # within one (entity, relation) slice, neighbours ascend
        same = np.diff(adj.key) == 0
        assert np.all(np.diff(adj.nbr)[same] > 0)


def test_lookups(kg):
    assert kg.entity_names[kg.entity_id("Heat")] == "Heat"
    assert kg.entity_id("heat") is None and kg.entity_id("Nope") is None
    assert kg.find_entity(" heat ") == kg.entity_id("Heat")
    assert kg.find_entity("ROBERT DE NIRO") == kg.entity_id("Robert De Niro")
    assert kg.find_entity("nobody") is None
    np.testing.assert_array_equal(kg.ids(["Ronin", "Heat"]), [kg.entity_id("Ronin"), 2])
    with pytest.raises(DataError, match="unknown entity 'heat'; did you mean 'Heat'"):
        kg.ids(["heat"])
    assert kg.relation_id("directed_by") == 0 and kg.relation_id("~directed_by") is None
    with pytest.raises(DataError, match="did you mean 'directed_by'"):
        kg.directed_relation("directed")


def test_neighbors_and_inverse(kg):
    mann, heat = kg.entity_id("Michael Mann"), kg.entity_id("Heat")
    names = lambda ids: [kg.entity_names[i] for i in ids]  # noqa: E731
    assert names(kg.neighbors(mann, "~directed_by")) == ["Collateral", "Heat"]
    assert names(kg.neighbors(heat, "directed_by")) == ["Michael Mann"]
    assert names(kg.neighbors(heat, "~directed_by")) == []
    assert names(kg.neighbors(heat)) == ["Al Pacino", "Michael Mann", "Robert De Niro"]
    assert INVERSE == "~" and inverse("r") == "~r" and inverse("~r") == "r"
    assert kg.relation_name(kg.directed_relation("~written_by")) == "~written_by"


def test_save_open_round_trip_memory_mapped(kg, tmp_path):
    out = kg.save(tmp_path / "kg")
    params = json.loads((out / "params.json").read_text())
    assert params["format"] == "ragtune-kg" and params["version"] == 1
    assert params["entities"] == 6 and params["edges"] == 6
    assert (out / "entities.txt").read_text().splitlines() == kg.entity_names
    assert not list(tmp_path.glob(".kg.tmp-*"))
    back = KG.open(out)
    assert back.entity_names == kg.entity_names and back.relation_names == kg.relation_names
    for a, b in zip((*kg.fwd, *kg.rev), (*back.fwd, *back.rev), strict=True):
        np.testing.assert_array_equal(a, b)
        assert isinstance(b.base, np.memmap) and not b.flags.writeable
    assert back.path == out and "at " in repr(back)
    heat = back.entity_id("Heat")
    assert back.render(back.follow([heat], ["directed_by"])) == [
        "Heat -> directed_by -> Michael Mann"
    ]


def test_build_into_dir_and_replace(tmp_path):
    out = tmp_path / "kg"
    KG.build(MOVIES, out)
    kg = KG.build([("a", "r", "b")], out)  # replaces the finished store
    assert len(kg) == 2 and isinstance(kg.fwd.nbr.base, np.memmap)
    assert [p.name for p in tmp_path.iterdir()] == ["kg"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="is not a ragtune KG"):
        kg.save(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_open_errors(tmp_path):
    with pytest.raises(ConfigError, match="ragtune kg load"):
        KG.open(tmp_path)
    out = KG.build(MOVIES).save(tmp_path / "kg")
    params = json.loads((out / "params.json").read_text())
    (out / "params.json").write_text(json.dumps({**params, "version": 99}))
    with pytest.raises(ConfigError, match="version 99"):
        KG.open(out)


def test_bad_names_rejected():
    with pytest.raises(DataError, match="no triples"):
        KG.build([])
    with pytest.raises(DataError, match="starts with '~'"):
        KG.build([("a", "~r", "b")])
    with pytest.raises(DataError, match="line break"):
        KG.build([("a\nb", "r", "b")])
    with pytest.raises(DataError, match="must be \\(subject, relation, object\\)"):
        KG.build([("a", "r", "b"), ("a", "r")])
    with pytest.raises(DataError, match="not a string"):
        KG.build([("a", "r", 5)])


def test_from_files(tmp_path):
    (tmp_path / "a.tsv").write_text("Heat\tdirected_by\tMichael Mann\nbad\n")
    (tmp_path / "b.txt").write_text("Collateral|directed_by|Michael Mann\n")
    kg = KG.from_files([tmp_path / "a.tsv", tmp_path / "b.txt"], tmp_path / "kg", strict=False)
    assert len(kg) == 3 and kg.num_edges == 2 and kg.path == tmp_path / "kg"
    assert kg.report.summary() == "2 files, 2 triples, 1 skipped line"
    src = json.loads((tmp_path / "kg" / "params.json").read_text())["source"]
    assert src["skipped_lines"] == 1 and src["skipped"][0]["line"] == 2
    assert src["formats"] == {str(tmp_path / "a.tsv"): "tsv", str(tmp_path / "b.txt"): "pipe"}
    with pytest.raises(DataError, match=r"a\.tsv:2:"):
        KG.from_files([tmp_path / "a.tsv"])
