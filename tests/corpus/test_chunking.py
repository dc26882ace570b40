import pytest

from ragtune.corpus.chunking import chunk_documents, sentence_spans
from ragtune.corpus.document import Document
from ragtune.errors import ConfigError
from ragtune.testing import make_tiny_llama


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(make_tiny_llama(tmp_path_factory.mktemp("tiny")))


def test_sentence_spans_keep_text_exact():
    text = "First one. Second one!  Third?\n\n# Heading\n- item one\n- item two"
    spans = sentence_spans(text)
    parts = [text[s:e] for s, e in spans]
    assert parts == ["First one.", "Second one!", "Third?", "# Heading", "- item one", "- item two"]


def test_chunks_respect_token_budget_and_overlap(tok):
    sents = [f"Sentence number {i} talks about the fox and the dog." for i in range(40)]
    doc = Document("d1", " ".join(sents), {"source": "x.txt"})
    chunks = chunk_documents([doc], tok, size=96, overlap=40)
    assert len(chunks) > 3
    for c in chunks:
        n = len(tok.encode(c.text, add_special_tokens=False))
        assert n <= 96 and n == c.metadata["tokens"]
        assert doc.text[c.metadata["start"] : c.metadata["end"]] == c.text
        assert c.text.startswith("Sentence") and c.text.endswith(".")  # sentence boundaries
        assert c.metadata["source"] == "x.txt"
    # overlap: each chunk after the first starts inside the previous chunk
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.metadata["start"] < a.metadata["end"]
        assert b.metadata["start"] > a.metadata["start"]
    # everything is covered
    assert chunks[0].metadata["start"] == 0 and chunks[-1].metadata["end"] == len(doc.text)
    # ids are stable
    again = chunk_documents([doc], tok, size=96, overlap=40)
    assert [c.id for c in again] == [c.id for c in chunks]


def test_overlong_sentence_is_windowed(tok):
    doc = Document("d2", "fox " * 300, {})
    chunks = chunk_documents([doc], tok, size=32, overlap=8)
    assert len(chunks) > 5
    assert all(len(tok.encode(c.text, add_special_tokens=False)) <= 33 for c in chunks)


def test_record_mode_and_bad_settings(tok):
    docs = [Document("a", "one. two. three.", {}), Document("b", "four.", {})]
    chunks = chunk_documents(docs, tok, mode="record")
    assert [c.text for c in chunks] == ["one. two. three.", "four."]
    with pytest.raises(ConfigError, match="overlap"):
        chunk_documents(docs, tok, size=10, overlap=10)
    with pytest.raises(ConfigError, match="record"):
        chunk_documents(docs, tok, mode="pages")
