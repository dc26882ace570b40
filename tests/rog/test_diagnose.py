"""ragtune.rog.diagnose on a hand-written film graph whose numbers can be counted by hand."""

import json

import pytest

from ragtune.errors import DataError
from ragtune.kg import KG
from ragtune.rog.data import KGQuestion
from ragtune.rog.diagnose import (
    main,
    metaqa_gold_path,
    metaqa_qtypes,
    plan_reach,
    rank_bounds,
    target_check,
)
from ragtune.rog.planner import Plan

TRIPLES = [
    ("Heat", "directed_by", "Mann"),
    ("Heat", "written_by", "Mann"),  # the director wrote it: written_by also reaches Mann
    ("Heat", "release_year", "1995"),
    ("Heat", "starred_actors", "Pacino"),
    ("Heat", "starred_actors", "De Niro"),
    ("Thief", "directed_by", "Mann"),
    ("Thief", "written_by", "Frank"),
    ("Thief", "release_year", "1981"),
    ("Alien", "directed_by", "Scott"),
    ("Alien", "written_by", "Obannon"),
    ("Alien", "release_year", "1979"),
    ("Alien", "has_tags", "Legend"),  # a tag that is also a film: a 1-hop shortcut to it
    ("Legend", "directed_by", "Scott"),
    ("Legend", "release_year", "1985"),
]


def q(i, text, answers, entity):
    return KGQuestion(id=f"q{i}", question=text, answers=answers, entities=[entity])


@pytest.fixture(scope="module")
def kg():
    return KG.build(TRIPLES)


def test_plan_reach_counts_top_some_and_per_margin(kg):
    qs = [
        q(1, "who directed Heat", ["Mann"], "Heat"),
        q(2, "who wrote Thief", ["Frank"], "Thief"),
        q(3, "when was Alien released", ["1979"], "Alien"),
        q(4, "who directed Alien", ["Scott"], "Alien"),
    ]

    def plans(*ps):
        return [{"relations": r, "score": s, "valid": True} for r, s in ps]

    rows = [
        # top plan reaches Mann, so does the second (Mann also wrote Heat)
        {"id": "q1", "plans": plans((["directed_by"], 0.9), (["written_by"], 0.85), (["release_year"], 0.1))},
        # top plan reaches Mann (not Frank); the second one reaches Frank
        {"id": "q2", "plans": plans((["directed_by"], 0.5), (["written_by"], 0.45), (["release_year"], 0.0))},
        # a free-decoded relation the graph lacks reaches nothing (and does not raise)
        {"id": "q3", "plans": plans((["invented"], 0.3), (["release_year"], 0.2))},
        {"id": "q4", "plans": []},
    ]  # fmt: skip
    got = plan_reach(kg, qs, rows, margins=[0.0, 0.15, 1.0])
    assert got["questions"] == 4
    assert got["top_plan_reaches_gold"] == 1  # q1
    assert got["some_plan_reaches_gold"] == 3  # q1, q2, q3
    # margin 0: the top plan alone (q4 has none): 3 read over 4 questions, q1's reaches gold
    # margin 0.15: two plans each for q1-q3 (the third ones score too low), all three reach
    # margin 1: every plan, 3 + 3 + 2
    assert got["margins"] == [
        {"margin": 0.0, "plans_read": 0.75, "reaches_gold": 1},
        {"margin": 0.15, "plans_read": 1.5, "reaches_gold": 3},
        {"margin": 1.0, "plans_read": 2.0, "reaches_gold": 3},
    ]
    # --top-plans 2 caps what the margin admits, as rog predict does
    capped = plan_reach(kg, qs, rows, margins=[1.0], top_plans=2)
    assert capped["margins"] == [{"margin": 1.0, "plans_read": 1.5, "reaches_gold": 3}]
    with pytest.raises(DataError, match="not among the questions"):
        plan_reach(kg, qs[:1], rows[1:2])


class FixedPlanner:
    """Ranks by a table (question -> top relations); checks it was offered only valid paths."""

    def __init__(self, top):
        self.top = top

    def plan(self, questions, allowed):
        out = []
        for text, valid in zip(questions, allowed, strict=True):
            rels = self.top.get(text)
            assert rels is None or tuple(rels) in valid
            out.append([Plan(rels, 1.0)] if rels else [])
        return out


def test_rank_bounds_floor_and_ceiling(kg):
    also = "what did the director of Heat also direct"
    qs = [
        q(1, "who directed Heat", ["Mann"], "Heat"),  # ends {Mann}: all gold
        q(2, also, ["Thief"], "Heat"),  # ends {Heat, Thief}; Heat is the question's own
        q(3, "when was Alien released", ["1979"], "Alien"),  # ends {Obannon}: none gold
        q(4, "who directed Legend", ["Scott"], "Legend"),  # no plan: nothing to read
        q(5, "who starred in Heat", ["Pacino"], "Heat"),  # ends {De Niro, Pacino}: one gold
    ]
    planner = FixedPlanner(
        {
            "who directed Heat": ["directed_by"],
            also: ["directed_by", "~directed_by"],
            "when was Alien released": ["written_by"],
            "who starred in Heat": ["starred_actors"],
        }
    )
    got = rank_bounds(kg, qs, planner)
    assert got == {"questions": 5, "all_ends_gold": 2, "some_end_gold": 3}  # q1, q2 | + q5
    # keeping the question's own entity among the ends, q2's first answer may be "Heat"
    kept = rank_bounds(kg, qs, planner, exclude_question_entities=False)
    assert kept == {"questions": 5, "all_ends_gold": 1, "some_end_gold": 3}
    # a cap of one path leaves one end per question, so floor and ceiling meet: q1, q2 and
    # q5 if the seeded shuffle keeps Pacino
    one = rank_bounds(kg, qs, planner, max_paths=1)
    assert one["all_ends_gold"] == one["some_end_gold"] in (2, 3)


def test_metaqa_gold_path():
    assert metaqa_gold_path("movie_to_director") == ("directed_by",)
    assert metaqa_gold_path("director_to_movie") == ("~directed_by",)
    assert metaqa_gold_path("movie_to_director_to_movie") == ("directed_by", "~directed_by")
    assert metaqa_gold_path("director_to_movie_to_genre") == ("~directed_by", "has_genre")
    with pytest.raises(DataError, match="question type"):
        metaqa_gold_path("movie_to_budget")


TARGET_QS = [
    # (question, answers, entity, MetaQA type)
    ("who directed Heat", ["Mann"], "Heat", "movie_to_director"),  # + written_by (wrong)
    ("who wrote Thief", ["Frank"], "Thief", "movie_to_writer"),  # written_by only
    ("who wrote Heat", ["Mann"], "Heat", "movie_to_writer"),  # directed_by first (wrong)
    # directed_by → ~directed_by, and written_by → ~directed_by (wrong), in that order
    ("what did the director of Heat also direct", ["Thief"], "Heat", "movie_to_director_to_movie"),
    # the tag is a 1-hop shortcut: the only target, wrong and shorter than the asked path
    ("what did the director of Alien also direct", ["Legend"], "Alien", "movie_to_director_to_movie"),
    ("when was Alien released", ["1979"], "Alien", "movie_to_year"),
    ("who directed Alien", ["Ridley"], "Alien", "movie_to_director"),  # answer not in the graph
]  # fmt: skip


def _target_questions():
    qs = [
        KGQuestion(id=f"1-hop-dev-{i}", question=t, answers=a, entities=[e])
        for i, (t, a, e, _) in enumerate(TARGET_QS, 1)
    ]
    return qs, {x.id: row[3] for x, row in zip(qs, TARGET_QS, strict=True)}


EXPECTED_TARGETS = {
    "questions": 7,
    "no_target": 1,
    "targets": 9,  # 2 + 1 + 2 + 2 + 1 + 1
    "gold_in_targets": 5,  # all with a target but the tag shortcut
    "gold_first": 4,  # not "who wrote Heat", not the shortcut
    "with_wrong_target": 4,
    "wrong_targets": 4,
    "shorter_than_gold": 1,
    "gold_relations": {
        "directed_by": 2,
        "written_by": 2,
        "directed_by → ~directed_by": 2,
        "release_year": 1,
    },
    "target_relations": {
        "written_by": 3,
        "directed_by": 2,
        "directed_by → ~directed_by": 1,
        "written_by → ~directed_by": 1,
        "has_tags": 1,
        "release_year": 1,
    },
}


def test_target_check_counts_coincidental_targets(kg):
    qs, qtypes = _target_questions()
    got = target_check(kg, qs, qtypes)
    assert got == EXPECTED_TARGETS
    assert list(got["target_relations"])[0] == "written_by"  # most common first
    with pytest.raises(DataError, match="no question type"):
        target_check(kg, qs, {})


def test_target_check_consensus_drops_what_auto_keeps():
    # twelve films; the director also wrote every third one, so "who directed" / "who wrote"
    # of films 0, 3, 6, 9 each get a coincidental second target from RoG's shortest paths
    triples, qs, qtypes = [], [], {}
    for i in range(12):
        d, w = f"Dir{i % 4}", f"Dir{i % 4}" if i % 3 == 0 else f"Wri{i % 5}"
        triples += [(f"Film{i}", "directed_by", d), (f"Film{i}", "written_by", w)]
        for j, (text, ans, t) in enumerate(
            [(f"who directed Film{i}", d, "movie_to_director"), (f"who wrote Film{i}", w, "movie_to_writer")]
        ):  # fmt: skip
            qs.append(
                KGQuestion(id=f"q{i}-{j}", question=text, answers=[ans], entities=[f"Film{i}"])
            )
            qtypes[qs[-1].id] = t
    kg = KG.build(triples)
    auto = target_check(kg, qs, qtypes)
    assert (auto["targets"], auto["wrong_targets"], auto["with_wrong_target"]) == (32, 8, 8)
    # name order puts directed_by first: the 4 "who wrote" questions with two targets miss
    assert auto["gold_first"] == 20
    cons = target_check(kg, qs, qtypes, targets="consensus")
    assert (cons["targets"], cons["wrong_targets"], cons["gold_first"]) == (24, 0, 24)


def test_metaqa_qtypes_reads_the_line_of_each_question(tmp_path):
    (tmp_path / "2-hop").mkdir()
    (tmp_path / "2-hop/qa_dev_qtype.txt").write_text("movie_to_director\nmovie_to_writer\n")
    qs = [KGQuestion(id="2-hop-dev-2", question="x", answers=["y"])]
    assert metaqa_qtypes(tmp_path, qs) == {"2-hop-dev-2": "movie_to_writer"}
    with pytest.raises(DataError, match="not found"):
        metaqa_qtypes(tmp_path, [KGQuestion(id="1-hop-dev-1", question="x", answers=["y"])])
    with pytest.raises(DataError, match="hop"):
        metaqa_qtypes(tmp_path, [KGQuestion(id="q1", question="x", answers=["y"])])


def test_command_line_plan_hits_and_targets(tmp_path, capsys):
    KG.build(TRIPLES, tmp_path / "kg")
    qs, qtypes = _target_questions()
    data = tmp_path / "data/questions"
    data.mkdir(parents=True)
    lines = "".join(json.dumps(x.to_dict()) + "\n" for x in qs)
    (data / "train.jsonl").write_text(lines)
    (data / "test.jsonl").write_text(lines)
    (tmp_path / "mq/1-hop").mkdir(parents=True)
    (tmp_path / "mq/1-hop/qa_dev_qtype.txt").write_text("\n".join(r[3] for r in TARGET_QS))
    kg, d = str(tmp_path / "kg"), str(tmp_path / "data")

    main(["targets", "--kg", kg, "--data", d, "--qtypes", str(tmp_path / "mq")])
    assert json.loads(capsys.readouterr().out) == {d: EXPECTED_TARGETS}

    pred = tmp_path / "predictions-grounded.jsonl"
    row = {"prediction": "Mann", "ground_truth": ["Mann"], "id": "1-hop-dev-1"}
    row["plans"] = [{"relations": ["written_by"], "score": -0.1, "valid": True}]
    pred.write_text(json.dumps(row) + "\n")
    main(["plan-hits", "--kg", kg, "--data", d, "--predictions", str(pred), "--margins", "0.5"])
    got = json.loads(capsys.readouterr().out)
    assert got["top_plan_reaches_gold"] == 1
    assert got["margins"] == [{"margin": 0.5, "plans_read": 1.0, "reaches_gold": 1}]
