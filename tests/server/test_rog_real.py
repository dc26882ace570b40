"""The server with the real RoG pipeline and KG (the shipped film catalogue, scripted LMs)."""

from __future__ import annotations

import httpx
import openai
import pytest

from ragtune.testing import DummyLM


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    from ragtune.examples.catalog import write_catalog
    from ragtune.kg import KG
    from ragtune.rog.data import read_questions

    d = tmp_path_factory.mktemp("catalog")
    kb, qf = write_catalog(d)
    KG.from_files([kb], d / "kg")
    return d / "kg", read_questions("jsonl", qf)


def reasoner(messages):
    """Answers with the last entity of the first reasoning path it is shown."""
    text = messages[-1]["content"]
    if "Reasoning Paths:\n" in text:
        return text.split("Reasoning Paths:\n")[1].split("\n")[0].split(" -> ")[-1]
    return "no idea"


def test_real_rog(serve, lease_rag, catalog):
    from ragtune.kg import KG
    from ragtune.rog.pipeline import RoG
    from ragtune.rog.prompts import PLAN_INSTRUCTION

    kg_dir, qs = catalog
    q = next(q for q in qs if q.question.startswith("who directed ") and "films" not in q.question)
    planner = DummyLM(
        lambda m: "<PATH>directed_by</PATH>" if PLAN_INSTRUCTION in m[-1]["content"] else ""
    )
    rog = RoG(KG.open(kg_dir), DummyLM(reasoner), planner_lm=planner, mode="rog")
    srv = serve(lease_rag, rog=rog)
    r = httpx.post(srv.base_url + "/rog", json={"question": q.question, "entities": q.entities})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["answers"] == q.answers
    assert d["paths"] == [[q.entities[0], "directed_by", q.answers[0]]]
    assert d["rendered"] == [f"{q.entities[0]} -> directed_by -> {q.answers[0]}"]
    assert d["plans"] == [{"relations": ["directed_by"], "score": 0.0, "valid": True}]
    assert d["supporting"] == d["rendered"]
    c = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
    resp = c.chat.completions.create(
        model="x",
        messages=[{"role": "user", "content": q.question}],
        extra_body={"mode": "rog", "entities": q.entities},
    )
    assert resp.choices[0].message.content == q.answers[0]
    assert resp.model_extra["ragtune"]["paths"] == d["paths"]


def test_serve_config_with_kg(glimmer_index, catalog):
    from ragtune.server.serve import ServeConfig, build_app
    from tests.server.conftest import LiveServer

    kg_dir, qs = catalog
    cfg = ServeConfig(
        index=str(glimmer_index.path), kg=str(kg_dir), model="dummy", rog_mode="paths"
    )
    srv = LiveServer(build_app(cfg)).start()
    try:
        assert httpx.get(srv.url + "/healthz").json()["modes"] == ["rag", "rog"]
        q = next(q for q in qs if q.question.startswith("who directed "))
        r = httpx.post(srv.base_url + "/rog", json={"question": q.question, "entities": q.entities})
        assert r.status_code == 200 and r.json()["paths"]
        assert all(p[0] == q.entities[0] for p in r.json()["paths"])
    finally:
        srv.stop()


def test_serve_refuses_constrained_rog_without_a_local_model(glimmer_index, catalog):
    """The default --rog-mode grounded needs a local planner: fail at startup, not per request."""
    from ragtune.errors import ConfigError
    from ragtune.server.serve import ServeConfig, build_app

    kg_dir, _ = catalog
    cfg = ServeConfig(index=str(glimmer_index.path), kg=str(kg_dir), model="dummy")
    assert cfg.rog_mode == "grounded"
    with pytest.raises(ConfigError, match="--rog-mode rog or --rog-mode paths"):
        build_app(cfg)
