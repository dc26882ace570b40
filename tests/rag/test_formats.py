"""One prompt contract: a RAFT adapter is asked as it was trained, and its reply is read back.

The tiny model's adapter is really trained and loaded; what it *says* after one step is noise,
so the reply side uses a DummyLM that carries the same adapter's recorded format and answers
with a chain of thought quoting the document it was shown.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from ragtune.raft.examples import instruction
from tests.conftest import write_short_api
from tests.server.conftest import LiveServer

MARKERS = ("##begin_quote##", "##end_quote##", "<ANSWER>:")


@pytest.fixture(scope="module")
def raft_adapter(tmp_path_factory, tiny_model, tiny_tokenizer):
    """(RAFT data dir, trained adapter dir, index over the same API records)."""
    from ragtune.corpus.build import IndexConfig, build_index
    from ragtune.raft.jobs import RaftBuildConfig
    from ragtune.raft.jobs import build_raft as run_build
    from ragtune.train.trainer import TrainConfig, train

    tmp = tmp_path_factory.mktemp("formats")
    api = write_short_api(tmp / "api.jsonl")
    run_build(RaftBuildConfig(paths=[str(api)], out=str(tmp / "raft"), distractors=2))
    train(
        TrainConfig(
            data=str(tmp / "raft"),
            out=str(tmp / "run"),
            model=str(tiny_model),
            max_steps=1,
            batch_tokens=1024,
            save_every=0,
            threads=1,
        )
    )
    idx = build_index(
        IndexConfig(paths=[str(api)], out=str(tmp / "index"), chunk_mode="record"),
        tokenizer=tiny_tokenizer,
    )
    return tmp / "raft", tmp / "run" / "adapter", idx


def test_train_records_the_format_and_the_backend_asks_in_it(raft_adapter, tiny_model):
    from ragtune.llm.local import TransformersLM
    from ragtune.rag import RAG

    data, adapter, idx = raft_adapter
    info = json.loads((adapter / "ragtune.json").read_text())
    assert info["prompt_format"] == "raft" and info["view"] == "chat"
    assert info["base_model"] == str(tiny_model)
    assert len(info["data_manifest_sha256"]) == 64

    lm = TransformersLM(tiny_model, adapter=adapter, threads=1)
    assert lm.prompt_format.name == "raft"
    seen = []
    real = lm._generate
    lm._generate = lambda batch, cfg: seen.extend(batch) or real(batch, cfg)
    q = "Which call runs op 3?"
    ans = RAG(idx, lm, k=3, max_tokens=4).ask(q)
    # exactly the training prompt's shape: no system message, bare <DOCUMENT> blocks, question
    train_row = json.loads((data / "chat" / "train.jsonl").read_text().splitlines()[0])
    raw_row = json.loads((data / "raw" / "train.jsonl").read_text().splitlines()[0])
    assert train_row["messages"][0] == {
        "role": "user",
        "content": instruction(raw_row["documents"], raw_row["question"]),
    }
    assert seen == [[{"role": "user", "content": instruction([d.text for d in ans.documents], q)}]]

    untuned = TransformersLM(tiny_model, threads=1)  # no adapter: the numbered RAG prompt
    assert untuned.prompt_format is None
    assert RAG(idx, untuned).format.name == "rag"


def _quoting_teacher(messages):
    """Quote the first document shown, then answer with the call it names."""
    doc = re.search(r"<DOCUMENT>(.*?)</DOCUMENT>", messages[-1]["content"], re.S).group(1)
    call = re.search(r"api_call: (\S+)", doc).group(1)
    return f"The request matches ##begin_quote##api_call: {call}##end_quote##. <ANSWER>: {call}"


@pytest.fixture
def tuned_rag(raft_adapter):
    from ragtune.rag import RAG
    from ragtune.rag.formats import adapter_format
    from ragtune.testing import DummyLM

    _, adapter, idx = raft_adapter
    lm = DummyLM(_quoting_teacher)
    lm.prompt_format = adapter_format(adapter)  # what a backend loading this adapter declares
    return RAG(idx, lm, k=3)


def _check_clean(answer: str, citations: list[dict], documents: list[dict]) -> None:
    assert answer.startswith("zz.op") and not any(m in answer for m in MARKERS)
    assert citations and citations[0]["method"] == "quote"
    for c in citations:
        text = documents[c["n"] - 1]["text"]
        assert text[c["start"] : c["end"]] == c["quote"] and "api_call" in c["quote"]


def test_reasoning_reply_becomes_answer_and_quote_citations(tuned_rag):
    ans = tuned_rag.ask("Which call runs op 3?")
    d = ans.to_dict()
    _check_clean(d["answer"], d["citations"], d["documents"])
    assert all(m in ans.reasoning for m in MARKERS)


def test_server_answers_clean_with_quote_citations(tuned_rag):
    from ragtune.server import Settings, create_app

    srv = LiveServer(create_app(rag=tuned_rag, settings=Settings(api_key=None))).start()
    try:
        body = {"messages": [{"role": "user", "content": "Which call runs op 3?"}]}
        r = httpx.post(srv.base_url + "/chat/completions", json=body, timeout=30).json()
        extra = r["ragtune"]
        _check_clean(r["choices"][0]["message"]["content"], extra["citations"], extra["documents"])
        assert "##begin_quote##" in extra["reasoning"]
        # streamed: the chain of thought as reasoning_content, the answer alone as content
        content, reasoning = "", ""
        with httpx.stream(
            "POST", srv.base_url + "/chat/completions", json={**body, "stream": True}, timeout=30
        ) as s:
            for line in s.iter_lines():
                if line.startswith("data: {"):
                    delta = json.loads(line[6:])["choices"] or [{"delta": {}}]
                    content += delta[0]["delta"].get("content") or ""
                    reasoning += delta[0]["delta"].get("reasoning_content") or ""
        assert content == r["choices"][0]["message"]["content"]
        assert "<ANSWER>:" in reasoning
    finally:
        srv.stop()
