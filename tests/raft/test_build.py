"""The RAFT builder on real files: offline teacher, LLM teacher on a loopback server, faults."""

import json
import re
import threading
from collections import Counter
from pathlib import Path

import pytest

from ragtune.errors import ConfigError, DataError
from ragtune.examples import GLIMMERDB
from ragtune.examples.fictional import write_fictional_api
from ragtune.raft.build import Builder, RaftConfig, corpus_units
from ragtune.raft.examples import DistractorPicker, item_rng
from ragtune.raft.prompts import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE
from ragtune.raft.verify import check
from ragtune.testing import fake_teacher_reply
from ragtune.testing_server import FakeOpenAIServer

API = GLIMMERDB / "api.jsonl"


def build(paths, out, **kw):
    cfg = RaftConfig(out=str(out), **kw)
    units, pool, source = corpus_units([str(p) for p in paths], cfg)
    return Builder(cfg, units, pool, source).run()


def raw(out, split="train"):
    return [
        json.loads(line) for line in (Path(out) / "raw" / f"{split}.jsonl").read_text().splitlines()
    ]


def all_raw(out):
    return [r for s in ("train", "valid", "test") for r in raw(out, s)]


def make_records(path: Path, n: int) -> Path:
    return write_fictional_api(path, n)


def test_offline_build_structure(tmp_path):
    m = build([API], tmp_path / "o", distractors=3)
    rows = all_raw(tmp_path / "o")
    assert m["examples"] == len(rows) > 8
    for r in rows:
        assert len(r["documents"]) == 4  # oracle + 3, or 4 distractors when it is dropped
        assert len(set(r["documents"])) == 4  # never a duplicate
        if r["oracle_present"]:
            assert r["documents"][r["oracle_index"]] == r["oracle"][0]
        else:
            assert r["oracle_index"] == -1 and r["oracle"][0] not in r["documents"]
        assert r["instruction"].startswith("<DOCUMENT>") and r["instruction"].endswith(
            r["question"]
        )
        assert r["instruction"].count("<DOCUMENT>") == 4
        assert check(r["cot_answer"], r["oracle"]) is None
        assert r["cot_answer"].rsplit(ANSWER_TAG, 1)[1].strip() == r["answer"]
        assert BEGIN_QUOTE in r["cot_answer"] and END_QUOTE in r["cot_answer"]
    # API questions do not name the API
    api_qs = [r for r in rows if r["type"] == "api call" and r["question"].startswith("Which API")]
    assert api_qs and all(r["answer"].split("(")[0] not in r["question"] for r in api_qs)


def test_dense_doc_order_reorders_the_same_documents(tmp_path):
    """--doc-order dense: each example keeps its documents, ordered most-similar-first, with the
    oracle's position and the prompt (every view) following the new order."""
    import numpy as np

    from ragtune.retrieval.dense import Embedder

    build([API], tmp_path / "s", distractors=3, seed=1)
    build([API], tmp_path / "d", distractors=3, seed=1, doc_order="dense")
    shuf, dense = all_raw(tmp_path / "s"), all_raw(tmp_path / "d")
    assert [r["id"] for r in shuf] == [r["id"] for r in dense]
    assert [r["documents"] for r in shuf] != [r["documents"] for r in dense]
    emb = Embedder()
    first = 0
    for a, b in zip(shuf, dense, strict=True):
        assert sorted(a["documents"]) == sorted(b["documents"])
        assert a["cot_answer"] == b["cot_answer"] and a["oracle_present"] == b["oracle_present"]
        sims = emb.encode(b["documents"]) @ emb.encode([b["question"]])[0]
        assert np.all(np.diff(sims) <= 1e-6)  # best first
        if b["oracle_present"]:
            assert b["documents"][b["oracle_index"]] == b["oracle"][0]
            first += b["oracle_index"] == 0
        else:
            assert b["oracle_index"] == -1
        assert b["instruction"].startswith("<DOCUMENT>" + b["documents"][0])
    assert first > sum(r["oracle_index"] == 0 for r in shuf)  # the oracle moved up
    chat = [
        json.loads(line)
        for line in (tmp_path / "d" / "chat" / "train.jsonl").read_text().splitlines()
    ]
    assert [c["messages"][0]["content"] for c in chat] == [
        r["instruction"] for r in raw(tmp_path / "d")
    ]
    with pytest.raises(ConfigError, match="--doc-order"):
        build([API], tmp_path / "x", doc_order="bm25")


def test_p_fraction_splits_by_group_and_determinism(tmp_path):
    recs = make_records(tmp_path / "recs.jsonl", 120)
    build([recs], tmp_path / "a", p=0.8, seed=3, questions=2)
    rows = all_raw(tmp_path / "a")
    share = sum(r["oracle_present"] for r in rows) / len(rows)
    assert len(rows) == 240 and 0.72 <= share <= 0.88
    groups = {s: {r["group"] for r in raw(tmp_path / "a", s)} for s in ("train", "valid", "test")}
    assert not (groups["train"] & groups["valid"]) and not (groups["train"] & groups["test"])
    assert groups["valid"] and groups["test"]
    build([recs], tmp_path / "b", p=0.8, seed=3, questions=2, workers=1)
    assert (tmp_path / "a" / "raw" / "train.jsonl").read_text() == (
        tmp_path / "b" / "raw" / "train.jsonl"
    ).read_text()
    build([recs], tmp_path / "c", p=0.8, seed=4, questions=2)
    assert [r["documents"] for r in all_raw(tmp_path / "c")] != [r["documents"] for r in rows]
    build([recs], tmp_path / "d", p=0.0, questions=1)
    assert not any(r["oracle_present"] for r in all_raw(tmp_path / "d"))


def test_formats_load_with_datasets(tmp_path):
    from datasets import load_dataset

    build([API], tmp_path / "o", distractors=2, system_prompt="Be exact.")
    chat = load_dataset("json", data_files=str(tmp_path / "o" / "chat" / "train.jsonl"))["train"]
    assert [m["role"] for m in chat[0]["messages"]] == ["system", "user", "assistant"]
    comp = load_dataset("json", data_files=str(tmp_path / "o" / "completion" / "train.jsonl"))[
        "train"
    ]
    assert comp[0]["completion"].endswith("</s>") and "<DOCUMENT>" in comp[0]["prompt"]
    rawds = load_dataset("json", data_files=str(tmp_path / "o" / "raw" / "train.jsonl"))["train"]
    assert {
        "question",
        "documents",
        "oracle_present",
        "oracle_index",
        "cot_answer",
        "answer",
    } <= set(rawds.column_names)
    build([API], tmp_path / "p", distractors=2, output_type="parquet", format=["chat"])
    pq = load_dataset("parquet", data_files=str(tmp_path / "p" / "chat" / "train.parquet"))["train"]
    assert len(pq) == len(chat) or len(pq) > 0
    from datasets import load_from_disk

    assert len(load_from_disk(str(tmp_path / "o" / "hf"))["train"]) == len(rawds)


def test_refusal_and_no_cot(tmp_path):
    """A refusal is a training target only: the CoT refuses, the row keeps its gold answer (what
    eval scores against and the DSF view trains on) and says the oracle was absent."""
    from ragtune.raft.prompts import REFUSAL
    from ragtune.train.data import conversations, find_split

    recs = make_records(tmp_path / "r.jsonl", 30)
    build([recs], tmp_path / "g", p=0.0, questions=1)
    gold = {r["id"]: r["answer"] for r in all_raw(tmp_path / "g")}
    build([recs], tmp_path / "o", p=0.0, refusal_rate=1.0, questions=1)
    rows = all_raw(tmp_path / "o")
    assert rows and all(r["meta"]["refusal"] and not r["oracle_present"] for r in rows)
    assert all(r["cot_answer"] == REFUSAL and r["answer"] == gold[r["id"]] for r in rows)
    assert "I don't know" not in gold.values()
    dsf = conversations(find_split(tmp_path / "o", "dsf", "train"), "dsf")
    assert sorted(c[-1]["content"] for c in dsf) == sorted(r["answer"] for r in raw(tmp_path / "o"))
    chat = conversations(find_split(tmp_path / "o", "chat", "train"), "chat")
    assert {c[-1]["content"] for c in chat} == {REFUSAL}
    build([recs], tmp_path / "n", no_cot=True, questions=1)
    assert all(r["cot_answer"] == f"{ANSWER_TAG} {r['answer']}" for r in all_raw(tmp_path / "n"))


def test_hard_distractors_are_lexical_neighbours_not_near_duplicates():
    pool = [
        "The lease of a shard lasts thirty seconds by default.",
        "The lease of a shard lasts thirty seconds by default!",  # near-duplicate of the oracle
        "A lease on a shard may be renewed while the writer is alive.",
        "Bananas are yellow fruit rich in potassium.",
        "Compaction merges log segments of a shard.",
        "Snapshots are compressed with zstd.",
    ]
    picker = DistractorPicker(pool, "hard")
    got = picker.pick("How long does a shard lease last?", [pool[0]], 2, item_rng(0, "x"))
    assert pool[0] not in got and pool[1] not in got
    assert got[0] == pool[2]
    with pytest.raises(DataError, match="lower --distractors"):
        picker.pick("q", [pool[0]], 5, item_rng(0, "x"))


def test_mixed_distractors_are_half_bm25_hits_half_random():
    near = [f"The lease of shard {i} lasts {i} seconds unless renewed." for i in range(4)]
    far = [f"Fruit number {i} is a banana rich in potassium." for i in range(40)]
    pool = ["The shard lease lasts thirty seconds by default.", *near, *far]
    picker = DistractorPicker(pool, "mixed")
    for seed in range(5):
        got = picker.pick("How long does a shard lease last?", [pool[0]], 4, item_rng(seed, "x"))
        assert len(got) == 4 and pool[0] not in got
        # the first two are BM25 neighbours; the other two come from the pool at random,
        # which here is mostly bananas (40 of 44)
        assert set(got[:2]) <= set(near)
    picks = [
        picker.pick("How long does a shard lease last?", [pool[0]], 4, item_rng(s, "x"))
        for s in range(20)
    ]
    assert sum(g in far for got in picks for g in got[2:]) >= 30  # hard mode would give 0
    assert all(
        g in near
        for g in DistractorPicker(pool, "hard").pick(
            "How long does a shard lease last?", [pool[0]], 4, item_rng(0, "x")
        )
    )


def test_verification_reasons():
    oracle = ["The vault opens in read-only mode with mode='ro'."]
    ok = f"It says {BEGIN_QUOTE}the vault opens in read-only  mode{END_QUOTE}.\n{ANSWER_TAG} ro"
    assert check(ok, oracle) is None  # case and whitespace normalised
    assert check("no tag here", oracle) == "missing_answer_tag"
    assert check(f"{BEGIN_QUOTE}made up{END_QUOTE} {ANSWER_TAG} x", oracle) == "quote_not_in_oracle"
    assert check(f"{ANSWER_TAG}  ", oracle) == "empty_answer"


def test_llm_teacher_faults_give_the_same_records(tmp_path):
    kw = dict(distractors=3, questions=2, workers=3)
    with FakeOpenAIServer(reply=fake_teacher_reply) as srv:
        build([API], tmp_path / "clean", teacher=f"openai:fake@{srv.base_url}", **kw)
    faults = ["timeout", "429", "500", "malformed", "ok", "503", "drop", "badjson", "429"]
    with FakeOpenAIServer(reply=fake_teacher_reply, faults=faults, timeout_sleep=3.0) as srv:
        import ragtune.llm.openai as oa

        orig = oa.OpenAILM.__init__

        def fast(self, *a, **k):  # tiny backoff and a short timeout so the test takes seconds
            orig(self, *a, **{**k, "backoff_base": 0.01, "timeout": 1.0})

        oa.OpenAILM.__init__ = fast
        try:
            m = build([API], tmp_path / "faulty", teacher=f"openai:fake@{srv.base_url}", **kw)
        finally:
            oa.OpenAILM.__init__ = orig
        log = list(srv.fault_log)
    assert all(f in str(log) for f in ("timeout", "429", "500", "malformed"))
    assert sum(m["teacher_retries"].values()) == len(faults) - 1  # every fault but "ok" retried
    assert all_raw(tmp_path / "faulty") == all_raw(tmp_path / "clean")


def test_bad_answers_are_retried_once_then_dropped(tmp_path):
    calls = {"n": 0}

    def reply(messages):
        text = fake_teacher_reply(messages)
        if "Question:" in messages[-1]["content"] or "Request:" in messages[-1]["content"]:
            calls["n"] += 1
            if "part 1" in messages[-1]["content"]:  # always invent a quote for these
                return f"{BEGIN_QUOTE}not in the document{END_QUOTE}\n{ANSWER_TAG} x"
        return text

    with FakeOpenAIServer(reply=reply) as srv:
        m = build(
            [API], tmp_path / "o", teacher=f"openai:fake@{srv.base_url}", questions=2, distractors=2
        )
    assert m["drops"] == {"quote_not_in_oracle": 8}
    assert m["stats"]["retried_answers"] == 8
    assert m["examples"] == 8


def test_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no documents"):
        build([tmp_path / "empty"], tmp_path / "o")
    two = make_records(tmp_path / "two.jsonl", 2)
    with pytest.raises(DataError, match=r"needs 5 distractors .*the chunk \w+ has 1 usable"):
        build([two], tmp_path / "o")
    with pytest.raises(ConfigError, match="unknown --format"):
        build([API], tmp_path / "o", format=["csv"])
    with pytest.raises(DataError, match="--teacher MODEL"):
        build([GLIMMERDB / "changelog.txt", API], tmp_path / "o", chunk_mode="record")
    build([API], tmp_path / "o2", distractors=2)
    with pytest.raises(ConfigError, match="--restart"):
        build([API], tmp_path / "o2", distractors=3)
    build([API], tmp_path / "o2", distractors=3, restart=True)


def test_degenerate_answers():
    from ragtune.raft.verify import degenerate

    assert degenerate("The answer is: The answer is: The answer is: The answer is:")
    assert degenerate("<answer>: x")
    assert not degenerate(
        "Moves the specified thread to the trash. Any messages that belong to the thread are "
        "also moved to the trash."
    )


def test_ids_and_splits_do_not_depend_on_how_the_path_is_typed(tmp_path, monkeypatch):
    """`raft build` of one file typed as a relative path, an absolute path, and a copy in
    another folder (and of one folder, relative and absolute): the same ids, groups and splits.
    They used to hash the path string, so each gave another split."""
    from ragtune.raft.jobs import RaftBuildConfig
    from ragtune.raft.jobs import build_raft as run_build

    work = tmp_path / "work"
    (work / "data" / "sub").mkdir(parents=True)
    recs = make_records(work / "data" / "recs.jsonl", 40)
    (work / "data" / "sub" / "recs.jsonl").write_bytes(recs.read_bytes())
    copy = tmp_path / "elsewhere" / "deep"
    copy.mkdir(parents=True)
    (copy / "recs.jsonl").write_bytes(recs.read_bytes())
    monkeypatch.chdir(work / "data" / "sub")

    def built(path, out):
        run_build(RaftBuildConfig(paths=[str(path)], out=str(tmp_path / out), questions=1))
        return {
            s: [(r["id"], r["group"], r["documents"]) for r in raw(tmp_path / out, s)]
            for s in ("train", "valid", "test")
        }

    rel = built("../recs.jsonl", "rel")
    assert rel["train"] and rel["valid"] and rel["test"]
    assert built(recs.resolve(), "abs") == rel
    assert built(copy / "recs.jsonl", "copy") == rel
    assert built(Path("..", "..", "..", "elsewhere", "deep", "recs.jsonl"), "copy-rel") == rel
    # a folder: a document's path inside it is part of its identity, the folder's own path not
    folder = built("..", "folder-rel")
    assert folder == built(work / "data", "folder-abs")
    ids = [i for rows in folder.values() for i, _, _ in rows]
    assert len(ids) == len(set(ids)) == 80  # recs.jsonl and sub/recs.jsonl are two documents


# -- what trains and scores the model (issue 16) ------------------------------------------------
_GOLD_HINT = re.compile(r"The correct final answer is: (.*)\. Explain", re.S)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def widgets(tmp_path, n=12, notes=0):
    """Generic QA: 'What color is widget i?' -> color{i}; `notes` more corpus documents per
    widget that mention its colour (they hold the gold answer but are not the oracle)."""
    docs = {
        f"d{i}": f"Fact {i}: the widget number {i} is painted color{i}. It weighs {i} kg."
        for i in range(n)
    }
    for i in range(n):
        for j in range(notes):
            docs[f"n{i}-{j}"] = f"Shop note {j}: the paint color{i} is sold out in store {j}."
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"id": k, "text": v} for k, v in docs.items()])
    qa = write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {
                "question": f"What color is widget {i}?",
                "answer": f"color{i}",
                "oracle_ids": [f"d{i}"],
            }
            for i in range(n)
        ],
    )
    return qa, corpus


def from_qa(qa, out, corpus=None, **kw):
    from ragtune.raft.jobs import RaftFromQAConfig
    from ragtune.raft.jobs import raft_from_qa as run_from_qa

    return run_from_qa(
        RaftFromQAConfig(
            reader="generic",
            path=str(qa),
            corpus=str(corpus) if corpus else None,
            out=str(out),
            **kw,
        )
    )


def scripted_teacher(final, quote=True):
    """A teacher reply for answer prompts: quotes the context's first line (unless `quote` is
    False) and ends with `final(gold, question, attempt)`; attempt counts per question."""
    seen: Counter = Counter()
    lock = threading.Lock()

    def reply(messages):
        user = messages[-1]["content"]
        q = re.search(r"(?:Question|Request): (.*)\n", user).group(1)
        ctx = re.search(r"(?:Context|API documentation): (.*?)\n\n", user, re.S).group(1)
        gold = _GOLD_HINT.search(user).group(1)
        with lock:
            attempt = seen[q]
            seen[q] += 1
        line = ctx.split("\n")[0]
        why = f"The context says {BEGIN_QUOTE}{line}{END_QUOTE}." if quote else "I know this."
        return f"{why}\n{ANSWER_TAG} {final(gold, q, attempt)}"

    return reply


def widget_no(question: str) -> int:
    return int(re.search(r"(\d+)", question).group(1))


def test_from_qa_keeps_the_gold_answer_and_drops_teacher_mismatches(tmp_path):
    """The teacher writes the CoT, but the example's answer (eval gold, DSF target) stays the
    dataset's; a teacher final answer that disagrees with it is asked again, then dropped."""
    qa, corpus = widgets(tmp_path)

    def final(gold, q, attempt):
        i = widget_no(q)
        return [
            gold,  # exact
            f"The widget is painted {gold}.",  # contains the gold: accepted, gold kept
            "blue",  # wrong twice: dropped
            "blue" if attempt == 0 else gold.upper(),  # wrong, then right on the retry
        ][i % 4]

    with FakeOpenAIServer(reply=scripted_teacher(final)) as srv:
        m = from_qa(qa, tmp_path / "o", corpus, teacher=f"openai:fake@{srv.base_url}")
    rs = all_raw(tmp_path / "o")
    assert m["drops"] == {"answer_mismatch": 3}
    assert m["stats"]["retried_answers"] == 6
    assert sorted(widget_no(r["question"]) % 4 for r in rs) == [0, 0, 0, 1, 1, 1, 3, 3, 3]
    for r in rs:
        assert r["answer"] == f"color{widget_no(r['question'])}"  # the gold, not the teacher's
        assert "blue" not in r["cot_answer"]


def test_from_qa_api_answers_are_matched_as_calls(tmp_path):
    """API golds are compared by the call's AST (extra arguments allowed), not as text."""
    recs = [
        f"api_name: zz.op{i}\napi_call: zz.op{i}(a, mode='ro')\ndescription: Op {i}."
        for i in range(8)
    ]
    qa = write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {
                "question": f"Run op {i} read-only",
                "answer": f"zz.op{i}(a, mode='ro')",
                "oracle": r,
                "type": "api call",
            }
            for i, r in enumerate(recs)
        ],
    )

    def final(gold, q, attempt):
        i = widget_no(q)
        if i % 2:
            return f"zz.op{i}(a, mode='ro')"[:-1] + ", retries=2)"  # same call, one more argument
        return f"zz.op{i}(mode='rw')"  # another call: dropped

    with FakeOpenAIServer(reply=scripted_teacher(final)) as srv:
        m = from_qa(qa, tmp_path / "o", teacher=f"openai:fake@{srv.base_url}", distractors=3)
    rs = all_raw(tmp_path / "o")
    assert m["drops"] == {"answer_mismatch": 4}
    assert sorted(widget_no(r["question"]) for r in rs) == [1, 3, 5, 7]
    assert all(r["answer"] == f"zz.op{widget_no(r['question'])}(a, mode='ro')" for r in rs)


def test_answers_without_a_quote_are_dropped_unless_allowed(tmp_path):
    """RAFT's CoT quotes the oracle: an answer with no quoted span is asked again, then dropped
    (`no_quote`); `allow_unquoted` keeps it, and --no-cot (whose target has no CoT) implies it."""
    qa, corpus = widgets(tmp_path)

    def reply(messages):
        q = re.search(r"Question: (.*)\n", messages[-1]["content"]).group(1)
        return scripted_teacher(lambda g, q, a: g, quote=widget_no(q) % 2 == 1)(messages)

    with FakeOpenAIServer(reply=reply) as srv:
        spec = f"openai:fake@{srv.base_url}"
        m = from_qa(qa, tmp_path / "o", corpus, teacher=spec)
        assert m["drops"] == {"no_quote": 6} and m["examples"] == 6
        assert all(BEGIN_QUOTE in r["cot_answer"] for r in all_raw(tmp_path / "o"))
        m = from_qa(qa, tmp_path / "a", corpus, teacher=spec, allow_unquoted=True)
        assert m["drops"] == {} and m["examples"] == 12
        m = from_qa(qa, tmp_path / "n", corpus, teacher=spec, no_cot=True)
        assert m["drops"] == {} and m["examples"] == 12
        m = from_qa(qa, tmp_path / "nq", corpus, teacher=spec, no_cot=True, allow_unquoted=False)
        assert m["drops"] == {"no_quote": 6}
    oracle = ["The vault opens read-only."]
    assert check(f"It does.\n{ANSWER_TAG} yes", oracle) == "no_quote"
    assert check(f"It does.\n{ANSWER_TAG} yes", oracle, require_quote=False) is None


def test_pool_too_small_for_dropped_oracles_fails_before_any_teacher_call(tmp_path):
    """An example whose oracle is dropped shows k + 1 distractors: with P < 1 the pool needs
    k + 2 documents, checked before the teacher is paid; with P = 1, k + 1 suffice."""
    qa, corpus = widgets(tmp_path, n=5)
    with FakeOpenAIServer(reply=scripted_teacher(lambda g, q, a: g)) as srv:
        spec = f"openai:fake@{srv.base_url}"
        with pytest.raises(DataError, match=r"needs 5 distractors .*6 distinct documents") as e:
            from_qa(qa, tmp_path / "o", corpus, teacher=spec, distractors=4, p=0.8)
        assert "--distractors" in str(e.value) and "has 4" in str(e.value)
        assert srv.requests == []  # nothing was paid for
        m = from_qa(qa, tmp_path / "p1", corpus, teacher=spec, distractors=4, p=1.0)
    assert m["examples"] == 5 and all(len(r["documents"]) == 5 for r in all_raw(tmp_path / "p1"))
    m = from_qa(qa, tmp_path / "k3", corpus, distractors=3, p=0.0)  # 3 + 1 distractors of 4 others
    assert m["examples"] == 5


def test_distractors_are_never_the_oracles_api_or_hold_the_gold(tmp_path):
    """No distractor is another record of the oracle's api_name, holds the gold call, or (for
    text) holds the gold answer: with the oracle dropped, such a document would answer too."""
    recs = []
    for i in range(6):  # two versions of each API
        for v in (1, 2):
            recs.append(
                (
                    f"zz.op{i}",
                    f"api_name: zz.op{i}\napi_call: zz.op{i}.v{v}(a)\ndescription: Op {i}, version {v}.",
                )
            )
    qa = write_jsonl(
        tmp_path / "api.jsonl",
        [
            {
                "question": f"Run op {n[5:]} ({j})",
                "answer": r.split("\n")[1][10:],
                "oracle": r,
                "type": "api call",
            }
            for j, (n, r) in enumerate(recs)
        ],
    )
    from_qa(qa, tmp_path / "a", distractors=3, p=0.5)
    rs = all_raw(tmp_path / "a")
    assert len(rs) == 12
    for r in rs:
        name = r["oracle"][0].split("\n")[0]
        others = [d for i, d in enumerate(r["documents"]) if i not in r["oracle_indices"]]
        assert len(others) == (3 if r["oracle_present"] else 4)
        assert not any(d.split("\n")[0] == name for d in others)
    qa, corpus = widgets(tmp_path, notes=3)
    from_qa(qa, tmp_path / "w", corpus, distractors=4, p=0.5)
    rs = all_raw(tmp_path / "w")
    assert len(rs) == 12
    for r in rs:
        others = [d for i, d in enumerate(r["documents"]) if i not in r["oracle_indices"]]
        assert not any(re.search(rf"\b{r['answer']}\b", d) for d in others)


def test_scaffolded_focus_is_per_item_not_shared(tmp_path, monkeypatch):
    """Two chunks asked the same question in parallel: each answer quotes its own chunk's
    sentence (a shared question -> sentence map let one overwrite the other)."""
    from ragtune.testing import DummyLM

    a_asked, b_answered = threading.Event(), threading.Event()

    def reply(messages):
        user = messages[0]["content"]
        if user.startswith("Write one question"):
            return "What does the passage say?"
        if "Alpha" in user and not a_asked.is_set():
            return "loop loop loop loop loop loop loop loop loop"  # degenerate: asked again
        return "it is read-only"

    class Gated(DummyLM):
        # DummyLM runs replies under a lock; the waits happen outside it, in the workers.
        def _generate(self, batch, cfg):
            user = batch[0][0]["content"]
            if user.startswith("Write one question") and "Beta" in user:
                a_asked.wait(10)  # B asks its question after A's first answer...
            out = super()._generate(batch, cfg)
            if not user.startswith("Write one question"):
                if "Alpha" in user and not a_asked.is_set():
                    a_asked.set()
                    b_answered.wait(10)  # ...and A asks again after B has its question
                elif "Beta" in user:
                    b_answered.set()
            return out

    lm = Gated(reply)
    monkeypatch.setattr("ragtune.llm.spec.load_lm", lambda spec, **kw: lm)
    corpus = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"text": "Alpha vaults are opened with the alpha key in read-only mode by default."},
            {"text": "Beta vaults are opened with the beta key in read-write mode by default."},
        ],
    )
    m = build(
        [corpus], tmp_path / "o", teacher="dummy", questions=1, distractors=0, p=1.0, workers=2
    )
    assert a_asked.is_set() and b_answered.is_set()
    assert m["drops"] == {} and m["examples"] == 2
    for r in all_raw(tmp_path / "o"):
        assert f"{BEGIN_QUOTE}{r['oracle'][0]}{END_QUOTE}" in r["cot_answer"]
