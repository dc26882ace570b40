"""`raft from-qa`: QA datasets → RAFT examples (template CoT, or a teacher that writes only the CoT)."""

import json

import pytest

from ragtune.raft.jobs import RaftFromQAConfig
from ragtune.raft.jobs import raft_from_qa as run_from_qa
from ragtune.raft.prompts import ANSWER_TAG
from ragtune.raft.verify import check
from ragtune.testing import fake_teacher_reply
from ragtune.testing_server import FakeOpenAIServer
from tests.conftest import SHARED_DATA

RAFT = SHARED_DATA / "raft"


def rows(out):
    return [
        json.loads(line)
        for s in ("train", "valid", "test")
        for line in (out / "raw" / f"{s}.jsonl").read_text().splitlines()
    ]


def generic(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    docs = {
        f"d{i}": f"Fact {i}: the widget number {i} is painted color{i}. It weighs {i} kg."
        for i in range(12)
    }
    corpus.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in docs.items()))
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        "".join(
            json.dumps(
                {
                    "question": f"What color is widget {i}?",
                    "answer": f"color{i}",
                    "oracle_ids": [f"d{i}"],
                }
            )
            + "\n"
            for i in range(12)
        )
    )
    return qa, corpus


def test_generic_with_template_cot(tmp_path):
    qa, corpus = generic(tmp_path)
    m = run_from_qa(
        RaftFromQAConfig(
            reader="generic",
            path=str(qa),
            corpus=str(corpus),
            out=str(tmp_path / "o"),
            distractors=3,
        )
    )
    rs = rows(tmp_path / "o")
    assert m["examples"] == 12 == len(rs)
    for r in rs:
        n = r["question"].split()[-1].rstrip("?")
        assert r["answer"] == f"color{n}"
        assert check(r["cot_answer"], r["oracle"]) is None
        assert (
            r["answer"] in r["cot_answer"].split("##end_quote##")[0]
        )  # the quote holds the answer


def test_generic_with_teacher_writing_only_the_cot(tmp_path):
    qa, corpus = generic(tmp_path)
    with FakeOpenAIServer(reply=fake_teacher_reply) as srv:
        run_from_qa(
            RaftFromQAConfig(
                reader="generic",
                path=str(qa),
                corpus=str(corpus),
                out=str(tmp_path / "o"),
                teacher=f"openai:fake@{srv.base_url}",
            )
        )
        prompts = [json.dumps(b) for _, b in srv.requests]
    assert len(prompts) == 12  # one CoT call per question, no question-writing calls
    assert all("The correct final answer is: color" in p for p in prompts)  # gold answer hint
    assert all(ANSWER_TAG in r["cot_answer"] for r in rows(tmp_path / "o"))


@pytest.mark.skipif(not (RAFT / "gorilla_huggingface").exists(), reason="shared data absent")
def test_gorilla_apibench(tmp_path):
    m = run_from_qa(
        RaftFromQAConfig(
            reader="gorilla",
            path=str(RAFT / "gorilla_huggingface" / "huggingface_eval.json"),
            out=str(tmp_path / "g"),
        )
    )
    rs = rows(tmp_path / "g")
    assert m["examples"] == 911 == len(rs)
    by_split = {s: {r["group"] for r in rs if r["split"] == s} for s in ("train", "valid", "test")}
    assert not by_split["train"] & by_split["test"]  # no API in both
    for r in rs:
        assert r["type"] == "api call" and r["answer"] in r["oracle"][0]
        name = r["meta"]["api_name"]
        others = [d for i, d in enumerate(r["documents"]) if i not in r["oracle_indices"]]
        assert not any(f"api_name: {name}\n" in d for d in others)  # no copy of the gold API


@pytest.mark.skipif(not (RAFT / "hotpotqa").exists(), reason="shared data absent")
def test_hotpotqa(tmp_path):
    m = run_from_qa(
        RaftFromQAConfig(
            reader="hotpotqa",
            path=str(RAFT / "hotpotqa" / "dev_300.jsonl"),
            out=str(tmp_path / "h"),
        )
    )
    rs = rows(tmp_path / "h")
    assert m["examples"] == 300
    for r in rs:
        assert len(r["oracle"]) == 2 and len(r["documents"]) == 6
        assert len(r["oracle_indices"]) == (2 if r["oracle_present"] else 0)
