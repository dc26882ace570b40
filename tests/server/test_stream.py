"""LM.stream (the default and the local transformers one) and `ragtune serve`'s app builder."""

from __future__ import annotations

import re
import time

import httpx

from ragtune.llm.base import stream_until_stop
from ragtune.testing import DummyLM

MSGS = [{"role": "user", "content": "Say something."}]


def test_stream_until_stop():
    assert "".join(stream_until_stop(["Hel", "lo\n", "\nWorld"], ["\n\n"])) == "Hello"
    assert "".join(stream_until_stop(["ab<", "/s", ">cd"], ["</s>"])) == "ab"
    assert "".join(stream_until_stop(["a<", "b", "<"], ["</s>"])) == "a<b<"  # false starts
    assert list(stream_until_stop(["a", "b"], None)) == ["a", "b"]
    # text is released as soon as it cannot begin a stop string
    assert list(stream_until_stop(["one ", "two"], ["\n\n"])) == ["one ", "two"]


def test_default_stream_yields_the_whole_reply():
    lm = DummyLM(["one two three"])
    assert list(lm.stream(MSGS, max_tokens=2)) == ["one two"]
    assert lm.usage.requests == 1


def test_local_stream_matches_generate(tiny_model):
    from ragtune.llm.local import TransformersLM

    lm = TransformersLM(tiny_model)
    [full] = lm.generate([MSGS], max_tokens=16)
    pieces = list(lm.stream(MSGS, max_tokens=16))
    assert len(pieces) > 1 and all(pieces) and "".join(pieces).strip() == full.text
    assert lm.usage.requests == 2 and lm.usage.completion_tokens == 2 * full.completion_tokens
    stop = re.search(r"[A-Za-z]{3,}", full.text[1:]).group()  # both paths cut before it
    [cut] = lm.generate([MSGS], max_tokens=16, stop=[stop])
    assert "".join(lm.stream(MSGS, max_tokens=16, stop=[stop])).strip() == cut.text
    # closing early (a client hung up) stops the generation thread promptly
    it = lm.stream(MSGS, max_tokens=900)
    next(it)
    t0 = time.perf_counter()
    it.close()
    assert time.perf_counter() - t0 < 2


def test_serve_command(glimmer_index, tmp_path):
    import typer
    from typer.testing import CliRunner

    from ragtune.cli.serve import register
    from ragtune.config import load_config
    from ragtune.server.serve import ServeConfig, build_app
    from tests.server.conftest import LiveServer

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `serve` a subcommand
    out = CliRunner().invoke(app, ["serve", "--help"])
    assert out.exit_code == 0 and "--index" in out.output and "--max-queue" in out.output
    (tmp_path / "serve.yaml").write_text(
        f"index: {glimmer_index.path}\nmodel: dummy\nmax_queue: 3\nname: glimmer\n"
    )
    cfg = load_config(ServeConfig, tmp_path / "serve.yaml")
    srv = LiveServer(build_app(cfg)).start()
    try:
        h = httpx.get(srv.url + "/healthz").json()
        assert h["model"] == "glimmer" and h["limits"]["max_queue"] == 3
        assert h["modes"] == ["rag"]
        r = httpx.post(
            srv.base_url + "/chat/completions",
            json={"messages": [{"role": "user", "content": "lease?"}]},
        )
        assert r.json()["choices"][0]["message"]["content"].startswith("echo: ")
    finally:
        srv.stop()


def test_serve_with_an_endpoint_model_streams(glimmer_index):
    """`serve --model openai:...` streams the endpoint's pieces as they come, and a batched
    server (--max-batch) sends a batch's requests to the endpoint at once."""
    from concurrent.futures import ThreadPoolExecutor

    from ragtune.server.serve import ServeConfig, build_app
    from ragtune.testing_server import FakeOpenAIServer
    from tests.server.conftest import LiveServer

    words = "A lease lasts 30 seconds by default [1]."
    with FakeOpenAIServer(
        reply=[words], stream_delay=0.05, latency=0.5, reject_max_tokens=True
    ) as fake:
        spec = f"openai:fake-model@{fake.base_url}"
        cfg = ServeConfig(index=str(glimmer_index.path), model=spec, max_batch=4)
        srv = LiveServer(build_app(cfg)).start()
        try:
            body = {"messages": [{"role": "user", "content": "How long is a lease?"}]}
            arrivals = []
            with httpx.stream(
                "POST", srv.base_url + "/chat/completions", json={**body, "stream": True}
            ) as r:
                for line in r.iter_lines():
                    if '"content": "' in line and '"content": ""' not in line:
                        arrivals.append(time.perf_counter())
            assert len(arrivals) >= 6  # word by word, not one piece at the end
            assert arrivals[-1] - arrivals[0] > 0.2  # as the endpoint produced them
            sent = fake.chat_requests()[-1]
            assert sent["stream"] is True and "max_completion_tokens" in sent

            def ask(_):
                return httpx.post(srv.base_url + "/chat/completions", json=body, timeout=30)

            t0 = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                replies = list(pool.map(ask, range(4)))
            assert all(r.json()["choices"][0]["message"]["content"] == words for r in replies)
            # at once: the endpoint thinks 0.5 s per request, so one after another takes 2 s
            assert time.perf_counter() - t0 < 1.5
        finally:
            srv.stop()
