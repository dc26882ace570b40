import json

import numpy as np
import pytest

from ragtune.corpus.document import Chunk
from ragtune.errors import ConfigError
from ragtune.retrieval import Index
from ragtune.retrieval.fusion import rrf
from ragtune.retrieval.types import SearchResults

TEXTS = [
    "The Zorblax compressor reduces archive size using a sliding window.",
    "Cats are small domesticated carnivorous mammals that purr.",
    "To install quuxlib run pip install quuxlib and import it.",
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "A kitten is a young cat; kittens sleep most of the day.",
]


def _chunks():
    return [Chunk(f"c{i}", f"d{i}", t, {"source": f"f{i}.txt"}) for i, t in enumerate(TEXTS)]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return Index.build(_chunks(), tmp_path_factory.mktemp("idx") / "idx")


def test_bm25_finds_lexical_match(index):
    res = index.search(["how do I install quuxlib?"], k=3, method="bm25")
    assert isinstance(res, SearchResults)
    assert res.ids.shape == (1, 3) and res.ids.dtype == np.int64
    assert res.ids[0, 0] == 2
    assert np.all(np.diff(res.scores[0][res.ids[0] >= 0]) <= 0)  # best first


def test_dense_finds_paraphrase(index):
    # no word in common with text 1 except none: semantic match only
    res = index.search(["feline pets that purr"], k=2, method="dense")
    assert res.ids[0, 0] in (1, 5)


def test_hybrid_and_padding(index):
    res = index.search(["kitten cat", "Paris tower"], k=10, method="hybrid")
    assert res.ids.shape == (2, 10)
    assert set(res.ids[0, :2]) == {1, 5}
    assert res.ids[1, 0] == 3
    # only 6 chunks exist: the rest is padding
    assert (res.ids[0] == -1).sum() == 4 and np.isneginf(res.scores[0][res.ids[0] == -1]).all()
    bm = index.search(["zzzqqq"], k=3, method="bm25")
    assert (bm.ids == -1).all()


def test_directory_layout_and_version_check(index, tmp_path):
    p = index.path
    params = json.loads((p / "params.json").read_text())
    assert params["version"] == 1 and params["n_chunks"] == 6
    assert (p / "dense" / "vectors.npy").exists() and (p / "bm25").is_dir()
    assert not list(p.parent.glob(".*tmp-*"))  # temp dir renamed away
    assert len((p / "chunks.jsonl").read_text().splitlines()) == 6
    bad = tmp_path / "old"
    bad.mkdir()
    (bad / "params.json").write_text(json.dumps({"format": "ragtune-index", "version": 0}))
    with pytest.raises(ConfigError, match="rebuild it"):
        Index.load(bad)
    with pytest.raises(ConfigError, match="not a ragtune index"):
        Index.load(tmp_path)


def test_rebuild_replaces_atomically_and_refuses_foreign_dir(tmp_path):
    out = tmp_path / "idx"
    Index.build(_chunks()[:3], out, methods=("bm25",))
    idx = Index.build(_chunks(), out, methods=("bm25",))
    assert len(idx.chunks) == 6 and idx.methods == ["bm25"]
    with pytest.raises(ConfigError, match="not available"):
        idx.search("cat", method="dense")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a ragtune index"):
        Index.build(_chunks(), foreign, methods=("bm25",))
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert not list(tmp_path.glob(".*tmp-*"))


def test_crash_mid_build_leaves_no_half_index(tmp_path, monkeypatch):
    from ragtune.retrieval import bm25

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bm25.BM25Index, "build", boom)
    with pytest.raises(RuntimeError):
        Index.build(_chunks(), tmp_path / "idx", methods=("bm25",))
    assert list(tmp_path.iterdir()) == []


def test_rrf_sums_reciprocal_ranks():
    a = SearchResults(np.array([[1, 2, 3]]), np.zeros((1, 3), np.float32))
    b = SearchResults(np.array([[3, 1, -1]]), np.zeros((1, 3), np.float32))
    r = rrf([a, b], k=3, c=60)
    assert r.ids[0].tolist() == [1, 3, 2]
    assert r.scores[0, 0] == pytest.approx(1 / 61 + 1 / 62)


def test_hnsw_option_matches_exact_on_small_index(tmp_path, index):
    idx = Index.build(_chunks(), tmp_path / "hnsw", methods=("dense",), hnsw=True)
    assert (idx.path / "dense" / "hnsw.faiss").exists() and idx.params["dense"]["hnsw"] is True
    q = ["feline pets that purr", "install a python package"]
    assert (idx.search(q, 2, "dense").ids == index.search(q, 2, "dense").ids).all()


def test_bm25_queries_with_identifiers_and_punctuation(index):
    # tantivy splits "fold_ledger" and "don't" into several tokens; the query must not become
    # a phrase query (which needs positions this index does not store)
    for q in ["glimmer.fold_ledger(vault, keep=3)", 'don\'t AND OR NOT (x) "quoted" field:value']:
        res = index.search([q], k=2, method="bm25")
        assert res.ids.shape == (1, 2)


def test_concurrent_first_dense_searches_load_once(index, monkeypatch):
    """A server's first dense queries arrive together: none may see a half-loaded retriever."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import ragtune.retrieval.dense as dense

    query = "a young cat sleeping"
    expected = index.hits(query, 1, "dense")[0][0].id  # loaded before the patch
    made = []

    class SlowEmbedder(dense.Embedder):
        def __init__(self, *a, **kw):
            made.append(1)
            time.sleep(0.3)  # widens the window a racing search would fall into
            super().__init__(*a, **kw)

    monkeypatch.setattr(dense, "Embedder", SlowEmbedder)
    fresh = Index.load(index.path)
    go = threading.Barrier(4)

    def search(_):
        go.wait()
        return fresh.hits(query, 1, "dense")[0][0].id

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(search, range(4))) == [expected] * 4
    assert len(made) == 1
