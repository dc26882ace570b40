"""OpenAILM against a real loopback HTTP server (ragtune.testing_server.FakeOpenAIServer)."""

from __future__ import annotations

import email.utils
import socket
import threading
import time

import pytest

from ragtune.errors import ContextTooLong, LLMError, RateLimited, Unreachable
from ragtune.llm.openai import OpenAILM, _parse_retry_after, render_plain
from ragtune.testing_server import FakeOpenAIServer

pytestmark = pytest.mark.timeout(30)

KEY_ENV = "RAGTUNE_TEST_OPENAI_KEY"
Q = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)


def make_lm(srv: FakeOpenAIServer, **kw) -> OpenAILM:
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_max", 0.05)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("api_key_env", KEY_ENV)
    return OpenAILM("fake-model", srv.base_url, **kw)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- plain generation --------------------------------------------------------------------------
def test_plain_completion_and_usage():
    with FakeOpenAIServer(reply=["Paris is the capital."]) as srv:
        lm = make_lm(srv)
        assert lm.name == f"openai:fake-model@{srv.base_url}"
        [c] = lm.generate([Q], max_tokens=32, temperature=0.3, top_p=0.9, seed=7)
        assert c.text == "Paris is the capital."
        assert c.finish_reason == "stop"
        assert (c.prompt_tokens, c.completion_tokens) == (6, 4)
        c2 = lm.complete("two words", max_tokens=8)
        assert c2 == "Paris is the capital."
        assert lm.usage.as_dict() == {
            "prompt_tokens": 8,
            "completion_tokens": 8,
            "total_tokens": 16,
            "requests": 2,
        }
        path, body = srv.requests[0]
        assert path == "/v1/chat/completions"
        assert body == {
            "model": "fake-model",
            "messages": Q,
            "max_tokens": 32,
            "temperature": 0.3,
            "top_p": 0.9,
            "seed": 7,
        }
        assert "stop" not in srv.requests[1][1] and "seed" not in srv.requests[1][1]
        assert "authorization" not in srv.request_headers[0]  # no key -> no header
        assert sum(lm.stats.values()) == 0
        lm.close()


def test_default_reply_echoes_and_max_tokens_gives_length():
    with FakeOpenAIServer() as srv:
        lm = make_lm(srv)
        [c] = lm.generate([[{"role": "user", "content": "one two three four"}]], max_tokens=3)
        assert c.text == "echo: one two"
        assert c.finish_reason == "length"
        assert c.completion_tokens == 3


def test_missing_usage_is_estimated():
    with FakeOpenAIServer(reply=["abcdefgh"], include_usage=False) as srv:
        lm = make_lm(srv)
        [c] = lm.generate([[{"role": "user", "content": "x" * 40}]])
        assert c.prompt_tokens == lm.count_tokens("x" * 40) == 10
        assert c.completion_tokens == lm.count_tokens("abcdefgh") == 2
        assert lm.usage.prompt_tokens == 10


def test_extra_body_is_sent():
    with FakeOpenAIServer() as srv:
        make_lm(srv, extra_body={"repetition_penalty": 1.1}).complete("hi")
        assert srv.requests[0][1]["repetition_penalty"] == 1.1


def test_batch_order_preserved_with_bounded_concurrency():
    inflight, peak, lock = 0, 0, threading.Lock()

    def reply(messages):
        nonlocal inflight, peak
        n = int(messages[-1]["content"])
        with lock:
            inflight += 1
            peak = max(peak, inflight)
        time.sleep(0.02 * (8 - n))  # later prompts answer first
        with lock:
            inflight -= 1
        return f"answer {n}"

    with FakeOpenAIServer(reply=reply) as srv:
        lm = make_lm(srv, concurrency=3)
        batch = [[{"role": "user", "content": str(i)}] for i in range(8)]
        out = lm.generate(batch)
        assert [c.text for c in out] == [f"answer {i}" for i in range(8)]
        assert 2 <= peak <= 3
        assert lm.usage.requests == 8
        assert lm.generate([]) == []


def test_generate_rejects_unbatched_messages():
    with FakeOpenAIServer() as srv:
        with pytest.raises(LLMError, match=r"lm\.generate\(\[messages\]\)"):
            make_lm(srv).generate(Q)  # type: ignore[arg-type]


# -- stop strings ------------------------------------------------------------------------------
@pytest.mark.parametrize("honour_stop", [True, False])
def test_stop_strings_truncate(honour_stop):
    with FakeOpenAIServer(reply=["alpha beta\nQuestion: gamma"], honour_stop=honour_stop) as srv:
        lm = make_lm(srv)
        [c] = lm.generate([Q], stop=["\nQuestion:", "zzz"])
        assert c.text == "alpha beta"
        assert c.finish_reason == "stop"
        assert srv.requests[0][1]["stop"] == ["\nQuestion:", "zzz"]


def test_more_than_four_stops_are_applied_client_side():
    stops = ["s1", "s2", "s3", "s4", " cut"]
    with FakeOpenAIServer(reply=["keep this cut that"]) as srv:
        [c] = make_lm(srv).generate([Q], stop=stops)
        assert c.text == "keep this"
        assert srv.requests[0][1]["stop"] == stops[:4]


# -- retries -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        ("429", "429"),
        ("500", "500"),
        ("502", "502"),
        ("503", "503"),
        ("504", "504"),
        ("malformed", "malformed"),
        ("badjson", "malformed"),
        ("drop", "connect"),
    ],
)
def test_each_fault_is_retried(fault, cause):
    with FakeOpenAIServer(reply=["fine"], faults=[fault, fault]) as srv:
        lm = make_lm(srv)
        [c] = lm.generate([Q])
        assert c.text == "fine"
        assert srv.fault_log == [fault, fault, "ok"]
        assert len(srv.chat_requests()) == 3
        assert lm.stats[cause] == 2
        assert sum(lm.stats.values()) == 2
        assert lm.usage.requests == 1  # retries are not double-counted


def test_timeout_is_retried():
    with FakeOpenAIServer(reply=["late but fine"], faults=["timeout"], timeout_sleep=2.0) as srv:
        lm = make_lm(srv, timeout=0.5)
        t0 = time.monotonic()
        [c] = lm.generate([Q])
        elapsed = time.monotonic() - t0
        assert c.text == "late but fine"
        assert 0.5 <= elapsed < 1.9  # gave up on the slow answer, did not wait it out
        assert lm.stats["timeout"] == 1
        assert srv.fault_log == ["timeout", "ok"]


def test_mixed_faults_counted_by_cause():
    faults = ["429", "429", "500", "timeout", "malformed", "drop"]
    with FakeOpenAIServer(faults=faults, timeout_sleep=1.0) as srv:
        lm = make_lm(srv, timeout=0.3, max_retries=6)
        [c] = lm.generate([[{"role": "user", "content": "survived"}]])
        assert c.text == "echo: survived"
        assert lm.stats == {
            "429": 2,
            "500": 1,
            "502": 0,
            "503": 0,
            "504": 0,
            "timeout": 1,
            "connect": 1,
            "malformed": 1,
        }
        assert srv.fault_log == [*faults, "ok"]


@pytest.mark.parametrize("fault", ["429", "503"])
def test_retry_after_is_honoured(fault):
    with FakeOpenAIServer(faults=[fault], retry_after="1") as srv:
        lm = make_lm(srv, backoff_base=0.001, backoff_max=5.0)
        t0 = time.monotonic()
        lm.complete("hi")
        assert time.monotonic() - t0 >= 1.0
        assert lm.stats[fault] == 1


def test_retry_after_is_capped_at_backoff_max():
    with FakeOpenAIServer(faults=["429"], retry_after="60") as srv:
        lm = make_lm(srv, backoff_max=0.2)
        t0 = time.monotonic()
        lm.complete("hi")
        assert 0.2 <= time.monotonic() - t0 < 5


def test_parse_retry_after_seconds_and_http_date():
    assert _parse_retry_after("2") == 2.0
    assert _parse_retry_after("0.5") == 0.5
    assert _parse_retry_after(None) is None
    assert _parse_retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8.0 <= _parse_retry_after(later) <= 10.0
    earlier = email.utils.formatdate(time.time() - 100, usegmt=True)
    assert _parse_retry_after(earlier) == 0.0


# -- retries exhausted -------------------------------------------------------------------------
def test_rate_limited_after_retries():
    with FakeOpenAIServer(faults=["429"] * 3, retry_after="0.05") as srv:
        lm = make_lm(srv, max_retries=2)
        with pytest.raises(RateLimited, match="429") as ei:
            lm.complete("hi")
        assert ei.value.retry_after == pytest.approx(0.05)
        assert "concurrency" in str(ei.value)
        assert len(srv.chat_requests()) == 3
        assert lm.stats["429"] == 2
        assert lm.usage.requests == 0


@pytest.mark.parametrize(("fault", "needle"), [("500", "HTTP 500"), ("malformed", "/v1")])
def test_server_errors_after_retries(fault, needle):
    with FakeOpenAIServer(faults=[fault] * 2) as srv:
        lm = make_lm(srv, max_retries=1)
        with pytest.raises(LLMError, match=needle) as ei:
            lm.complete("hi")
        assert not isinstance(ei.value, RateLimited | Unreachable | ContextTooLong)
        assert srv.base_url in str(ei.value)
        assert len(srv.chat_requests()) == 2


def test_timeouts_exhausted_raise_unreachable():
    with FakeOpenAIServer(faults=["timeout"] * 2, timeout_sleep=1.0) as srv:
        lm = make_lm(srv, timeout=0.2, max_retries=1)
        with pytest.raises(Unreachable, match="timed out") as ei:
            lm.complete("hi")
        assert "timeout=" in str(ei.value)
        assert lm.stats["timeout"] == 1


def test_closed_port_is_unreachable_quickly():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    lm = OpenAILM("m", url, max_retries=1, backoff_base=0.01, api_key_env=KEY_ENV)
    t0 = time.monotonic()
    with pytest.raises(Unreachable) as ei:
        lm.complete("hi")
    assert time.monotonic() - t0 < 3
    msg = str(ei.value)
    assert url in msg and "running" in msg and "--base-url" in msg
    assert lm.stats["connect"] == 1


# -- permanent errors: no retry ------------------------------------------------------------------
def test_context_too_long_is_not_retried():
    with FakeOpenAIServer(faults=["400ctx"]) as srv:
        lm = make_lm(srv)
        with pytest.raises(ContextTooLong, match="top-k") as ei:
            lm.complete("hi")
        assert "max_tokens" in str(ei.value)
        assert len(srv.chat_requests()) == 1
        assert sum(lm.stats.values()) == 0


def test_other_400_carries_server_message():
    with FakeOpenAIServer(faults=["400"]) as srv:
        with pytest.raises(LLMError, match="Invalid value for 'temperature'") as ei:
            make_lm(srv).complete("hi")
        assert not isinstance(ei.value, ContextTooLong)
        assert len(srv.chat_requests()) == 1


def test_401_names_the_env_var():
    with FakeOpenAIServer(faults=["401"]) as srv:
        with pytest.raises(LLMError, match=KEY_ENV):
            make_lm(srv).complete("hi")
        assert len(srv.chat_requests()) == 1


def test_404_names_model_and_v1():
    with FakeOpenAIServer(faults=["404"]) as srv:
        with pytest.raises(LLMError, match="fake-model") as ei:
            make_lm(srv).complete("hi")
        assert "/v1" in str(ei.value)
        assert len(srv.chat_requests()) == 1


# -- API key -----------------------------------------------------------------------------------
def test_api_key_from_env_is_sent_as_bearer(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-secret")
    with FakeOpenAIServer(reply=["authorised"], api_key="sk-secret") as srv:
        assert make_lm(srv).complete("hi") == "authorised"
        assert srv.request_headers[0]["authorization"] == "Bearer sk-secret"


def test_explicit_api_key_wins_over_env(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    with FakeOpenAIServer(reply=["ok"], api_key="sk-secret") as srv:
        assert make_lm(srv, api_key="sk-secret").complete("hi") == "ok"


def test_missing_key_against_keyed_server():
    with FakeOpenAIServer(api_key="sk-secret") as srv:
        with pytest.raises(LLMError, match=KEY_ENV):
            make_lm(srv).complete("hi")
        assert len(srv.requests) == 1
        assert srv.fault_log == []  # the auth check consumed no fault


# -- score -------------------------------------------------------------------------------------
def test_score_sums_continuation_logprobs():
    with FakeOpenAIServer() as srv:
        lm = make_lm(srv)
        scores = lm.score(Q, ["Paris is", "  Berlin", ""])
        # The fake gives each whitespace-led token -0.1 * len(token); render_plain ends in
        # "Assistant: " so the first continuation token carries that space: " Paris", " is".
        assert scores[0] == pytest.approx(-0.1 * (len(" Paris") + len(" is")))
        assert scores[1] == pytest.approx(-0.1 * len("   Berlin"))
        assert scores[2] == 0.0
        bodies = [b for p, b in srv.requests if p == "/v1/completions"]
        assert len(bodies) == 2
        # requests run in parallel, so they may arrive in any order
        assert sorted(b["prompt"] for b in bodies) == sorted(
            render_plain(Q) + cont for cont in ["Paris is", "  Berlin"]
        )
        for b in bodies:
            assert (b["echo"], b["logprobs"], b["max_tokens"]) == (True, 1, 0)


def test_score_unsupported_endpoint():
    with FakeOpenAIServer(supports_logprobs=False) as srv:
        with pytest.raises(LLMError, match="echo\\+logprobs") as ei:
            make_lm(srv).score(Q, ["Paris"])
        assert "local model" in str(ei.value)
        assert len(srv.requests) == 1  # a 400 is not retried


# -- the fake server itself ---------------------------------------------------------------------
def test_fake_server_models_and_clean_shutdown():
    import httpx

    srv = FakeOpenAIServer(model="tiny")
    with srv:
        r = httpx.get(srv.base_url + "/models")
        assert r.json()["data"][0]["id"] == "tiny"
        port = srv.port
    with socket.socket() as s:  # the port is released
        s.bind(("127.0.0.1", port))
    with pytest.raises(ValueError, match="unknown fault"):
        FakeOpenAIServer(faults=["explode"])


# -- streaming ---------------------------------------------------------------------------------


def test_stream_yields_the_endpoints_pieces_and_counts_its_usage():
    with FakeOpenAIServer(reply=["Paris is the capital of France."]) as srv:
        lm = make_lm(srv)
        assert lm.can_stream
        pieces = list(lm.stream(Q, max_tokens=64))
        assert len(pieces) == 6 and "".join(pieces) == "Paris is the capital of France."
        body = srv.chat_requests()[0]
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
        assert lm.usage.completion_tokens == 6 and lm.usage.prompt_tokens == 6  # the endpoint's
        assert lm.usage.requests == 1


def test_stream_is_retried_before_its_first_byte_only():
    with FakeOpenAIServer(reply=["one two three"], faults=["500", "drop", "429", "ok"]) as srv:
        lm = make_lm(srv)
        assert "".join(lm.stream(Q)) == "one two three"
        assert lm.stats["500"] == 1 and lm.stats["connect"] == 1 and lm.stats["429"] == 1
    with FakeOpenAIServer(reply=["one two three four"], faults=["cut"]) as srv:
        lm = make_lm(srv)
        got = []
        with pytest.raises(LLMError, match="after 2 pieces without \\[DONE\\]"):
            for piece in lm.stream(Q):
                got.append(piece)
        assert got == ["one", " two"] and len(srv.chat_requests()) == 1  # never sent again
    with FakeOpenAIServer(faults=["400"]) as srv:  # permanent errors: at once, with the message
        with pytest.raises(LLMError, match="Invalid value for 'temperature'"):
            list(make_lm(srv).stream(Q))


def test_stream_cuts_at_stop_strings_the_endpoint_ignores():
    with FakeOpenAIServer(reply=["alpha beta STOP gamma"], honour_stop=False) as srv:
        assert "".join(make_lm(srv).stream(Q, stop=[" STOP"])) == "alpha beta"


def test_closing_the_stream_early_closes_the_connection():
    with FakeOpenAIServer(reply=[" ".join(["w"] * 200)], stream_delay=0.01) as srv:
        it = make_lm(srv).stream(Q, max_tokens=500)
        assert next(it) == "w"
        t0 = time.perf_counter()
        it.close()
        assert time.perf_counter() - t0 < 1


# -- max_tokens / max_completion_tokens ---------------------------------------------------------


def test_an_endpoint_that_refuses_max_tokens_gets_max_completion_tokens():
    with FakeOpenAIServer(reply=["a b c d e"], reject_max_tokens=True) as srv:
        lm = make_lm(srv, max_retries=0)  # the switch is not a retry
        [c] = lm.generate([Q], max_tokens=2)
        assert c.text == "a b" and c.finish_reason == "length"
        first, second = srv.chat_requests()
        assert "max_tokens" in first and second["max_completion_tokens"] == 2
        assert "max_tokens" not in second and lm.max_tokens_key == "max_completion_tokens"
        lm.generate([Q], max_tokens=3)  # remembered: one request, the right key
        assert "".join(lm.stream(Q, max_tokens=4)) == "a b c d"
        assert len(srv.chat_requests()) == 4
        assert all("max_tokens" not in b for b in srv.chat_requests()[2:])
        assert sum(lm.stats.values()) == 0


def test_the_key_switch_goes_back_for_servers_that_refuse_the_new_key():
    from ragtune.llm.openai import _swapped_key

    msg = "Unrecognized request argument supplied: max_completion_tokens"
    assert _swapped_key({"max_completion_tokens": 5}, msg) == "max_tokens"
    assert _swapped_key({"max_tokens": 5}, "Invalid value for 'temperature'.") is None
