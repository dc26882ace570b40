"""The OpenAI-compatible API, driven by the official `openai` client against a live server."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.server.conftest import LEASE_A, LEASE_Q, FakeRoG


def client(srv, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key=key, max_retries=0, timeout=20)


def test_chat_completion_with_citations(serve, lease_rag):
    srv = serve(lease_rag)
    resp = client(srv).chat.completions.create(
        model="anything",
        messages=[
            {"role": "system", "content": "ignored: RAG has its own grounded system prompt"},
            {"role": "user", "content": LEASE_Q},
        ],
        max_tokens=64,
        temperature=0,
        extra_body={"unknown_field": 1, "logit_bias": {}},  # accepted and ignored
    )
    assert resp.object == "chat.completion" and resp.model == "ragtune-test"
    assert resp.choices[0].message.content == LEASE_A
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens == 7
    extra = resp.model_extra["ragtune"]
    assert extra == resp.to_dict()["ragtune"]
    [cite] = extra["citations"]
    assert cite["n"] == 1 and cite["method"] == "model" and "30 seconds" in cite["quote"]
    doc = extra["documents"][0]
    assert doc["text"][cite["start"] : cite["end"]] == cite["quote"]
    assert len(extra["documents"]) == 3
    # the model saw the retrieved passages and the last user message as the question
    assert lease_rag.lm.calls[-1][-1]["content"].endswith(LEASE_Q)


def test_chat_streaming(serve, lease_rag):
    srv = serve(lease_rag)
    chunks = list(
        client(srv).chat.completions.create(
            model="x",
            messages=[{"role": "user", "content": LEASE_Q}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(deltas) == LEASE_A
    assert sum(1 for d in deltas if d) == len(LEASE_A.split())  # word by word
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finish] == ["stop"]
    assert "30 seconds" in finish[0].model_extra["ragtune"]["citations"][0]["quote"]
    last = chunks[-1]  # OpenAI's usage chunk, which also carries the citations
    assert last.choices == [] and last.usage.completion_tokens == 7
    assert last.model_extra["ragtune"]["citations"][0]["n"] == 1


def test_stream_wire_format(serve, lease_rag):
    srv = serve(lease_rag)
    body = {"messages": [{"role": "user", "content": LEASE_Q}], "stream": True}
    with httpx.stream("POST", srv.base_url + "/chat/completions", json=body, timeout=20) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    events = raw.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert all(e.startswith("data: ") for e in events[:-1])
    assert '"chat.completion.chunk"' in events[0] and '"ragtune"' in events[-3]


def test_models_healthz_retrieve(serve, lease_rag):
    srv = serve(lease_rag)
    [m] = client(srv).models.list().data
    assert m.id == "ragtune-test" and m.model_extra["ragtune"] == {"modes": ["rag"], "rog": False}
    assert client(srv).models.retrieve("ragtune-test").id == "ragtune-test"
    health = httpx.get(srv.url + "/healthz").json()
    assert health["status"] == "ok" and health["modes"] == ["rag"] and health["auth"] is False
    assert health["generating"] == 0 and health["queued"] == 0
    r = httpx.post(srv.base_url + "/retrieve", json={"query": LEASE_Q, "k": 2})
    assert r.status_code == 200
    data = r.json()["data"]
    assert [d["rank"] for d in data] == [1, 2]
    assert {"chunk_id", "doc_id", "source", "score", "text"} <= set(data[0])
    assert "30 seconds" in data[0]["text"] and data[0]["score"] >= data[1]["score"]
    r = httpx.post(srv.base_url + "/retrieve", json={"query": LEASE_Q, "method": "bm25"})
    assert r.status_code == 200 and len(r.json()["data"]) == 5


def test_rog_endpoint_and_chat_mode(serve, lease_rag):
    rog = FakeRoG()
    srv = serve(lease_rag, rog=rog)
    q = "who directed the films starring Sharon Tate"
    r = httpx.post(srv.base_url + "/rog", json={"question": q, "entities": ["Sharon Tate"]})
    assert r.status_code == 200
    d = r.json()
    assert d["answers"] == ["Roman Polanski"] and d["object"] == "ragtune.rog"
    assert d["paths"][0][:2] == ["Sharon Tate", "~starred_actors"]
    assert d["rendered"][0].startswith("Sharon Tate -> ~starred_actors -> ")
    assert d["plans"][0]["valid"] is True
    assert rog.calls[-1] == (q, ["Sharon Tate"])
    resp = client(srv).chat.completions.create(
        model="x", messages=[{"role": "user", "content": q}], extra_body={"mode": "rog"}
    )
    assert resp.choices[0].message.content == "Roman Polanski"
    assert resp.model_extra["ragtune"]["mode"] == "rog"
    assert len(resp.model_extra["ragtune"]["paths"]) == 2
    chunks = list(
        client(srv).chat.completions.create(
            model="x",
            messages=[{"role": "user", "content": q}],
            stream=True,
            extra_body={"mode": "rog"},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Roman Polanski"
    assert chunks[-1].model_extra["ragtune"]["answers"] == ["Roman Polanski"]
    assert httpx.get(srv.url + "/healthz").json()["modes"] == ["rag", "rog"]


def test_rog_without_kg_is_a_clear_400(serve, lease_rag):
    srv = serve(lease_rag)
    r = httpx.post(srv.base_url + "/rog", json={"question": "who?"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "rog_unavailable"
    assert "--kg" in r.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError, match="--kg"):
        client(srv).chat.completions.create(
            model="x", messages=[{"role": "user", "content": "who?"}], extra_body={"mode": "rog"}
        )


def test_bad_requests_get_openai_error_shape(serve, lease_rag):
    srv = serve(lease_rag)
    url = srv.base_url + "/chat/completions"
    r = httpx.post(url, json={"messages": []})
    assert r.status_code == 400
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "code"} and "messages" in err["message"]
    r = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = httpx.post(url, json={"messages": [{"role": "assistant", "content": "hi"}]})
    assert r.status_code == 400 and "user message" in r.json()["error"]["message"]
    r = httpx.post(url, json={"messages": [{"role": "user", "content": "q"}], "max_tokens": 5000})
    assert r.status_code == 400 and "--max-completion-tokens" in r.json()["error"]["message"]
    r = httpx.get(srv.base_url + "/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.get(srv.base_url + "/chat/completions")
    assert r.status_code == 405 and "error" in r.json()
