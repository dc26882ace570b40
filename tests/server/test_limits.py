"""Auth, body size, prompt length, the bounded queue, and no tracebacks in responses."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from ragtune.errors import ConfigError, DataError, LLMError
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


def test_stop_sequences_are_bounded(serve, lease_rag):
    """At most 4 stop strings (OpenAI's limit), each at most 64 characters: each distinct list
    costs a local model a vocabulary scan and a cache entry."""
    srv = serve(lease_rag)
    c = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
    for stop in ("]", ["a", "b", "c", "d"], None):  # a string, or up to 4
        assert c.chat.completions.create(model="x", stop=stop, **CHAT).choices
    url = srv.base_url + "/chat/completions"
    r = httpx.post(url, json={**CHAT, "stop": ["a", "b", "c", "d", "e"]})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    msg = r.json()["error"]["message"]
    assert msg.startswith("invalid request: stop: ") and "at most 4 stop sequences" in msg
    assert "(got 5)" in msg and "Value error" not in msg
    r = httpx.post(url, json={**CHAT, "stop": ["ok", "x" * 65]})
    assert r.status_code == 400
    assert "at most 64 characters; stop[1] has 65" in r.json()["error"]["message"]
    r = httpx.post(url, json={**CHAT, "stop": "x" * 1000})
    assert r.status_code == 400 and "the stop string has 1,000" in r.json()["error"]["message"]


def test_stop_criteria_cache_is_a_small_lru(tiny_model, monkeypatch):
    import transformers

    from ragtune.llm.local import STOP_CACHE, TransformersLM

    built = []
    monkeypatch.setattr(
        transformers, "StopStringCriteria", lambda tok, stops: built.append(stops) or object()
    )
    lm = TransformersLM(tiny_model)
    first = lm._stop_criteria(("keep",))
    for i in range(3 * STOP_CACHE):
        lm._stop_criteria((f"s{i}",))
        assert lm._stop_criteria(("keep",)) is first  # recently used: kept, not rebuilt
    assert len(lm._stops) == STOP_CACHE and len(built) == 1 + 3 * STOP_CACHE
    assert ("s0",) not in lm._stops and (f"s{3 * STOP_CACHE - 1}",) in lm._stops


def _raw_post(port: int, body: dict) -> socket.socket:
    """A request sent on a raw socket, so the test can hang up without reading the reply."""
    data = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(data), data)
    )
    return s


def test_queued_request_of_a_client_that_left_is_not_generated(serve, glimmer_index):
    started, release = threading.Event(), threading.Event()
    calls = []

    def reply(messages):
        calls.append(1)
        started.set()
        release.wait(20)
        return "Leases last 30 seconds [1]."

    srv = serve(RAG(glimmer_index, DummyLM(reply)), max_concurrency=1, max_queue=4)
    url = srv.base_url + "/chat/completions"
    health = srv.url + "/healthz"
    with ThreadPoolExecutor(1) as pool:
        try:
            first = pool.submit(httpx.post, url, json=CHAT, timeout=30)
            assert started.wait(10)  # holds the only slot
            left = [_raw_post(srv.port, CHAT), _raw_post(srv.port, {**CHAT, "stream": True})]
            deadline = time.monotonic() + 10
            while httpx.get(health).json()["queued"] < 2:
                assert time.monotonic() < deadline, "the requests never queued"
                time.sleep(0.02)
            for s in left:
                s.close()  # both clients hang up while queued
            time.sleep(0.5)  # for the server to see the connections close
        finally:
            release.set()
        assert first.result().status_code == 200
    deadline = time.monotonic() + 10
    while (h := httpx.get(health).json())["generating"] or h["queued"]:
        assert time.monotonic() < deadline, h
        time.sleep(0.02)
    assert len(calls) == 1  # the abandoned requests never reached the model
    assert httpx.post(url, json=CHAT, timeout=30).status_code == 200  # the slot was given back
    assert len(calls) == 2


def test_retrieval_has_its_own_small_limiter(serve, lease_rag, monkeypatch):
    """/v1/retrieve stays outside the generation gate but runs at most max_retrievals at once."""
    srv = serve(lease_rag, max_retrievals=2)
    lock, now, peak = threading.Lock(), [0], [0]
    real = lease_rag.index.hits

    def hits(*a, **kw):
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        try:
            time.sleep(0.2)
            return real(*a, **kw)
        finally:
            with lock:
                now[0] -= 1

    monkeypatch.setattr(lease_rag.index, "hits", hits)
    url = srv.base_url + "/retrieve"
    with ThreadPoolExecutor(6) as pool:
        rs = list(
            pool.map(lambda _: httpx.post(url, json={"query": "lease"}, timeout=30), range(6))
        )
    assert [r.status_code for r in rs] == [200] * 6
    assert peak[0] == 2


@pytest.mark.parametrize(
    "error, status, code",
    [
        (DataError("a malformed record", path="docs.jsonl", line=3), 400, "invalid_request"),
        (ConfigError("method 'dense' is not in this index"), 400, "invalid_request"),
        (LLMError("https://llm.example/v1 kept failing with HTTP 500"), 502, "backend"),
    ],
)
def test_ragtune_errors_map_to_statuses(serve, glimmer_index, error, status, code):
    def fail(messages):
        raise error

    srv = serve(RAG(glimmer_index, DummyLM(fail)))
    r = httpx.post(srv.base_url + "/chat/completions", json=CHAT)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and str(error) in err["message"]
    assert "Traceback" not in r.text
