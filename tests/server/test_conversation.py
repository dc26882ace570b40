"""Conversations over /v1/chat/completions: earlier turns in the prompt, follow-ups searched
with the conversation's words. Through the official `openai` client against a live server."""

from __future__ import annotations

import pytest

from ragtune.rag import RAG
from ragtune.rag.conversation import fit_history, standalone_query
from ragtune.testing import DummyLM

LEASE_DOC = "renewed automatically while the writer is alive"


def _client(srv):
    from openai import OpenAI

    return OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)


def _lease_docs(extra: dict) -> list[dict]:
    return [d for d in extra["documents"] if "lease" in d["text"].lower()]


@pytest.mark.parametrize("max_batch", [1, 4])
def test_follow_up_is_answered_from_the_conversation(serve, glimmer_index, max_batch):
    lm = DummyLM(lambda m: "A lease lasts 30 seconds by default [1].")
    srv = serve(RAG(glimmer_index, lm, k=2), max_batch=max_batch)
    client = _client(srv)
    msgs = [
        {"role": "system", "content": "Answer in the style of a pirate."},
        {"role": "user", "content": "How long does a lease last?"},
    ]
    first = client.chat.completions.create(model="ragtune", messages=msgs)
    assert _lease_docs(first.model_extra["ragtune"])
    msgs += [
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "and how do I change it?"},
    ]
    second = client.chat.completions.create(model="ragtune", messages=msgs)
    extra = second.model_extra["ragtune"]
    assert extra["query"].startswith("and how do I change it?") and "lease" in extra["query"]
    assert _lease_docs(extra), extra["documents"]  # the follow-up found the lease document
    seen = lm.calls[-1]  # what the model was asked: the earlier turns, then the question
    assert [m["role"] for m in seen] == ["system", "user", "assistant", "user"]
    assert seen[1]["content"] == "How long does a lease last?"
    assert seen[2]["content"] == first.choices[0].message.content
    assert seen[3]["content"].endswith("Question: and how do I change it?")
    # the client's system message is kept, after ragtune's grounded instructions
    assert seen[0]["content"].startswith("You answer questions using only the numbered")
    assert seen[0]["content"].endswith("Answer in the style of a pirate.")

    # the brief's example, streamed: "it" is the lease of the turn before
    msgs[-1] = {"role": "user", "content": "and how is it renewed?"}
    stream = client.chat.completions.create(model="ragtune", messages=msgs, stream=True)
    extra = [c.model_extra["ragtune"] for c in stream if c.model_extra.get("ragtune")][0]
    assert any(LEASE_DOC in d["text"] for d in extra["documents"])


def test_without_rewriting_the_follow_up_misses(serve, glimmer_index):
    srv = serve(RAG(glimmer_index, DummyLM(["ok"]), k=1), rewrite="off")
    msgs = [
        {"role": "user", "content": "How long does a lease last?"},
        {"role": "assistant", "content": "30 seconds."},
        {"role": "user", "content": "and how do I change it?"},
    ]
    r = _client(srv).chat.completions.create(model="ragtune", messages=msgs)
    extra = r.model_extra["ragtune"]
    assert extra["query"] == "and how do I change it?" and not _lease_docs(extra)


def test_the_model_rewrites_when_asked(serve, glimmer_index):
    def reply(messages):
        if "standalone search query" in messages[0]["content"]:
            assert "How long does a lease last?" in messages[-1]["content"]
            return "How do I change the lease length?"
        return "Set lease_seconds [1]."

    srv = serve(RAG(glimmer_index, DummyLM(reply), k=2), rewrite="model")
    msgs = [
        {"role": "user", "content": "How long does a lease last?"},
        {"role": "assistant", "content": "30 seconds."},
        {"role": "user", "content": "and how do I change it?"},
    ]
    r = _client(srv).chat.completions.create(model="ragtune", messages=msgs)
    extra = r.model_extra["ragtune"]
    assert extra["query"] == "How do I change the lease length?" and _lease_docs(extra)
    assert r.choices[0].message.content == "Set lease_seconds [1]."


def test_old_turns_are_dropped_first_within_the_budget(glimmer_index):
    lm = DummyLM(["ok"])
    rag = RAG(glimmer_index, lm, k=1, max_history_tokens=40)
    history = []
    for i in range(6):
        history += [
            {"role": "user", "content": f"question {i} " + "word " * 8},
            {"role": "assistant", "content": f"answer {i} " + "word " * 8},
        ]
    rag.ask("What compression do snapshots use?", history=history)
    seen = lm.calls[-1]
    turns = seen[1:-1]
    assert turns and turns[0]["role"] == "user" and len(turns) < len(history)
    assert turns[-1]["content"].startswith("answer 5")  # the newest kept, the oldest gone
    assert sum(len(m["content"].split()) + 4 for m in turns) <= 40
    assert fit_history(history, 0, len) == []


def test_rule_based_rewrite():
    h = [{"role": "user", "content": "How do I open a vault with glimmer.open_vault?"}]
    q = standalone_query("and what does it return?", h)
    assert q.startswith("and what does it return?") and "glimmer.open_vault" in q
    # a question that stands alone is searched as it is
    assert standalone_query("Which compression do snapshots use?", h) == (
        "Which compression do snapshots use?"
    )
    assert standalone_query("and it?", []) == "and it?"  # nothing to lean on
