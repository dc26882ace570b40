import pytest

from ragtune.rag import RAG
from ragtune.rag.citations import best_span, cited_numbers, overlap_attribution
from ragtune.rag.prompt import build_messages, fit_documents, render_document
from ragtune.testing import DummyLM


def test_cited_numbers_and_overlap():
    assert cited_numbers("see [2] and [1, 3], again [2], bogus [9]", 3) == [2, 1, 3]
    docs = ["cats purr softly", "the lease lasts 30 seconds by default"]
    assert overlap_attribution("A lease lasts 30 seconds.", docs) == 2
    assert overlap_attribution("bananas", docs) is None
    doc = "Intro sentence here. A lease lasts 30 seconds. Unrelated end."
    s, e = best_span("lease of 30 seconds", doc)
    assert doc[s:e] == "A lease lasts 30 seconds."


def test_fit_documents_respects_budget():
    count = lambda t: len(t.split())  # noqa: E731
    docs = ["a " * 30, "b " * 30, "c " * 30]
    kept = fit_documents(docs, budget=80, count=count, min_tokens=10)
    total = sum(count(render_document(i + 1, t)) + 1 for i, t in enumerate(kept))
    assert total <= 80
    assert kept[0] == docs[0] and kept[1] == docs[1]
    assert kept[-1].endswith("…") and len(kept) == 3  # the third is cut to fit
    assert fit_documents(docs, budget=20, count=count, min_tokens=30) == []


def test_prompt_layout():
    msgs = build_messages("What?", ["d one", "d two"])
    assert msgs[0]["role"] == "system"
    user = msgs[1]["content"]
    assert user.index("[1] <DOCUMENT>d one</DOCUMENT>") < user.index("[2] <DOCUMENT>d two")
    assert user.endswith("Question: What?")


def test_ask_with_model_citation(glimmer_index):
    lm = DummyLM(lambda m: "Leases last 30 seconds [1].")
    ans = RAG(glimmer_index, lm, k=3).ask("How long does a lease last by default?")
    assert ans.answer == "Leases last 30 seconds [1]."
    assert len(ans.documents) == 3
    top = ans.documents[0]
    assert "30 seconds" in top.text  # retrieval put the lease passage first
    assert ans.citations[0].n == 1 and ans.citations[0].method == "model"
    assert "30 seconds" in ans.citations[0].quote
    assert ans.citations[0].source.endswith((".md", ".html"))
    # the prompt the model saw carries the retrieved documents and the question
    prompt = lm.calls[0][-1]["content"]
    assert "<DOCUMENT>" in prompt and prompt.endswith("How long does a lease last by default?")


def test_ask_attributes_uncited_answer_by_overlap(glimmer_index):
    lm = DummyLM(lambda m: "Snapshots use zstd compression by default.")
    ans = RAG(glimmer_index, lm, k=3).ask("Which compression do snapshots use by default?")
    assert ans.citations and ans.citations[0].method == "overlap"
    assert "zstd" in ans.citations[0].quote


def test_context_budget_limits_documents(glimmer_index):
    lm = DummyLM(["ok"])
    rag = RAG(glimmer_index, lm, k=5, max_context_tokens=120)
    ans = rag.ask("What is compaction?")
    words = sum(len(d.text.split()) for d in ans.documents)
    assert words <= 120
    assert len(ans.documents) < 5


def test_batch_keeps_order(glimmer_index):
    lm = DummyLM(lambda m: m[-1]["content"].rsplit("Question: ", 1)[1])
    qs = ["What is a vault?", "What is a lease?", "What is retention?"]
    answers = RAG(glimmer_index, lm).ask_batch(qs)
    assert [a.answer for a in answers] == qs


@pytest.mark.slow
def test_bundled_model_answers_from_documents(tmp_path):
    """The real SmolLM2-135M answers a fictional-domain question from the retrieved passage."""
    from ragtune.corpus.build import IndexConfig, build_index
    from ragtune.examples import GLIMMERDB
    from ragtune.llm import load_lm

    idx = build_index(IndexConfig(paths=[str(GLIMMERDB)], out=str(tmp_path / "i"), chunk_size=128))
    ans = RAG(idx, load_lm("smollm2-135m", threads=1), max_tokens=48).ask(
        "How long does a GlimmerDB lease last by default?"
    )
    assert "30 seconds" in ans.answer
    assert ans.citations and "30 seconds" in ans.citations[0].quote
