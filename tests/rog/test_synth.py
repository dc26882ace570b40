"""`ragtune rog synth`: templated multi-hop questions on a film graph counted by hand, fed to
`rog build-data` as a user would."""

import json

import pytest

from ragtune.cli import main
from ragtune.errors import ConfigError, DataError
from ragtune.kg import KG
from ragtune.rog.data import BuildDataConfig, build_rog_data, load_split
from ragtune.rog.synth import SynthConfig, read_templates, synth_questions

TRIPLES = [
    ("Heat", "directed_by", "Mann"),
    ("Thief", "directed_by", "Mann"),
    ("Alien", "directed_by", "Scott"),
    ("Legend", "directed_by", "Scott"),
    ("Heat", "starred_actors", "Pacino"),
    ("Heat", "starred_actors", "De Niro"),
    ("Thief", "starred_actors", "Caan"),
    ("Alien", "starred_actors", "Weaver"),
    ("Legend", "starred_actors", "Cruise"),
    ("Heat", "release_year", "1995"),
    ("Thief", "release_year", "1981"),
    ("Alien", "release_year", "1979"),
]

TEMPLATES = """\
- path: [directed_by, ~directed_by, starred_actors]
  texts: ["who acted in the films directed by the director of {}"]
- path: [directed_by, ~directed_by, release_year]
  texts: ["when were the films by the director of {} released", "the director of {} made films in which years"]
"""


@pytest.fixture()
def kg_dir(tmp_path):
    KG.build(TRIPLES).save(tmp_path / "kg")
    (tmp_path / "t.yaml").write_text(TEMPLATES)
    return tmp_path


def test_answers_are_every_walk_end_without_the_topic(kg_dir):
    out = kg_dir / "q.jsonl"
    m = synth_questions(
        SynthConfig(kg=str(kg_dir / "kg"), templates=str(kg_dir / "t.yaml"), out=str(out))
    )
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    # template 1: each of the 4 films starts a question; template 2: Legend has no year, but
    # its director's Alien has one, so all 4 films qualify too
    assert m["per_template"] == [4, 4] and m["questions"] == 8
    got = {(r["gold_relations"][0][-1], r["entities"][0]): r["answers"] for r in rows}
    assert got[("starred_actors", "Heat")] == ["Caan", "De Niro", "Pacino"]
    assert got[("starred_actors", "Alien")] == ["Cruise", "Weaver"]
    assert got[("release_year", "Legend")] == ["1979"]
    assert got[("release_year", "Thief")] == ["1981", "1995"]
    for r in rows:
        assert r["exclude_entities"] is True
        assert r["entities"][0] in r["question"]


def test_same_seed_same_file_and_max_answers_skips(kg_dir):
    kw = dict(kg=str(kg_dir / "kg"), templates=str(kg_dir / "t.yaml"), seed=3)
    a, b = kg_dir / "a.jsonl", kg_dir / "b.jsonl"
    synth_questions(SynthConfig(out=str(a), **kw))
    synth_questions(SynthConfig(out=str(b), **kw))
    assert a.read_bytes() == b.read_bytes()
    m = synth_questions(SynthConfig(out=str(a), max_answers=2, per_template=1, **kw))
    rows = [json.loads(x) for x in a.read_text().splitlines()]
    assert m["questions"] == len(rows) == 2 and all(len(r["answers"]) <= 2 for r in rows)


def test_cli_then_build_data_uses_the_template_path(kg_dir, capsys):
    out = kg_dir / "q.jsonl"
    main(
        [
            "rog",
            "synth",
            str(kg_dir / "kg"),
            "--templates",
            str(kg_dir / "t.yaml"),
            "--out",
            str(out),
        ]
    )
    assert "wrote 8 questions" in capsys.readouterr().out
    build_rog_data(
        BuildDataConfig(
            kg=str(kg_dir / "kg"),
            questions=str(out),
            format="jsonl",
            out=str(kg_dir / "d"),
            test=0.0,
            max_hops=3,
        )
    )
    train = load_split(kg_dir / "d", "train")
    assert len(train) == 8
    chats = [
        json.loads(x) for x in (kg_dir / "d" / "chat" / "train.jsonl").read_text().splitlines()
    ]
    plans = [
        c["messages"][-1]["content"] for c in chats if "<PATH>" in c["messages"][-1]["content"]
    ]
    assert "<PATH>directed_by<SEP>~directed_by<SEP>starred_actors</PATH>" in plans


def test_bad_templates_name_the_template_and_fix(kg_dir):
    bad = kg_dir / "bad.yaml"
    bad.write_text("- path: [directed_by]\n  texts: ['who directed it']\n")
    with pytest.raises(DataError, match=r"template 1.*exactly once"):
        read_templates(bad)
    bad.write_text("- path: [directed_by]\n")
    with pytest.raises(DataError, match="'path' and 'texts'"):
        read_templates(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        read_templates(kg_dir / "missing.yaml")
    bad.write_text("- path: [made_by]\n  texts: ['who made {}']\n")
    with pytest.raises((ConfigError, DataError), match="made_by"):
        synth_questions(
            SynthConfig(kg=str(kg_dir / "kg"), templates=str(bad), out=str(kg_dir / "x.jsonl"))
        )
