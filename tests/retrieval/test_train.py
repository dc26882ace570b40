"""`ragtune retriever train` / `reranker train` on a toy RAFT directory the bundled embedder is
weak on (tests/retrieval/toy.py): recall rises, a re-embedded index follows the tuned model."""

import json

import numpy as np
import pytest

from ragtune.errors import ConfigError, DataError
from tests.retrieval import toy

pytest.importorskip("datasets")
pytest.importorskip("accelerate")

# small and quick: 52 pairs, 12 steps; texts are under 32 tokens
FAST = dict(batch_size=16, lr=1e-4, negatives=1, neg_ranks=[2, 20], max_length=32, eval_k=[1, 5])


@pytest.fixture(scope="module")
def toy_raft(tmp_path_factory):
    return toy.write_toy_raft(tmp_path_factory.mktemp("toy") / "raft")


@pytest.fixture(scope="module")
def tuned(toy_raft, tmp_path_factory):
    from ragtune.retrieval.train import RetrieverTrainConfig, train_retriever

    out = tmp_path_factory.mktemp("tuned") / "retriever"
    seen = []
    s = train_retriever(
        RetrieverTrainConfig(data=str(toy_raft), out=str(out), epochs=3, **FAST),
        progress=lambda step, total, logs: seen.append((step, total)),
    )
    return out, s, seen


def test_training_raises_recall_on_unseen_documents(tuned, toy_raft):
    from ragtune.eval.retrieval import RetrieverEvalConfig, evaluate_retrieval

    out, s, seen = tuned
    assert s["pairs"] == 52 and s["steps"] == 12 and seen and seen[-1] == (12, 12)
    # the valid split (documents never trained on): near chance before, found after
    assert s["valid_before"]["recall@1"] <= 0.25
    assert s["valid_after"]["recall@1"] >= s["valid_before"]["recall@1"] + 0.5, s
    # the test split, through the job a user calls
    res = evaluate_retrieval(
        RetrieverEvalConfig(data=str(toy_raft), embedder=str(out), ks=[1, 5], candidates=10)
    )
    rows = res["rows"]
    assert res["questions"] == 12 and res["documents"] == 40
    assert rows["dense (tuned)"]["recall@1"] >= rows["dense (bundled)"]["recall@1"] + 0.4, rows
    assert rows["dense (tuned)"]["mrr@5"] > rows["dense (bundled)"]["mrr@5"]
    # a normal sentence-transformers directory, with what ragtune measured beside it
    assert (out / "modules.json").is_file()
    summary = json.loads((out / "ragtune_train.json").read_text())
    assert summary["kind"] == "embedder" and summary["pairs_per_s"] > 0


def test_no_heldout_document_is_a_negative(toy_raft):
    from ragtune.retrieval.dense import Embedder
    from ragtune.retrieval.train import mine_negatives, read_pairs

    data = read_pairs(toy_raft)
    held = data.heldout()
    negs, stats = mine_negatives(Embedder(), data.train, data.pool, 3, (1, 40), exclude=held)
    assert all(len(n) == 3 for n in negs)
    flat = {t for n in negs for t in n}
    assert not flat & held and stats["heldout"] > 0
    for r, n in zip(data.train, negs, strict=True):
        assert not set(n) & set(r["oracle"])


class _FixedEmbedder:
    """Vectors given per text: a ranking chosen by the test."""

    def __init__(self, vec):
        self.vec = vec

    def encode(self, texts):
        return np.array([self.vec[t] for t in texts], np.float32)


def test_mining_skips_oracles_near_duplicates_and_answers():
    from ragtune.retrieval.train import mine_negatives

    oracle = "api_name: zz.open\napi_call: zz.open(path)\ndescription: Opens a vault."
    pool = [
        oracle,
        oracle.replace("Opens", "opens"),  # the same words: a near-duplicate
        "an example calls zz.open(path) first",  # holds the gold answer
        "api_name: zz.open\nanother record of the same API",  # the oracle's api_name line
        "held out document",
        "usable one",
        "usable two",
        "usable three",
    ]
    # similarity to the question falls with the position in the pool
    vec = {t: np.array([1.0, i], np.float32) / np.hypot(1.0, i) for i, t in enumerate(pool)}
    vec["q"] = np.array([1.0, 0.0], np.float32)
    row = {
        "id": "r",
        "question": "q",
        "oracle": [oracle],
        "answer": "zz.open(path)",
        "type": "api call",
    }
    held = {"held out document"}
    negs, stats = mine_negatives(_FixedEmbedder(vec), [row], pool, 2, (1, 7), exclude=held)
    assert sorted(negs[0]) == ["usable one", "usable two"]  # all ranks 1-7 leave
    assert stats["near_duplicate"] == 1 and stats["holds_answer"] == 2 and stats["heldout"] == 1
    negs, stats = mine_negatives(_FixedEmbedder(vec), [row], pool, 3, (1, 7), exclude=held)
    assert negs[0][2] == "usable three" and stats["outside_window"] == 1  # topped up past HI
    with pytest.raises(DataError, match="lower --negatives"):
        mine_negatives(_FixedEmbedder(vec), [row], pool, 4, (1, 7), exclude=held)


def test_reembedded_index_returns_the_tuned_neighbours(tuned, toy_raft, tmp_path, monkeypatch):
    from ragtune.corpus.document import Chunk
    from ragtune.retrieval.dense import Embedder
    from ragtune.retrieval.index import Index
    from ragtune.retrieval.reembed import ReembedConfig, reembed_index
    from ragtune.retrieval.train import read_pairs

    out, _, _ = tuned
    data = read_pairs(toy_raft)
    chunks = [Chunk(str(i), str(i), t) for i, t in enumerate(data.pool)]
    idx = Index.build(chunks, tmp_path / "idx")
    qs = [r["question"] for r in data.test]
    bm25_before = idx.search(qs, 5, "bm25").ids
    reembed_index(ReembedConfig(index=str(idx.path), embedder=str(out)))  # in place
    monkeypatch.chdir(tmp_path)  # the recorded embedder is absolute: found from anywhere
    again = Index.load(idx.path)
    assert again.params["dense"]["embedder"] == str(out.resolve())
    assert [c.text for c in again.chunks] == data.pool
    got = again.search(qs, 3, "dense").ids
    emb = Embedder(out)
    want = np.argsort(-(emb.encode(qs) @ emb.encode(data.pool).T), axis=1)[:, :3]
    assert (got[:, 0] == want[:, 0]).all()
    gold = [data.pool.index(r["oracle"][0]) for r in data.test]
    assert np.mean(got[:, 0] == np.array(gold)) >= 0.5
    np.testing.assert_array_equal(again.search(qs, 5, "bm25").ids, bm25_before)


def test_index_builds_with_a_tuned_embedder(tuned, toy_raft, tmp_path):
    from ragtune.corpus.build import IndexConfig, build_index
    from ragtune.retrieval.train import read_pairs

    out, _, _ = tuned
    data = read_pairs(toy_raft)
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in data.pool))
    idx = build_index(
        IndexConfig(
            paths=[str(corpus)],
            out=str(tmp_path / "idx"),
            text_field="text",
            chunk_mode="record",
            embedder=str(out),
        )
    )
    assert idx.params["dense"]["embedder"] == str(out.resolve())
    q = data.test[0]
    assert idx.hits(q["question"], 1, "dense")[0][0].text == q["oracle"][0]


def test_settings_and_data_errors_name_the_fix(toy_raft, tmp_path):
    from ragtune.retrieval.train import RetrieverTrainConfig, train_retriever

    with pytest.raises(ConfigError, match="--neg-ranks 50,10"):
        train_retriever(RetrieverTrainConfig(data=str(toy_raft), out="x", neg_ranks=[50, 10]))
    with pytest.raises(ConfigError, match=r"--base .*\(no config.json\)"):
        train_retriever(RetrieverTrainConfig(data=str(toy_raft), out="x", base=str(tmp_path)))
    with pytest.raises(DataError, match="raft build"):
        train_retriever(RetrieverTrainConfig(data=str(tmp_path), out=str(tmp_path / "o")))
    with pytest.raises(ConfigError, match="--loss"):
        train_retriever(RetrieverTrainConfig(data=str(toy_raft), out="x", loss="triplet"))


def test_reranker_trains_and_reranks(tmp_path, monkeypatch):
    """A cross-encoder from the bundled MiniLM's weights learns to rank the toy's documents (in
    plain words here: a new scoring head needs more steps than a test has to learn the made-up
    language), and `--rerank cross:DIR` puts its choice first in RAG."""
    from ragtune.corpus.document import Chunk
    from ragtune.rag import RAG
    from ragtune.retrieval.index import Index
    from ragtune.retrieval.train import RerankerTrainConfig, read_pairs, train_reranker
    from ragtune.testing import DummyLM

    monkeypatch.setattr(toy, "VERBS", {v: v for v in toy.VERBS})
    monkeypatch.setattr(toy, "OBJECTS", {o: o for o in toy.OBJECTS})
    raft = toy.write_toy_raft(tmp_path / "raft")
    out = tmp_path / "reranker"
    s = train_reranker(
        RerankerTrainConfig(
            data=str(raft),
            out=str(out),
            epochs=2,
            candidates=10,
            **{**FAST, "negatives": 3, "lr": 1e-4},
        )
    )
    assert s["kind"] == "cross-encoder" and (out / "config.json").is_file()
    assert s["valid_after"]["mrr@5"] >= s["valid_before"]["mrr@5"] + 0.3, s
    data = read_pairs(raft)
    idx = Index.build([Chunk(str(i), str(i), t) for i, t in enumerate(data.pool)], tmp_path / "i")
    rag = RAG(idx, DummyLM(), k=1, method="bm25", rerank=f"cross:{out}", rerank_candidates=40)
    hits = [rag.retrieve(r["question"])[0][0].text for r in data.test]
    assert np.mean([h == r["oracle"][0] for h, r in zip(hits, data.test, strict=True)]) >= 0.75
