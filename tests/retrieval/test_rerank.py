"""One reranker module for ask, serve, eval and the retrieval eval: specs, the LM reranker, RAG."""

import numpy as np
import pytest

from ragtune.corpus.document import Chunk
from ragtune.errors import ConfigError
from ragtune.retrieval.rerank import LMReranker, load_reranker, parse_spec
from ragtune.testing import DummyLM

DOCS = [
    "The vault opens with glimmer.open(path).",
    "Snapshots are compressed with zstd by default.",
    "Segments rotate every four hours; keep=4 keeps the last four.",
    "A ledger records every write to the vault.",
]


class ScoringLM(DummyLM):
    """Scores "Yes" by the words a document shares with the question (a stand-in for p(Yes))."""

    can_score = True

    def __init__(self):
        super().__init__()
        self.scored = []

    def score(self, prompt, continuations):
        text = prompt[-1]["content"]
        doc = text.split("Document:\n", 1)[1].split("\n\nQuestion: ", 1)[0]
        q = text.split("\n\nQuestion: ", 1)[1].split("\n\n", 1)[0]
        self.scored.append((q, doc, list(continuations)))
        shared = len(set(q.lower().split()) & set(doc.lower().split()))
        return [float(shared), 0.0]  # log p(Yes), log p(No)


def test_specs_are_checked_and_the_error_names_the_forms():
    assert parse_spec(None) == ("none", None)
    assert parse_spec("cross:out/rr") == ("cross", "out/rr")
    assert parse_spec("LM") == ("lm", None)
    for bad, msg in (
        ("bm25", "none | dense | cross:DIR | lm"),
        ("cross:", "name the cross-encoder directory"),
        ("dense:x", "only cross takes a directory"),
    ):
        with pytest.raises(ConfigError, match=msg):
            parse_spec(bad)
    assert load_reranker("none") is None


def test_cross_needs_a_model_directory(tmp_path):
    with pytest.raises(ConfigError, match="ragtune reranker train"):
        load_reranker(f"cross:{tmp_path}")


def test_lm_reranker_needs_a_scoring_model():
    with pytest.raises(ConfigError, match="scores continuations"):
        load_reranker("lm", lm=DummyLM())


def test_lm_reranker_orders_by_yes_minus_no():
    lm = ScoringLM()
    rr = load_reranker("lm", lm=lm)
    assert isinstance(rr, LMReranker)
    q = "which call opens the vault?"
    order = rr.order(q, DOCS)
    assert order[0] == 0 and order[-1] in (1, 2)
    assert lm.scored[0][2] == ["Yes", "No"]
    assert "Does this document answer the question?" not in lm.scored[0][1]


def test_lm_fast_path_matches_score(tmp_path):
    """On a local model the reranker reads both answers from one padded forward pass; the
    figures are LM.score's."""
    from ragtune.llm.spec import load_lm
    from ragtune.testing import make_tiny_llama

    # a tokenizer that gives Yes and No one token each, as SmolLM2's does
    lm = load_lm(str(make_tiny_llama(tmp_path / "tiny", texts=["Yes", "No", "Yes. No."] * 8)))
    rr = LMReranker(lm, batch_size=3)
    assert rr._ids is not None
    q = "which call opens the vault?"
    fast = rr.scores(q, DOCS)
    slow = [a - b for a, b in (lm.score(rr.messages(q, d), ["Yes", "No"]) for d in DOCS)]
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-4)


def test_rag_retrieves_candidates_and_keeps_the_reranked_k(tmp_path):
    from ragtune.rag import RAG
    from ragtune.retrieval.index import Index

    idx = Index.build(
        [Chunk(str(i), str(i), t) for i, t in enumerate(DOCS)], tmp_path / "i", methods=["bm25"]
    )
    lm = ScoringLM()
    q = "which glimmer call opens the vault"
    rag = RAG(idx, lm, k=1, rerank="lm", rerank_candidates=3)
    hits = rag.retrieve(q)
    assert len(hits) == 1 and hits[0][0].text == DOCS[0]
    assert len(lm.scored) == min(3, len(idx.search([q], 3, "bm25").ids[0]))
    assert [h[0][0].text for h in rag.retrieve_many([q, q], [2, None])] == [DOCS[0], DOCS[0]]
    ans = rag.ask(q)
    assert ans.documents[0].text == DOCS[0] and ans.documents[0].score == hits[0][1]


def test_ask_rejects_a_bad_rerank_before_loading_the_model(tmp_path):
    from ragtune.rag.ask import AskConfig, ask

    with pytest.raises(ConfigError, match="--rerank"):
        ask(AskConfig(index=str(tmp_path), question="q", model="dummy", rerank="colbert"))


def test_eval_rerank_accepts_the_new_kinds_and_checks_them(tmp_path):
    from ragtune.eval.compare import _reranker

    assert _reranker("none") is None
    with pytest.raises(ConfigError, match="none | dense | cross:DIR | lm"):
        _reranker("bm25")
    with pytest.raises(ConfigError, match="not a cross-encoder directory"):
        _reranker(f"cross:{tmp_path}")
    order = _reranker("lm", lm_of=ScoringLM)
    docs = [DOCS[1], DOCS[0]]
    assert order([docs], ["which call opens the vault?"]) == [[DOCS[0], DOCS[1]]]
