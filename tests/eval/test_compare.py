"""The five-way comparison end to end on a tiny model (numbers are meaningless; wiring is real)."""

import pytest

import ragtune.eval.compare as compare
from ragtune.errors import ConfigError
from ragtune.eval.compare import EvalConfig, evaluate
from ragtune.raft.build import Builder, RaftConfig, corpus_units
from ragtune.train.trainer import TrainConfig, train
from tests.conftest import write_short_api


def test_eval_writes_every_artifact(tmp_path, tiny_model):
    recs = write_short_api(tmp_path / "api.jsonl")  # fits the tiny model's window
    rc = RaftConfig(out=str(tmp_path / "raft"), distractors=2, questions=1, test_fraction=0.3)
    Builder(rc, *corpus_units([str(recs)], rc)).run()
    for view, name in (("dsf", "dsf"), ("chat", "raft")):
        train(
            TrainConfig(
                data=str(tmp_path / "raft"),
                out=str(tmp_path / name),
                view=view,
                model=str(tiny_model),
                max_steps=2,
                save_every=0,
                threads=1,
            )
        )
    cfg = EvalConfig(
        data=str(tmp_path / "raft"),
        out=str(tmp_path / "eval"),
        model=str(tiny_model),
        dsf_adapter=str(tmp_path / "dsf" / "adapter"),
        raft_adapter=str(tmp_path / "raft" / "adapter"),
        k=3,
        sweep=[0, 2],
        max_tokens=6,
        limit=3,
        threads=1,
    )
    res = evaluate(cfg)
    assert set(res["main"]) == {"base", "base+rag", "dsf", "dsf+rag", "raft"}
    assert all("em" in m and "call_ast" in m and "correct" in m for m in res["main"].values())
    assert set(res["sweep"]) == {"base+rag", "dsf+rag", "raft"} and set(res["sweep"]["raft"]) == {
        "0",
        "2",
    }
    for f in ("results.json", "results.md", "sweep.png", "loss.png", "report.html"):
        assert (tmp_path / "eval" / f).stat().st_size > 0
    page = (tmp_path / "eval" / "report.html").read_text()
    assert "data:image/png;base64," in page and "dsf+rag" in page
    assert 0 <= res["retrieval_oracle_recall"] <= 100

    # resume: every cell was logged; a rerun generates nothing and gives the same numbers
    cells = (tmp_path / "eval" / "cells.jsonl").read_text().splitlines()
    assert len(cells) == 5 + 2 * 3

    def no_model(self, config):
        raise AssertionError(f"{config} generated again")

    orig = compare._Models.get
    compare._Models.get = no_model
    try:
        again = evaluate(cfg)
    finally:
        compare._Models.get = orig
    assert again["main"] == res["main"] and again["sweep"] == res["sweep"]

    # a kill mid-write leaves a cut last line: only that cell runs again
    log = tmp_path / "eval" / "cells.jsonl"
    log.write_text("\n".join(cells[:-1]) + "\n" + cells[-1][:20])
    asked = []
    compare._Models.get = lambda self, c: asked.append(c) or orig(self, c)
    try:
        third = evaluate(cfg)
    finally:
        compare._Models.get = orig
    assert asked == ["raft"] and third["sweep"] == res["sweep"]
    assert len(log.read_text().splitlines()) == 11

    # other settings into the same --out are refused, not mixed
    with pytest.raises(ConfigError, match="max_tokens"):
        evaluate(EvalConfig(**{**cfg.__dict__, "max_tokens": 7}))


@pytest.mark.parametrize("retriever", ["dense", "hybrid"])
def test_rag_context_from_dense_or_hybrid_retrieval(tmp_path, tiny_model, retriever):
    recs = write_short_api(tmp_path / "api.jsonl")
    rc = RaftConfig(out=str(tmp_path / "raft"), distractors=2, questions=1, test_fraction=0.3)
    Builder(rc, *corpus_units([str(recs)], rc)).run()
    cfg = EvalConfig(
        data=str(tmp_path / "raft"),
        out=str(tmp_path / "eval"),
        model=str(tiny_model),
        configs=["base+rag"],
        sweep=[],
        k=2,
        retriever=retriever,
        max_tokens=2,
        limit=4,
        threads=1,
    )
    res = evaluate(cfg)
    # questions name their API, so the bundled embedder finds the oracle in the top 2
    assert res["settings"]["retriever"] == retriever and res["retrieval_oracle_recall"] >= 50
    assert (
        f"{retriever} retrieval put the oracle" in (tmp_path / "eval" / "report.html").read_text()
    )
    with pytest.raises(ConfigError, match="--retriever"):
        evaluate(EvalConfig(**{**cfg.__dict__, "retriever": "sparse", "out": str(tmp_path / "x")}))


def test_rerank_orders_each_prompt_by_similarity(tmp_path, monkeypatch):
    """--rerank dense: same documents, the one most like the question first (main and sweep)."""
    from ragtune.testing import DummyLM

    recs = write_short_api(tmp_path / "api.jsonl")
    rc = RaftConfig(out=str(tmp_path / "raft"), distractors=2, questions=1, test_fraction=0.3)
    Builder(rc, *corpus_units([str(recs)], rc)).run()
    lm = DummyLM(["x"])
    monkeypatch.setattr(compare._Models, "get", lambda self, c: lm)
    base = dict(
        data=str(tmp_path / "raft"), configs=["base+rag"], sweep_configs=["base+rag"], sweep=[2]
    )
    base.update(k=3, limit=4)
    seen = {}
    for how in ("none", "dense"):
        lm.calls.clear()
        evaluate(EvalConfig(**base, out=str(tmp_path / how), rerank=how))
        seen[how] = [m[-1]["content"] for m in lm.calls]
    rows = compare.raw_rows(tmp_path / "raft", "test")[:4]
    assert rows and len(seen["none"]) == len(seen["dense"]) == 2 * len(rows)  # main + sweep

    def docs(prompt):
        return sorted(prompt.split("</DOCUMENT>\n")[:-1])

    # the same documents and question in every prompt, and some prompt's order changed
    assert [docs(p) for p in seen["none"]] == [docs(p) for p in seen["dense"]]
    assert seen["none"] != seen["dense"]
    # questions name their API: reranked, the oracle leads every sweep prompt
    for p, r in zip(seen["dense"][len(rows) :], rows, strict=True):
        assert p.startswith(f"<DOCUMENT>{r['oracle'][0]}</DOCUMENT>")
    with pytest.raises(ConfigError, match="--rerank"):
        evaluate(EvalConfig(**base, out=str(tmp_path / "bad"), rerank="cross"))


def test_answers_cut_at_max_tokens_are_counted_and_announced(tmp_path, monkeypatch):
    """A chain of thought cut at --max-tokens before its answer scores as wrong: say how many,
    per cell, and keep it."""
    from ragtune.rag.formats import get_format
    from ragtune.testing import DummyLM

    recs = write_short_api(tmp_path / "api.jsonl")
    rc = RaftConfig(out=str(tmp_path / "raft"), distractors=2, questions=1, test_fraction=0.3)
    Builder(rc, *corpus_units([str(recs)], rc)).run()
    # DummyLM counts a word as a token: the long reply (a chain of thought, as a RAFT adapter
    # writes) is cut at 3 before its answer tag, the short one ends
    lm = DummyLM(lambda m: "a b c d e f" if "</DOCUMENT>" in m[-1]["content"] else "yes")
    lm.prompt_format = get_format("raft")
    monkeypatch.setattr(compare._Models, "get", lambda self, c: lm)
    cfg = EvalConfig(
        data=str(tmp_path / "raft"),
        out=str(tmp_path / "eval"),
        configs=["base", "base+rag"],
        sweep=[],
        k=2,
        limit=3,
        max_tokens=3,
    )
    with pytest.warns(
        UserWarning, match=r"main/base\+rag: \d+ of \d+ answers stopped at .*<ANSWER>:"
    ):
        res = evaluate(cfg)
    n = res["n"]
    assert res["cut_at_max_tokens"] == {"main/base": 0, "main/base+rag": n}
    assert f"main/base+rag {n}" in (tmp_path / "eval" / "results.md").read_text()
    # a resumed run reads the counts back from the log instead of generating again
    monkeypatch.setattr(compare._Models, "get", lambda self, c: pytest.fail("generated again"))
    assert evaluate(cfg)["cut_at_max_tokens"] == res["cut_at_max_tokens"]


def test_only_answers_cut_before_their_answer_tag_are_announced(tmp_path, monkeypatch):
    """An untuned model's cut answer is counted and scored on what it wrote (no warning); a
    looping chain of thought is counted too; only a reasoning reply cut before <ANSWER>: is
    announced, since its answer is lost whatever it would have been."""
    import warnings

    from ragtune.rag.formats import get_format
    from ragtune.testing import DummyLM

    recs = write_short_api(tmp_path / "api.jsonl")
    rc = RaftConfig(out=str(tmp_path / "raft"), distractors=2, questions=1, test_fraction=0.3)
    Builder(rc, *corpus_units([str(recs)], rc)).run()
    untuned = DummyLM(["zz.op1(a) and here is a long example of how to call it in code"])
    looping = DummyLM(["the call is the call is the call is the call is the call is"])
    looping.prompt_format = get_format("raft")
    lms = {"base": untuned, "raft": looping}
    monkeypatch.setattr(compare._Models, "get", lambda self, c: lms[c])
    cfg = EvalConfig(
        data=str(tmp_path / "raft"),
        out=str(tmp_path / "eval"),
        raft_adapter="unused",
        configs=["base", "raft"],
        sweep=[],
        limit=3,
        max_tokens=12,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        res = evaluate(cfg)
    n = res["n"]
    assert res["cut_at_max_tokens"] == {"main/base": n, "main/raft": n}
    assert res["lost_at_max_tokens"] == {"main/base": 0, "main/raft": 0}
    assert f"main/base {n}, main/raft {n}" in (tmp_path / "eval" / "results.md").read_text()


@pytest.mark.parametrize("output_type", ["jsonl", "parquet"])
def test_eval_reads_the_raw_split_in_either_output_type(tmp_path, monkeypatch, output_type):
    """`raft build --output-type parquet` writes raw/test.parquet: eval reads it (it looked for
    .jsonl only), and the table is the one the jsonl build gives."""
    from ragtune.testing import DummyLM

    recs = write_short_api(tmp_path / "api.jsonl")
    rc = RaftConfig(
        out=str(tmp_path / "raft"),
        distractors=2,
        questions=1,
        test_fraction=0.3,
        output_type=output_type,
    )
    m = Builder(rc, *corpus_units([str(recs)], rc)).run()
    lm = DummyLM(lambda msgs: "<ANSWER>: zz.op1(a)")
    monkeypatch.setattr(compare._Models, "get", lambda self, c: lm)
    cfg = EvalConfig(
        data=str(tmp_path / "raft"),
        out=str(tmp_path / "eval"),
        configs=["base", "base+rag"],
        sweep_configs=["base+rag"],
        sweep=[1],
        k=2,
    )
    res = evaluate(cfg)
    assert res["n"] == m["counts"]["test"] > 0
    assert len(lm.calls) == 3 * res["n"]
    # the sweep's distractors come from every split's documents
    prompts = [c[-1]["content"] for c in lm.calls[2 * res["n"] :]]
    assert all(p.count("<DOCUMENT>") == 2 for p in prompts)


def test_refusals_are_scored_where_the_oracle_is_absent(tmp_path, monkeypatch):
    """Data built with --refusal-rate keeps every test row's gold answer, so a right answer
    scores right; where the prompt lacks the oracle (no documents, retrieval missed it,
    oracle-free prompts) eval reports the refusal rate and the precision of the answers given."""
    from ragtune.raft.prompts import REFUSAL
    from ragtune.testing import DummyLM

    recs = write_short_api(tmp_path / "api.jsonl", n=24)
    rc = RaftConfig(
        out=str(tmp_path / "raft"),
        distractors=2,
        questions=1,
        test_fraction=0.3,
        p=0.5,
        refusal_rate=1.0,
    )
    Builder(rc, *corpus_units([str(recs)], rc)).run()
    rows = compare.raw_rows(tmp_path / "raft", "test")
    dropped = [r for r in rows if not r["oracle_present"]]
    assert dropped and all(r["cot_answer"] == REFUSAL for r in dropped)
    assert all(r["answer"] != "I don't know" for r in rows)
    by_q = {r["question"]: (i, r) for i, r in enumerate(rows)}

    def reply(msgs):
        prompt = msgs[-1]["content"]
        i, r = by_q[prompt.rsplit("</DOCUMENT>\n", 1)[-1]]
        if r["oracle"][0] in prompt or i % 2:  # without the oracle, even rows refuse
            return f"<ANSWER>: {r['answer']}"
        return "None of the documents says.\n<ANSWER>: I don't know"

    monkeypatch.setattr(compare._Models, "get", lambda self, c: DummyLM(reply))
    cfg = EvalConfig(
        data=str(tmp_path / "raft"),
        out=str(tmp_path / "eval"),
        configs=["base", "base+rag"],
        sweep_configs=["raft"],
        sweep=[1],
        oracle_free=[1, 2],
        k=2,
        max_tokens=64,
    )
    res = evaluate(cfg)
    n, even = len(rows), (len(rows) + 1) // 2
    expect = {"n": n, "refused": even, "refusal_rate": round(100 * even / n, 2)}
    assert res["refusals"]["main/base"] == {**expect, "answered_precision": 100.0}
    assert res["main"]["base"]["correct"] == round(100 * (n - even) / n, 2)
    assert res["sweep"]["raft"]["1"]["correct"] == 100.0  # the oracle is there: right, scored right
    missed = round(n * (1 - res["retrieval_oracle_recall"] / 100))
    assert res["refusals"].get("main/base+rag", {"n": 0})["n"] == missed
    for k in ("1", "2"):
        assert res["oracle_free"]["raft"][k] == {**expect, "answered_precision": 100.0}
    md = (tmp_path / "eval" / "results.md").read_text()
    assert f"| main/base | {n} | {expect['refusal_rate']:.2f} | 100.00 |" in md
    assert "Oracle-free prompts" in md and "| raft |" in md
    # the oracle-free cells resume like the others
    monkeypatch.setattr(compare._Models, "get", lambda self, c: pytest.fail("generated again"))
    assert evaluate(cfg)["oracle_free"] == res["oracle_free"]


def test_eval_scores_the_users_index_and_other_test_data(tmp_path, monkeypatch, tiny_tokenizer):
    """--index: the RAG context is the user's index (its chunks, retriever, k), not one over the
    dataset's documents; --test-data: the questions come from another build; per question, the
    answers and scores stay in results.json so two runs compare question by question."""
    import json

    from ragtune.corpus.build import IndexConfig, build_index
    from ragtune.examples import GLIMMERDB
    from ragtune.testing import DummyLM

    recs = write_short_api(tmp_path / "api.jsonl")
    rc = RaftConfig(out=str(tmp_path / "raft"), distractors=2, questions=1, test_fraction=0.3)
    Builder(rc, *corpus_units([str(recs)], rc)).run()
    # the user's own index: another corpus, so its chunks are recognisable in the prompts
    own = build_index(
        IndexConfig(paths=[str(GLIMMERDB / "guide.md")], out=str(tmp_path / "own"), chunk_size=64),
        tokenizer=tiny_tokenizer,
    )
    lm = DummyLM(["x"])
    monkeypatch.setattr(compare._Models, "get", lambda self, c: lm)
    base = dict(data=str(tmp_path / "raft"), configs=["base+rag"], sweep=[], k=2, limit=3)
    res = evaluate(EvalConfig(**base, out=str(tmp_path / "e1"), index=str(own.path)))
    chunk_texts = {c.text for c in own.chunks}
    for m in lm.calls:
        docs = m[-1]["content"].split("</DOCUMENT>\n")[:-1]
        assert len(docs) == 2 and all(d.removeprefix("<DOCUMENT>") in chunk_texts for d in docs)
    assert res["retrieval_oracle_recall"] == 0.0  # the guide holds no API record
    rows = compare.raw_rows(tmp_path / "raft", "test")[:3]
    saved = json.loads((tmp_path / "e1" / "results.json").read_text())["examples"]
    assert [e["id"] for e in saved] == [r["id"] for r in rows]
    assert all(set(e["correct"]) == {"base+rag"} for e in saved)
    with pytest.raises(ConfigError, match="--retriever 'bm25' is not in"):
        dense_only = build_index(
            IndexConfig(
                paths=[str(GLIMMERDB / "guide.md")], out=str(tmp_path / "d"), methods=["dense"]
            ),
            tokenizer=tiny_tokenizer,
        )
        evaluate(EvalConfig(**base, out=str(tmp_path / "e2"), index=str(dense_only.path)))

    # test questions from another build (here: other API records), the adapters' data as before
    other = tmp_path / "other.jsonl"
    other.write_text(
        "".join(
            json.dumps({"api_name": f"yy.run{i}", "api_call": f"yy.run{i}(b)", "returns": f"S{i}"})
            + "\n"
            for i in range(12)
        )
    )
    rc2 = RaftConfig(out=str(tmp_path / "raft2"), distractors=2, questions=1, test_fraction=0.3)
    Builder(rc2, *corpus_units([str(other)], rc2)).run()
    res = evaluate(EvalConfig(**base, out=str(tmp_path / "e3"), test_data=str(tmp_path / "raft2")))
    want = compare.raw_rows(tmp_path / "raft2", "test")[:3]
    assert [e["question"] for e in res["examples"]] == [r["question"] for r in want]
    assert [e["gold"] for e in res["examples"]] == [r["answer"] for r in want]
    assert all("yy.run" in r["oracle"][0] for r in want)
