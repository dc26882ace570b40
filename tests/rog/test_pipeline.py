"""RoG end to end on the shipped film catalogue: data building, retrieval modes, CLI."""

import json

import pytest

from ragtune.cli import main
from ragtune.errors import ConfigError
from ragtune.examples.catalog import write_catalog
from ragtune.kg import KG
from ragtune.rog.data import (
    BuildDataConfig,
    build_data,
    read_questions,
    split_questions,
    training_targets,
)
from ragtune.rog.pipeline import RoG
from ragtune.rog.prompts import PLAN_INSTRUCTION
from ragtune.rog.retrieve import retrieve_paths
from ragtune.testing import DummyLM


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    d = tmp_path_factory.mktemp("catalog")
    kb, qf = write_catalog(d)
    return KG.from_files([kb], d / "kg"), read_questions("jsonl", qf), d


def test_questions_read_with_marked_entities_and_split_by_group(catalog):
    kg, qs, _ = catalog
    assert all(q.entities and "[" not in q.question for q in qs)
    sp = split_questions(qs, seed=0, test=0.2)
    groups = lambda s: {(tuple(q.entities), tuple(sorted(q.answers))) for q in sp[s]}  # noqa: E731
    assert not groups("train") & groups("test")
    assert abs(len(sp["test"]) / len(qs) - 0.2) < 0.08


def test_training_targets_are_shortest_paths_ranked_by_answer_precision(catalog):
    kg, qs, _ = catalog
    rec = next(q for q in qs if q.question.startswith("recommend films like"))
    plans = training_targets(kg, rec)
    # the shared director explains "films like X" best; shared genre/language are noisier
    assert plans[0] == ["directed_by", "~directed_by"]
    one = next(q for q in qs if q.question.startswith("who directed "))
    assert training_targets(kg, one) == [["directed_by"]]


def test_retrieval_grounds_plans_and_flags_invalid_ones(catalog):
    kg, qs, _ = catalog
    q = next(q for q in qs if q.question.startswith("who directed the films starring"))
    ids = [kg.find_entity(e) for e in q.entities]
    got = retrieve_paths(kg, ids, [["~starred_actors", "directed_by"], ["no_such_rel"]])
    assert got.valid == [True, False]
    assert set(got.ends) == set(q.answers)
    assert all(p[0] == q.entities[0] and p[1] == "~starred_actors" for p in got.paths)
    capped = retrieve_paths(kg, ids, [["~starred_actors"], ["~starred_actors", "has_genre"]], 2)
    # the cap keeps 2 paths, one from each plan (round robin), and says it cut some
    assert sorted(len(p) for p in capped.paths) == [3, 5] and capped.truncated
    assert {p[1] for p in capped.paths} == {"~starred_actors"}  # both plans' paths start so


def test_modes_with_a_scripted_reasoner(catalog):
    kg, qs, _ = catalog
    q = next(q for q in qs if q.question.startswith("who directed ") and "films" not in q.question)

    def reply(messages):
        text = messages[-1]["content"]
        if "Reasoning Paths:" in text:  # answer with the last entity of the first path
            first = text.split("Reasoning Paths:\n")[1].split("\n")[0]
            return first.split(" -> ")[-1]
        return "no idea"

    rog = RoG(kg, DummyLM(reply), max_paths=50)
    lm_only = rog.ask(q.question, q.entities, mode="lm")
    assert lm_only.answers == ["no idea"] and lm_only.paths == []
    paths = rog.ask(q.question, q.entities, mode="paths")
    assert paths.paths and all(p[0] == q.entities[0] for p in paths.paths)
    d = paths.to_dict()
    assert set(d) >= {"answers", "paths", "rendered", "plans", "entities", "supporting"}
    # free planning with an endpoint-style LM (no beams): plans parsed from its reply
    planner = DummyLM(
        lambda m: "<PATH>directed_by</PATH>" if PLAN_INSTRUCTION in m[-1]["content"] else ""
    )
    rog2 = RoG(kg, DummyLM(reply), planner_lm=planner, mode="rog")
    a = rog2.ask(q.question, q.entities)
    assert a.plans == [{"relations": ["directed_by"], "score": 0.0, "valid": True}]
    assert a.answers == q.answers and a.supporting == a.rendered

    # top_plans=1 (RoG's K): only the best plan's paths are retrieved; every plan still shown
    two = DummyLM(
        lambda m: (
            "<PATH>directed_by</PATH>\n<PATH>starred_actors</PATH>"
            if PLAN_INSTRUCTION in m[-1]["content"]
            else ""
        )
    )
    both = RoG(kg, DummyLM(reply), planner_lm=two, mode="rog").ask(q.question, q.entities)
    top1 = RoG(kg, DummyLM(reply), planner_lm=two, mode="rog", top_plans=1).ask(
        q.question, q.entities
    )
    assert [p["relations"] for p in top1.plans] == [["directed_by"], ["starred_actors"]]
    assert [p["valid"] for p in top1.plans] == [True, True]
    assert all(p[1] == "directed_by" for p in top1.paths)
    assert any(p[1] == "starred_actors" for p in both.paths) and len(both.paths) > len(top1.paths)
    with pytest.raises(ConfigError, match="top_plans"):
        RoG(kg, DummyLM(reply), top_plans=0)


def test_build_data_and_cli(catalog, tmp_path, capsys):
    kg, qs, d = catalog
    m = build_data(kg, split_questions(qs, 0, 0.2), BuildDataConfig(out=str(tmp_path / "data")))
    tr = m["splits"]["train"]
    assert tr["planning"] >= tr["questions"] - tr["no_target"] and tr["reasoning"] > 0
    rows = [json.loads(x) for x in (tmp_path / "data/chat/train.jsonl").read_text().splitlines()]
    plans = [r for r in rows if r["messages"][0]["content"].startswith(PLAN_INSTRUCTION)]
    assert plans and all(r["messages"][1]["content"].startswith("<PATH>") for r in plans)
    main(
        [
            "rog",
            "build-data",
            str(d / "kg"),
            str(d / "questions.jsonl"),
            "--out",
            str(tmp_path / "cli"),
        ]
    )
    assert (tmp_path / "cli/questions/test.jsonl").exists()
    main(
        [
            "rog",
            "ask",
            str(d / "kg"),
            "who directed [The Salt Ember]",
            "--model",
            "dummy",
            "--mode",
            "paths",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out.split("wrote")[-1].split("\n", 1)[1])
    assert out["entities"] == ["The Salt Ember"] and out["paths"]


def test_a_hub_does_not_crowd_out_other_entities_and_odd_plans_are_invalid(tmp_path):
    triples = [("Alice", "r", f"a{i}") for i in range(200)] + [
        ("Bob", "r", f"b{i}") for i in range(5)
    ]
    kg = KG.build(triples, tmp_path / "kg")
    got = retrieve_paths(kg, [kg.find_entity("Alice"), kg.find_entity("Bob")], [["r"], ["~~r"]], 30)
    starts = [p[0] for p in got.paths]
    assert len(got.paths) == 30 and starts.count("Bob") == 5 and got.truncated
    assert got.valid == [True, False]  # "~~r" is no relation: invalid, not a crash


def test_targets_setting_is_honoured(catalog, tmp_path):
    kg, qs, _ = catalog
    import dataclasses

    q = next(q for q in qs if q.question.startswith("who directed "))
    # pretend the data's own path differs from the shortest one
    q = dataclasses.replace(q, gold_relations=[["has_genre"]])
    assert training_targets(kg, q, targets="gold") == [["has_genre"]]
    assert training_targets(kg, q, targets="shortest") == [["directed_by"]]
    with pytest.raises(Exception, match="targets"):
        training_targets(kg, q, targets="nope")


def test_predict_resumes_only_the_same_run(catalog, tmp_path):
    from ragtune.rog.evaluate import RogEvalConfig, predict

    kg, qs, d = catalog
    build_data(kg, split_questions(qs, 0, 0.2), BuildDataConfig(out=str(tmp_path / "data")))
    cfg = RogEvalConfig(
        kg=str(d / "kg"),
        data=str(tmp_path / "data"),
        out=str(tmp_path / "ev"),
        model="dummy",
        modes=["paths"],
        limit=3,
    )
    r1 = predict(cfg)
    assert r1["modes"]["paths"]["n"] == 3
    cfg.limit = 5  # more questions, same settings: resumes, answers only the 2 new ones
    assert predict(cfg)["modes"]["paths"]["n"] == 5
    rows = (tmp_path / "ev/predictions-paths.jsonl").read_text().splitlines()
    assert len(rows) == 5
    cfg.max_paths = 3  # different settings: refuses to mix runs
    with pytest.raises(Exception, match="other settings"):
        predict(cfg)


def test_an_openai_compatible_endpoint_reasons_over_the_plans(catalog):
    """Plug-and-play: the reasoner is a real HTTP endpoint (loopback), with a retry on a 429."""
    from ragtune.llm.openai import OpenAILM
    from ragtune.testing_server import FakeOpenAIServer

    kg, qs, _ = catalog
    q = next(q for q in qs if q.question.startswith("who directed ") and "films" not in q.question)

    def reply(messages):  # the endpoint answers with the end of the first reasoning path
        text = messages[-1]["content"]
        return text.split("Reasoning Paths:\n")[1].split("\n")[0].split(" -> ")[-1]

    planner = DummyLM(["<PATH>directed_by</PATH>"])
    with FakeOpenAIServer(reply=reply, faults=["429"]) as srv:
        lm = OpenAILM("fake", srv.base_url, backoff_base=0.01)
        a = RoG(kg, lm, planner_lm=planner, mode="rog").ask(q.question, q.entities)
        assert srv.fault_log == ["429", "ok"]
    assert a.answers == q.answers and a.plans[0]["valid"]
    assert a.supporting == [f"{q.entities[0]} -> directed_by -> {q.answers[0]}"]


def test_grounded_answers_are_path_ends(catalog, tiny_model):
    from ragtune.llm.local import TransformersLM
    from ragtune.rog.answer import grounded_answers

    kg, qs, _ = catalog
    q = next(q for q in qs if q.question.startswith("who directed the films starring"))
    # an endpoint-style reasoner: free text, then only lines naming a path end are kept
    free = DummyLM([f"Someone Else\n{q.answers[0].upper()}\n"])
    rog = RoG(kg, free, planner_lm=DummyLM(["<PATH>~starred_actors<SEP>directed_by</PATH>"]))
    got = rog.ask(q.question, q.entities, mode="rog")
    assert got.answers == ["Someone Else", q.answers[0].upper()]  # free mode keeps both
    ends = retrieve_paths(
        kg, [kg.find_entity(q.entities[0])], [["~starred_actors", "directed_by"]]
    ).ends
    answers, _ = grounded_answers(free, [[{"role": "user", "content": "x"}]], [ends])
    assert answers == [[q.answers[0]]]
    # a local (random, tiny) model decodes under the trie: whatever it says is a candidate
    lm = TransformersLM(tiny_model, threads=1)
    cands = [["Ada Vance", "Bram Quill"], ["Cleo Marr"], []]
    msgs = [[{"role": "user", "content": f"q{i}"}] for i in range(3)]
    answers, raw = grounded_answers(lm, msgs, cands, max_new_tokens=16)
    for a, c in zip(answers, cands, strict=True):
        assert set(a) <= set(c)
    assert answers[2] == []
    assert any(answers[:2])  # the trie leads it to name at least one candidate


def _chat(path):
    return [json.loads(x)["messages"] for x in path.read_text().splitlines()]


def test_build_data_cli_honours_targets_and_gold_first(catalog, tmp_path):
    """`rog build-data --targets/--gold-first` change the data written, not only the manifest."""
    import dataclasses

    kg, qs, d = catalog
    # questions whose data names its own relation path (has_genre), unlike the shortest one
    one = [q for q in qs if q.question.startswith("who directed ") and "films" not in q.question]
    qf = tmp_path / "gold.jsonl"
    qf.write_text(
        "".join(
            json.dumps(dataclasses.replace(q, gold_relations=[["has_genre"]]).to_dict()) + "\n"
            for q in one
        )
    )

    def build(name, questions, *flags):
        out = tmp_path / name
        main(
            ["rog", "build-data", str(d / "kg"), str(questions), "--out", str(out), "--test", "0"]
            + list(flags)
        )
        return out

    def targets(out):
        return {
            m[1]["content"]
            for m in _chat(out / "chat/train.jsonl")
            if PLAN_INSTRUCTION in m[0]["content"]
        }

    assert targets(build("auto", qf)) == {"<PATH>has_genre</PATH>"}
    short = build("short", qf, "--targets", "shortest")
    assert targets(short) == {"<PATH>directed_by</PATH>"}
    assert json.loads((short / "manifest.json").read_text())["targets"] == "shortest"

    # gold_first: the share of reasoning examples listing the gold plans' paths first
    def ordered_share(out) -> float:
        by_q = {q.question: q for q in qs}
        ordered = n = 0
        for m in _chat(out / "chat/train.jsonl"):
            if "Reasoning Paths:" not in m[0]["content"]:
                continue
            body = m[0]["content"].split("Reasoning Paths:\n")[1].split("\n\nQuestion:\n")
            q = by_q[body[1].rstrip("?")]
            gold = {tuple(p) for p in training_targets(kg, q)}
            is_gold = [tuple(line.split(" -> ")[1::2]) in gold for line in body[0].split("\n")]
            if all(is_gold) or not any(is_gold):
                continue  # no noise paths (or no gold ones): order says nothing
            n += 1
            ordered += is_gold == sorted(is_gold, reverse=True)
        return ordered / n

    all_q = tmp_path / "all.jsonl"
    all_q.write_text("".join(json.dumps(q.to_dict()) + "\n" for q in qs))
    assert ordered_share(build("first", all_q, "--gold-first", "1")) == 1.0
    assert ordered_share(build("never", all_q, "--gold-first", "0")) < 0.6


def _recommender(messages):
    """Plans "films by X's director"; answers every end of the paths it is shown."""
    text = messages[-1]["content"]
    if PLAN_INSTRUCTION in text:
        return "<PATH>directed_by<SEP>~directed_by</PATH>"
    if "Reasoning Paths:\n" not in text:
        return "no idea"
    block = text.split("Reasoning Paths:\n")[1].split("\n\nQuestion:\n")[0]
    return "\n".join(dict.fromkeys(line.split(" -> ")[-1] for line in block.split("\n")))


def _recommend_question(qs):
    return next(q for q in qs if q.question.startswith("recommend films like"))


def test_recommendations_exclude_the_question_entities_and_qa_keeps_walks(catalog, tmp_path):
    kg, qs, _ = catalog
    q = _recommend_question(qs)
    x = q.entities[0]
    rog = RoG(kg, DummyLM(_recommender), mode="rog")
    a = rog.ask(q.question, q.entities)
    # the walk X -> director -> X is a path, but X is no recommendation for "films like X"
    assert x not in a.answers and sorted(a.answers) == sorted(q.answers)
    assert a.excluded == [x] and all(p[-1] != x for p in a.paths) and a.supporting
    assert x in rog.ask(q.question, q.entities, exclude_entities=False).answers
    assert (
        x
        in RoG(kg, DummyLM(_recommender), exclude_entities=False, mode="rog")
        .ask(q.question, q.entities)
        .answers
    )
    # "paths" mode too, and another phrasing of a similarity question
    assert x not in rog.ask(q.question, q.entities, mode="paths").answers
    other = f"what other films did the director of {x} make"
    assert x not in rog.ask(other, [x]).answers

    # question answering keeps walks: the answer may be the question's own entity
    qa = KG.build([("Ann", "spouse", "Bo"), ("Cy", "spouse", "Bo")], tmp_path / "walk")
    planner = DummyLM(["<PATH>spouse<SEP>~spouse</PATH>"])
    walk = RoG(qa, DummyLM(_recommender), planner_lm=planner, mode="rog")
    assert sorted(walk.ask("who is married to the spouse of Ann", ["Ann"]).answers) == [
        "Ann",
        "Cy",
    ]
    assert walk.ask(
        "who is married to the spouse of Ann", ["Ann"], exclude_entities=True
    ).answers == ["Cy"]


def test_cli_ask_and_predict_exclude_the_question_entities(catalog, tmp_path, capsys, monkeypatch):
    kg, qs, d = catalog
    scripted = DummyLM(_recommender)
    monkeypatch.setattr("ragtune.llm.spec.load_lm", lambda spec, **kw: scripted)
    q = _recommend_question(qs)
    x = q.entities[0]
    ask = ["rog", "ask", str(d / "kg"), f"recommend films like [{x}]", "--mode", "rog", "--json"]
    main(ask)
    out = json.loads(capsys.readouterr().out)
    assert x not in out["answers"] and sorted(out["answers"]) == sorted(q.answers)
    main([*ask, "--no-exclude-entities"])
    assert x in json.loads(capsys.readouterr().out)["answers"]

    # predict: the question text, or the data's own exclude_entities field (the catalogue
    # marks its "films like" questions), turns it on; a flag overrides both
    rows = [
        {"id": "rec", "question": q.question, "answers": q.answers, "entities": [x]},
        {
            "id": "made",
            "question": f"which films share a director with {x}",
            "answers": q.answers,
            "entities": [x],
            "exclude_entities": True,
        },
    ]
    (tmp_path / "data/questions").mkdir(parents=True)
    (tmp_path / "data/questions/test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def predict(out, *flags):
        main(
            ["rog", "predict", "--kg", str(d / "kg"), "--data", str(tmp_path / "data")]
            + ["--out", str(tmp_path / out), "--modes", "rog", *flags]
        )
        path = tmp_path / out / "predictions-rog.jsonl"
        return [json.loads(x)["prediction"].split("\n") for x in path.read_text().splitlines()]

    for answers in predict("ev"):
        assert x not in answers and sorted(answers) == sorted(q.answers)
    assert all(x in answers for answers in predict("ev-walks", "--no-exclude-entities"))


def test_server_rog_route_excludes_the_question_entities(catalog):
    from types import SimpleNamespace

    from fastapi.testclient import TestClient

    from ragtune.server import Settings, create_app

    kg, qs, _ = catalog
    q = _recommend_question(qs)
    x = q.entities[0]
    rog = RoG(kg, DummyLM(_recommender), mode="rog")
    app = create_app(
        rag=SimpleNamespace(lm=DummyLM()), rog=rog, settings=Settings(warmup=False, api_key=None)
    )
    with TestClient(app) as client:
        r = client.post("/v1/rog", json={"question": f"recommend films like [{x}]"})
    assert r.status_code == 200, r.text
    assert x not in r.json()["answers"] and sorted(r.json()["answers"]) == sorted(q.answers)


def test_the_catalogue_marks_its_similarity_questions(catalog):
    from ragtune.rog.data import build_examples

    kg, qs, _ = catalog
    like = [q for q in qs if "films like" in q.question or "other films" in q.question]
    assert like and all(q.exclude_entities for q in like)
    assert not any(q.exclude_entities for q in qs if q not in like)
    # their reasoning examples, like inference, do not list the walks back to the film asked
    convs, _ = build_examples(kg, like[:6])
    for m in convs:
        if "Reasoning Paths:\n" in m[0]["content"]:
            block = m[0]["content"].split("Reasoning Paths:\n")[1].split("\n\nQuestion:")[0]
            assert all(p.split(" -> ")[0] != p.split(" -> ")[-1] for p in block.split("\n"))
