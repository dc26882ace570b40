"""Auth, body size, prompt length, the bounded queue, and no tracebacks in responses."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from ragtune.rag import RAG
from ragtune.testing import DummyLM
from tests.server.conftest import LEASE_Q

CHAT = {"messages": [{"role": "user", "content": LEASE_Q}]}


def test_api_key(serve, lease_rag, monkeypatch):
    monkeypatch.setenv("RAGTUNE_API_KEY", "sk-right")
    from ragtune.server import Settings

    assert Settings().api_key == "sk-right"  # read from the environment
    srv = serve(lease_rag, api_key=Settings().api_key)
    url = srv.base_url + "/chat/completions"
    r = httpx.post(url, json=CHAT)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert "RAGTUNE_API_KEY" in r.json()["error"]["message"]
    r = httpx.post(url, json=CHAT, headers={"Authorization": "Bearer sk-wrong"})
    assert r.status_code == 401 and "wrong key" in r.json()["error"]["message"]
    assert httpx.get(srv.base_url + "/models").status_code == 401
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=srv.base_url, api_key="sk-wrong", max_retries=0).models.list()
    ok = openai.OpenAI(base_url=srv.base_url, api_key="sk-right", max_retries=0)
    assert ok.chat.completions.create(model="x", **CHAT).choices[0].message.content
    # the page and the health check stay open: the page sends the key the user typed
    assert httpx.get(srv.url + "/healthz").json()["auth"] is True
    assert httpx.get(srv.url + "/").status_code == 200
    assert httpx.get(srv.url + "/static/app.js").status_code == 200


def test_body_too_large(serve, lease_rag):
    srv = serve(lease_rag, max_body_bytes=2000)
    url = srv.base_url + "/chat/completions"
    big = {"messages": [{"role": "user", "content": "x" * 5000}]}
    r = httpx.post(url, json=big)  # refused from Content-Length, before reading
    assert r.status_code == 413
    msg = r.json()["error"]["message"]
    assert "2,000 bytes" in msg and "--max-body-bytes" in msg

    def chunked():  # no Content-Length: refused while streaming in
        for _ in range(4):
            yield b" " * 1000

    r = httpx.post(url, content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    assert httpx.post(url, json=CHAT).status_code == 200


def test_prompt_too_long(serve, lease_rag):
    srv = serve(lease_rag, max_prompt_tokens=20)
    c = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="x", messages=[{"role": "user", "content": "w " * 50}])
    assert e.value.status_code == 400
    msg = e.value.body["message"]
    assert "50 tokens" in msg and "at most 20" in msg and "--max-prompt-tokens" in msg
    assert e.value.code == "context_length_exceeded"
    r = httpx.post(srv.base_url + "/retrieve", json={"query": "w " * 50})
    assert r.status_code == 400


def test_queue_full_is_503_with_retry_after(serve, glimmer_index):
    started, release = threading.Event(), threading.Event()

    def reply(messages):
        started.set()
        release.wait(20)
        return "Leases last 30 seconds [1]."

    srv = serve(RAG(glimmer_index, DummyLM(reply)), max_concurrency=1, max_queue=1)
    url = srv.base_url + "/chat/completions"
    with ThreadPoolExecutor(2) as pool:
        try:
            first = pool.submit(httpx.post, url, json=CHAT, timeout=30)
            assert started.wait(10)  # generating, and blocked
            second = pool.submit(httpx.post, url, json=CHAT, timeout=30)
            deadline = time.monotonic() + 10
            while httpx.get(srv.url + "/healthz").json()["queued"] < 1:
                assert time.monotonic() < deadline, "the second request never queued"
                time.sleep(0.02)
            t0 = time.perf_counter()
            r = httpx.post(url, json=CHAT)  # the event loop answers while a model generates
            assert time.perf_counter() - t0 < 2
            assert r.status_code == 503
            assert int(r.headers["retry-after"]) >= 1
            assert r.json()["error"]["code"] == "server_busy"
            h = httpx.get(srv.url + "/healthz").json()
            assert (h["generating"], h["queued"]) == (1, 1)
        finally:
            release.set()
        assert first.result().status_code == 200 and second.result().status_code == 200
    h = httpx.get(srv.url + "/healthz").json()
    assert (h["generating"], h["queued"]) == (0, 0)


def test_no_traceback_in_500(serve, glimmer_index, caplog):
    def boom(messages):
        raise RuntimeError("secret internal detail")

    srv = serve(RAG(glimmer_index, DummyLM(boom)))
    url = srv.base_url + "/chat/completions"
    with caplog.at_level(logging.ERROR, logger="ragtune.server"):
        for stream in (False, True):
            r = httpx.post(url, json={**CHAT, "stream": stream})
            assert r.status_code == 500
            err = r.json()["error"]
            assert err["type"] == "server_error" and "ref " in err["message"]
            for leak in ("Traceback", "secret", "RuntimeError", 'File "'):
                assert leak not in r.text
    logged = [rec for rec in caplog.records if rec.name == "ragtune.server"]
    assert len(logged) == 2 and logged[0].exc_info[0] is RuntimeError  # the server log has it
    assert httpx.get(srv.url + "/healthz").json()["generating"] == 0


def test_error_mid_stream_is_an_event(serve, glimmer_index):
    """An error after the first words arrive comes as an OpenAI error event, then [DONE]."""
    from tests.server.conftest import WordStreamLM

    class Failing(WordStreamLM):
        def stream(self, messages, **kw):
            yield "Leases"
            raise RuntimeError("secret")

    srv = serve(RAG(glimmer_index, Failing(lambda m: "x")))
    c = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
    got = []
    with pytest.raises(openai.APIError, match="internal server error"):
        for ch in c.chat.completions.create(model="x", stream=True, **CHAT):
            got.append(ch.choices[0].delta.content)
    assert "Leases" in got
