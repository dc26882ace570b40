"""Batched generation in the server (--max-batch): a real server on loopback, a real model."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from ragtune.llm.base import RowDropped
from ragtune.rag import RAG
from ragtune.server.limits import ClientGone

QUESTIONS = [
    "How long does a lease last by default?",
    "Which compression do snapshots use?",
    "What error do you get when writing to a read-only vault?",
    "How do I open a vault?",
]


@pytest.fixture(scope="module")
def tiny_lm(tiny_model):
    from ragtune.llm.local import TransformersLM

    return TransformersLM(tiny_model)


@pytest.fixture
def spies(monkeypatch):
    """What the batch decoder did: live rows per step, how each row ended, search widths."""
    from ragtune.llm import batching
    from ragtune.retrieval.index import Index

    seen = {"widths": [], "ended": [], "searches": [], "step_sleep": 0.0}
    step, end, search = batching.BatchDecoder._step, batching.BatchDecoder._end, Index.search

    def _step(self):
        seen["widths"].append(sum(not s.ended for s in self.slots))
        time.sleep(seen["step_sleep"])  # a slow model: time for a client to leave mid-answer
        step(self)

    def _end(self, slot, result):
        seen["ended"].append((result, len(slot.tokens)))
        end(self, slot, result)

    def _search(self, queries, k=5, method=None):
        seen["searches"].append(1 if isinstance(queries, str) else len(queries))
        return search(self, queries, k, method)

    monkeypatch.setattr(batching.BatchDecoder, "_step", _step)
    monkeypatch.setattr(batching.BatchDecoder, "_end", _end)
    monkeypatch.setattr(Index, "search", _search)
    return seen


def _body(i: int, stream: bool = False) -> dict:
    body = {
        "messages": [{"role": "user", "content": QUESTIONS[i]}],
        "max_tokens": [12, 7, 16, 9][i],
        "stream": stream,
    }
    if i == 2:
        body["stop"] = ["e"]  # a stop string of its own, in the middle of a batch
    return body


def _content(resp_text: str) -> str:
    """The assistant text of an SSE stream."""
    out = []
    for line in resp_text.splitlines():
        if line.startswith("data: {"):
            for ch in json.loads(line[6:]).get("choices", []):
                out.append(ch["delta"].get("content") or "")
    return "".join(out)


def test_batched_answers_equal_one_at_a_time(serve, glimmer_index, tiny_lm, spies):
    one = serve(RAG(glimmer_index, tiny_lm, k=2))
    many = serve(RAG(glimmer_index, tiny_lm, k=2), max_batch=4, batch_wait_ms=500)
    url = "/v1/chat/completions"
    ref = [httpx.post(one.url + url, json=_body(i), timeout=60).json() for i in range(4)]
    spies["widths"].clear(), spies["searches"].clear()

    def ask(i: int) -> tuple[dict | None, str | None]:
        if i == 1:  # one of them streams, inside the same batch
            r = httpx.post(many.url + url, json=_body(i, stream=True), timeout=60)
            return None, r.text
        return httpx.post(many.url + url, json=_body(i), timeout=60).json(), None

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(ask, range(4)))
    for i, (resp, sse) in enumerate(got):
        want = ref[i]["choices"][0]["message"]["content"]
        if sse is not None:
            assert _content(sse).strip() == want and sse.endswith("data: [DONE]\n\n")
            continue
        assert resp["choices"][0]["message"]["content"] == want, i
        assert resp["usage"] == ref[i]["usage"]  # the model's own token counts
        assert resp["choices"][0]["finish_reason"] == ref[i]["choices"][0]["finish_reason"]
        assert [d["chunk_id"] for d in resp["ragtune"]["documents"]] == [
            d["chunk_id"] for d in ref[i]["ragtune"]["documents"]
        ]
    assert max(spies["widths"]) == 4  # all four decoded together
    # one batched search for the batch's questions (hybrid: its bm25 and dense parts too)
    assert spies["searches"] and set(spies["searches"]) == {4}
    health = httpx.get(many.url + "/healthz").json()
    assert health["limits"]["max_batch"] == 4 and health["generating"] == 0


def test_clients_that_leave_are_dropped_from_the_batch(serve, glimmer_index, tiny_lm, spies):
    srv = serve(RAG(glimmer_index, tiny_lm, k=1), max_batch=4, batch_wait_ms=200)
    spies["step_sleep"] = 0.02  # 400 tokens would take 8 s
    url = srv.url + "/v1/chat/completions"
    body = {"messages": [{"role": "user", "content": QUESTIONS[0]}], "max_tokens": 400}
    stay = {"messages": [{"role": "user", "content": QUESTIONS[1]}], "max_tokens": 30}
    kept: dict = {}
    t = threading.Thread(target=lambda: kept.update(httpx.post(url, json=stay, timeout=60).json()))
    t.start()
    with httpx.stream("POST", url, json={**body, "stream": True}, timeout=60) as r:
        for line in r.iter_lines():
            if '"content": "' in line and '"content": ""' not in line:
                break  # the first words: hang up
    with pytest.raises(httpx.ReadTimeout):  # a plain request whose client gives up
        httpx.post(url, json=body, timeout=0.6)
    t.join(60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and httpx.get(srv.url + "/healthz").json()["generating"]:
        time.sleep(0.05)
    dropped = [(r, n) for r, n in spies["ended"] if isinstance(r, (ClientGone, RowDropped))]
    assert len(dropped) == 2 and all(n < 100 for _, n in dropped)  # long before 400 tokens
    assert kept["choices"][0]["message"]["content"]  # its neighbour answered in full
    assert httpx.get(srv.url + "/healthz").json()["generating"] == 0
