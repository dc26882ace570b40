"""Planner on a tiny random model trained with RoG's path markers as added tokens."""

import json

import pytest

from ragtune.llm.local import TransformersLM
from ragtune.rog.planner import Planner, TokenTrie
from ragtune.rog.prompts import MARKERS, format_plan, plan_messages
from ragtune.train.trainer import TrainConfig, train

PLANS = {"parent": ["parents"], "nation": ["spouse", "nationality"]}


@pytest.fixture(scope="module")
def planner_adapter(tmp_path_factory, tiny_model):
    d = tmp_path_factory.mktemp("rogplan")
    rows = []
    for i in range(48):
        kind = "parent" if i % 2 else "nation"
        q = f"what is the {kind} of person{i % 6}"
        rows.append(
            {
                "messages": plan_messages(q)
                + [{"role": "assistant", "content": format_plan(PLANS[kind])}]
            }
        )
    (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = TrainConfig(
        data=str(d / "train.jsonl"),
        out=str(d / "out"),
        model=str(tiny_model),
        add_tokens=list(MARKERS),
        epochs=20,
        lr=1e-2,
        batch_tokens=512,
        threads=1,
        bf16=True,  # bf16-stored base weights with fp32 LoRA and added-token rows
    )
    summary = train(cfg)
    return d / "out" / "adapter", summary


def test_added_tokens_train_and_reload(planner_adapter, tiny_model):
    adapter, summary = planner_adapter
    assert summary["last_loss"] < summary["first_loss"] / 2
    lm = TransformersLM(tiny_model, adapter=adapter, threads=1)
    ids = lm.tokenizer.convert_tokens_to_ids(list(MARKERS))
    assert all(i is not None and i >= 0 for i in ids)
    # each marker is one token, and the adapter carries only their rows, not the matrix
    assert len(lm.tokenizer(format_plan(["x"]), add_special_tokens=False)["input_ids"]) >= 3
    assert (adapter / "adapter_model.safetensors").stat().st_size < 2_000_000


def test_constrained_plans_exist_and_free_plans_are_learned(planner_adapter, tiny_model):
    adapter, _ = planner_adapter
    lm = TransformersLM(tiny_model, adapter=adapter, threads=1)
    planner = Planner(lm, num_beams=3, num_plans=3, max_new_tokens=24)
    allowed = [("parents",), ("children",), ("spouse", "nationality")]
    got = planner.plan(
        ["what is the parent of person1", "what is the nation of person2"],
        allowed=[allowed, allowed],
    )
    for plans in got:
        assert plans and all(tuple(p.relations) in allowed for p in plans)
        assert plans == sorted(plans, key=lambda p: -p.score)
    assert got[0][0].relations == ["parents"] and got[1][0].relations == ["spouse", "nationality"]
    # a question whose entities have no path at all gets no plan rather than an invented one
    assert planner.plan(["what is the parent of person1"], allowed=[[]]) == [[]]


def test_token_trie():
    t = TokenTrie([[1, 2, 3], [1, 4]])
    assert sorted(t.next_tokens([1])) == [2, 4] and t.next_tokens([1, 2]) == [3]
    assert t.next_tokens([9]) == []


def test_cli_ask_and_predict_load_the_planner_adapter(
    planner_adapter, tiny_model, tmp_path, capsys
):
    """`rog ask/predict --planner M --planner-adapter A`: a trained planner from the CLI."""
    from ragtune.cli import main
    from ragtune.kg import KG

    adapter, _ = planner_adapter
    triples = [
        ("person1", "parents", "Pat"),
        ("person1", "children", "Chris"),
        ("person2", "spouse", "Sam"),
        ("Sam", "nationality", "Velish"),
        ("person2", "children", "Kim"),
    ]
    KG.build(triples, tmp_path / "kg")
    plan = ["--planner", str(tiny_model), "--planner-adapter", str(adapter)]
    q = "what is the parent of person1"
    main(
        ["rog", "ask", str(tmp_path / "kg"), q, "--model", "dummy", "--mode", "constrained"]
        + ["--entities", "person1", "--json", *plan]
    )
    out = json.loads(capsys.readouterr().out)
    assert out["plans"][0]["relations"] == ["parents"]

    qs = [
        {"id": "a", "question": q, "answers": ["Pat"], "entities": ["person1"]},
        {
            "id": "b",
            "question": "what is the nation of person2",
            "answers": ["Velish"],
            "entities": ["person2"],
        },
    ]
    (tmp_path / "data/questions").mkdir(parents=True)
    (tmp_path / "data/questions/test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qs))
    main(
        ["rog", "predict", "--kg", str(tmp_path / "kg"), "--data", str(tmp_path / "data")]
        + ["--out", str(tmp_path / "ev"), "--model", "dummy", "--modes", "constrained", *plan]
    )
    rows = [
        json.loads(x)
        for x in (tmp_path / "ev/predictions-constrained.jsonl").read_text().splitlines()
    ]
    assert [r["plans"][0]["relations"] for r in rows] == [["parents"], ["spouse", "nationality"]]
    # the adapter is one of the run's settings: a resume with another planner is refused
    assert json.loads((tmp_path / "ev/run.json").read_text())["planner_adapter"] == str(adapter)
