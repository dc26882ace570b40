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
    chunks = chunk_documents([doc], tok, size=96, overlap=24)
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
    again = chunk_documents([doc], tok, size=96, overlap=24)
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


# Real prose with sentences of very mixed length: one-word sentences, ordinary ones, a heading,
# list items, and sentences longer than a whole chunk.
MIXED_PROSE = """# Moving a ledger between regions

Moving a ledger is rare. It is also the operation operators fear most, because a ledger that \
is half in one region and half in another cannot serve reads from either until the move \
finishes, and the tooling that shipped before version 2.4 gave no indication of how far along \
a move was, so people would cancel a move that was ninety percent done, restart it from the \
beginning, and then cancel it again when it seemed stuck at the same place. Don't do that.

The modern procedure has three phases. First, the coordinator seals the source ledger. Second, \
it copies sealed segments to the target region while new writes keep landing in a fresh \
segment that is forwarded asynchronously; the copy runs at a bounded rate (the default is \
sixty-four megabytes per second per shard, which you can raise with the copy-rate setting if \
the link between regions is fast and otherwise idle) and reports progress every ten seconds. \
Third, it flips the routing table. That's it.

- Check the seal first.
- Watch the progress log, which prints the number of segments copied, the number remaining, \
the estimated time to completion, and the current copy rate measured over the last minute.
- Never cancel a move in its third phase.

Why three phases? Because each one can be retried on its own. A failed copy resumes from the \
last segment that was acknowledged by the target, not from the start; a failed flip is rolled \
back by the coordinator, which keeps the old routing table until every router has confirmed \
the new one. Short moves finish in minutes. Large ones, with tens of thousands of segments \
spread over hundreds of shards and a link that is shared with production replication traffic \
that must not be starved, can take the better part of a day, and that is expected, normal, \
and nothing to cancel a move over.
"""


def _check_overlap_and_coverage(tok, text, size, overlap):
    chunks = chunk_documents([Document("p", text, {})], tok, size=size, overlap=overlap)
    assert len(chunks) > 3
    ntok = lambda s: len(tok.encode(s, add_special_tokens=False))  # noqa: E731
    spans = [(c.metadata["start"], c.metadata["end"]) for c in chunks]
    for c, (s, e) in zip(chunks, spans, strict=True):
        assert text[s:e] == c.text
        assert ntok(c.text) <= size and ntok(c.text) == c.metadata["tokens"]
    short = []
    for (s1, e1), (s2, e2) in zip(spans, spans[1:], strict=False):
        assert s1 < s2 and e1 < e2  # each chunk moves on
        shared = text[s2:e1] if s2 < e1 else ""
        if ntok(shared) < overlap:
            short.append((s1, e1, s2, ntok(shared)))
    assert not short, f"{len(short)} of {len(spans) - 1} neighbour pairs share < {overlap} tokens"
    # together the chunks cover the whole text: nothing but whitespace is left out
    assert not text[: spans[0][0]].strip() and not text[spans[-1][1] :].strip()
    for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False):
        assert s2 <= e1 or not text[e1:s2].strip()


@pytest.mark.parametrize("size, overlap", [(48, 12), (96, 24), (128, 32), (64, 40)])
def test_overlap_is_at_least_the_requested_tokens_on_mixed_prose(tok, size, overlap):
    _check_overlap_and_coverage(tok, MIXED_PROSE, size, overlap)


def test_overlap_on_the_bundled_guide(tok):
    from ragtune.examples import GLIMMERDB

    text = (GLIMMERDB / "guide.md").read_text(encoding="utf-8")
    _check_overlap_and_coverage(tok, text, 64, 16)


def test_overlap_on_the_sample_blog(tok):
    from tests.conftest import SHARED_DATA

    blog = SHARED_DATA / "raft" / "samples" / "blog.txt"
    if not blog.exists():
        pytest.skip(f"{blog} is not here")
    _check_overlap_and_coverage(tok, blog.read_text(encoding="utf-8"), 256, 32)
