"""Index building streams the corpus (files one at a time, chunks written and embedded in
windows) and writes what the all-in-memory build wrote: the same chunks, ids and params, the same
BM25 hits, allclose vectors."""

import json

import numpy as np
import pytest

from ragtune.corpus.build import IndexConfig, build_index
from ragtune.corpus.chunking import chunk_documents
from ragtune.corpus.loaders import iter_corpus, load_corpus
from ragtune.errors import ConfigError
from ragtune.examples import GLIMMERDB
from ragtune.retrieval.bm25 import BM25Index
from ragtune.retrieval.dense import Embedder
from ragtune.retrieval.index import Index


def test_streamed_build_equals_the_in_memory_build(tmp_path, tiny_tokenizer, monkeypatch):
    import ragtune.retrieval.stream as stream

    monkeypatch.setattr(stream, "WINDOW", 8)  # many windows, so the streaming is exercised
    # what the build did before streaming: the whole corpus, its chunks and texts in lists,
    # every text embedded in one call (sorted by length across the corpus), one np.save
    docs, report = load_corpus([str(GLIMMERDB)])
    chunks = chunk_documents(docs, tiny_tokenizer, size=64, overlap=16)
    texts = [c.text for c in chunks]
    assert len(chunks) > 3 * 8
    old_vecs = Embedder().encode(texts)
    old_bm25 = BM25Index.build(texts, tmp_path / "old-bm25")

    embedded = []
    idx = build_index(
        IndexConfig(
            paths=[str(GLIMMERDB)], out=str(tmp_path / "i"), chunk_size=64, chunk_overlap=16
        ),
        tokenizer=tiny_tokenizer,
        progress=embedded.append,
    )
    lines = (tmp_path / "i" / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines == [json.dumps(c.to_dict(), ensure_ascii=False) for c in chunks]
    assert [c.id for c in idx.chunks] == [c.id for c in chunks]
    assert idx.chunks[5] == chunks[5] and idx.chunks[-1] == chunks[-1]
    assert len(idx.chunks) == idx.params["n_chunks"] == len(chunks) == sum(embedded)
    vecs = np.load(tmp_path / "i" / "dense" / "vectors.npy")
    assert vecs.dtype == np.float32 and vecs.shape == old_vecs.shape
    np.testing.assert_allclose(vecs, old_vecs, atol=1e-5)
    assert not list((tmp_path / "i" / "dense").glob(".*"))  # the appended raw file is gone
    qs = ["snapshot compression", "open a vault read-only", "replication lag"]
    new_hits = idx.search(qs, k=5, method="bm25")
    old_hits = old_bm25.search(qs, k=5)
    assert (new_hits.ids == old_hits.ids).all()
    np.testing.assert_allclose(new_hits.scores, old_hits.scores, rtol=1e-6)
    assert idx.params["load_report"]["summary"] == report.summary()
    assert idx.params["load_report"]["documents"] == len(docs)
    assert set(idx.params) == {
        "format", "version", "methods", "n_chunks", "created", "bm25", "dense", "chunking",
        "load_report",
    }  # fmt: skip
    dense = idx.search(qs, k=3, method="dense")
    assert (dense.ids[:, 0] >= 0).all()


def test_the_corpus_is_read_lazily_and_chunks_flow_through(tmp_path, monkeypatch):
    """Files are read one at a time, and a chunk is written and embedded before the next file is
    read: the build never holds the corpus."""
    import ragtune.corpus.chunking as chunking
    import ragtune.corpus.loaders as loaders
    import ragtune.retrieval.stream as stream

    monkeypatch.setattr(stream, "WINDOW", 4)  # texts per embedding window
    monkeypatch.setattr(chunking, "WINDOW", 5)  # documents tokenized together (one file's)
    for i in range(6):
        recs = [{"id": f"{i}-{j}", "text": f"File {i} record {j} says hello."} for j in range(5)]
        (tmp_path / f"part{i}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    events = []
    read = loaders._load_file

    def spy_read(path, *a, **k):
        events.append(("read", path.name))
        return read(path, *a, **k)

    class Emb:  # a stand-in embedder: records what it was given, 3-d vectors
        dim = 3

        def encode(self, texts, progress=None):
            events.append(("embed", len(texts)))
            return np.ones((len(texts), 3), np.float32) / np.sqrt(3)

    monkeypatch.setattr(loaders, "_load_file", spy_read)
    monkeypatch.setattr("ragtune.retrieval.dense.Embedder", lambda path=None: Emb())
    idx = build_index(
        IndexConfig(
            paths=[str(tmp_path)], out=str(tmp_path / "i"), chunk_mode="record", text_field="text"
        )
    )
    assert len(idx.chunks) == 30 and idx.params["load_report"]["documents"] == 30
    kinds = [k for k, _ in events]
    assert kinds.count("read") == 6 and kinds.count("embed") == 8  # 30 = 7 x 4 + 2
    first_embed = kinds.index("embed")
    assert first_embed < kinds.index("read", kinds.index("read") + 2)  # embedding begins early
    assert np.load(tmp_path / "i" / "dense" / "vectors.npy").shape == (30, 3)
    assert [c.text for c in idx.chunks][:2] == [
        "File 0 record 0 says hello.",
        "File 0 record 1 says hello.",
    ]


def test_iter_corpus_is_load_corpus_one_file_at_a_time(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nAlpha text.")
    (tmp_path / "b.txt").write_text("")  # skipped: empty
    (tmp_path / "c.jsonl").write_text('{"text": "one"}\nnot json\n{"text": "two"}\n')
    docs, report = load_corpus([str(tmp_path), str(tmp_path / "missing")])
    got = []
    from ragtune.corpus.loaders import LoadReport

    rep = LoadReport()
    gen = iter_corpus([str(tmp_path), str(tmp_path / "missing")], report=rep)
    got.append(next(gen))
    assert rep.files_loaded == 1 and rep.files_seen == 1  # nothing read ahead
    got.extend(gen)
    assert [d.to_dict() for d in got] == [d.to_dict() for d in docs]
    assert rep.summary() == report.summary() and rep.documents == len(docs) == 3


def test_an_empty_stream_is_refused_before_anything_loads(tmp_path, monkeypatch):
    def no_embedder(*a, **k):
        raise AssertionError("the embedder must not load for an empty corpus")

    monkeypatch.setattr("ragtune.retrieval.dense.Embedder", no_embedder)
    with pytest.raises(ConfigError, match="nothing to index"):
        Index.build(iter([]), tmp_path / "i")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="nothing to index"):
        build_index(IndexConfig(paths=[str(tmp_path / "empty")], out=str(tmp_path / "j")))
    assert not (tmp_path / "i").exists() and not (tmp_path / "j").exists()
