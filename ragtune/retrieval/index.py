"""An index is a plain directory, never a pickle:

    DIR/params.json      {"format": "ragtune-index", "version": 1, methods, embedder, chunking, ...}
    DIR/chunks.jsonl     one Chunk per line; row i of every retriever is line i
    DIR/bm25/            tantivy index (row number as a fast field)
    DIR/dense/           vectors.npy (n, d) float32 unit-norm [+ hnsw.faiss]

Built into a temporary sibling directory and renamed into place, so a crash never leaves a half
index (and an existing index is only replaced once the new one is complete).

    from ragtune.retrieval import Index
    idx = Index.load("out/index")                             # what `ragtune index` wrote
    res = idx.search(["what is X?"], k=5, method="hybrid")   # SearchResults(ids, scores)
    idx.chunks[res.ids[0, 0]]
    copy = Index.build(idx.chunks, "out/idx", methods=("bm25", "dense"))  # from Chunk objects

`ragtune.retrieval.reembed` (`ragtune retriever reembed`) writes dense/ anew from chunks.jsonl
with another embedder, e.g. one `ragtune retriever train` tuned.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.corpus.document import Chunk
from ragtune.errors import ConfigError
from ragtune.retrieval.types import SearchResults
from ragtune.store import read_params, recover_dir, staged_dir

FORMAT = "ragtune-index"
VERSION = 1
METHODS = ("bm25", "dense", "hybrid")


class Index:
    def __init__(
        self, path: Path, params: dict[str, Any], chunks: list[Chunk], device: str = "auto"
    ) -> None:
        self.path = path
        self.device = device  # where the query embedder runs (ragtune.llm.device)
        self.params = params
        self.chunks = chunks
        self._bm25 = None
        self._dense = None
        self._embedder = None
        self._load_lock = threading.Lock()  # concurrent first searches (a server) load once

    # -- building ------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        chunks: Iterable[Chunk],
        out: str | Path,
        *,
        methods: Sequence[str] = ("bm25", "dense"),
        embedder: str | None = None,
        hnsw: bool = False,
        bm25_tokenizer: str = "en_stem",
        extra_params: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Index:
        """Index `chunks` (a list, or an iterator streaming a corpus); `progress(n)` is called
        as chunks are embedded (for a progress bar). `extra_params` may be a function, called
        once the chunks are consumed (a load report is complete only then)."""
        from ragtune.retrieval.bm25 import BM25Index
        from ragtune.retrieval.dense import Embedder
        from ragtune.retrieval.stream import DenseWriter

        out = Path(out)
        bad = [m for m in methods if m not in ("bm25", "dense")]
        if bad or not methods:
            raise ConfigError(f"index methods must be among bm25, dense (got {list(methods)})")
        nothing = "nothing to index: the corpus produced no chunks (see skipped files)"
        it = iter(chunks)
        first = next(it, None)  # an empty corpus fails here, before the embedder loads
        if first is None:
            raise ConfigError(nothing)
        chunks = itertools.chain([first], it)
        with staged_dir(out, what="index") as tmp:
            # One pass over `chunks`: each is written to chunks.jsonl, handed to tantivy's
            # writer (it flushes segments under its heap budget) and queued for the embedder
            # (vectors appended a window at a time), so the corpus is never all in memory.
            dense = None
            if "dense" in methods:
                dense = DenseWriter(Embedder(embedder), tmp / "dense", hnsw=hnsw, progress=progress)
            n = 0
            with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as f:

                def texts() -> Iterator[str]:
                    nonlocal n
                    for c in chunks:
                        f.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
                        if dense is not None:
                            dense.add(c.text)
                        n += 1
                        yield c.text

                if "bm25" in methods:
                    BM25Index.build(texts(), tmp / "bm25", tokenizer=bm25_tokenizer)
                else:
                    for _ in texts():
                        pass
            dim = dense.close() if dense is not None else None
            params: dict[str, Any] = {
                "format": FORMAT,
                "version": VERSION,
                "methods": list(methods),
                "n_chunks": n,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            if "bm25" in methods:
                params["bm25"] = {"engine": "tantivy", "tokenizer": bm25_tokenizer}
            if "dense" in methods:
                params["dense"] = {"embedder": embedder_ref(embedder), "dim": dim, "hnsw": hnsw}
            params.update((extra_params() if callable(extra_params) else extra_params) or {})
            (tmp / "params.json").write_text(json.dumps(params, indent=2), encoding="utf-8")
        return cls.load(out)

    # -- loading ------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> Index:
        """The index at `path`; `device`: where its query embedder runs (auto, cpu, cuda, ...)."""
        path = recover_dir(path)  # a build killed mid-swap may have moved the index aside
        params = read_params(path, FORMAT, VERSION, "index", "`ragtune index CORPUS --out PATH`")
        from ragtune.retrieval.stream import ChunkStore

        # read on access (ragtune.retrieval.stream): an index of millions of chunks loads in
        # a scan of its chunks.jsonl, not millions of objects
        chunks = ChunkStore(path / "chunks.jsonl")
        return cls(path, params, chunks, device=device)

    @property
    def methods(self) -> list[str]:
        m = list(self.params["methods"])
        return m + ["hybrid"] if len(m) == 2 else m

    @property
    def default_method(self) -> str:
        return "hybrid" if len(self.params["methods"]) == 2 else self.params["methods"][0]

    def _bm25_index(self):
        if self._bm25 is None:
            from ragtune.retrieval.bm25 import BM25Index

            self._bm25 = BM25Index.load(self.path / "bm25")
        return self._bm25

    def _dense_index(self):
        if self._dense is None:
            with self._load_lock:
                if self._dense is None:
                    from ragtune.retrieval.dense import DenseIndex, Embedder

                    # the embedder first: `_dense` set means both are ready
                    self._embedder = Embedder(
                        embedder_path(self.path, self.params), device=self.device
                    )
                    self._dense = DenseIndex.load(self.path / "dense")
        return self._dense

    def embedder(self):
        """The embedder of the index's dense vectors (what queries are embedded with), loaded on
        first use; None for an index without dense vectors."""
        if "dense" not in self.params["methods"]:
            return None
        self._dense_index()
        return self._embedder

    # -- searching ----------------------------------------------------------------------
    def search(
        self, queries: str | Sequence[str], k: int = 5, method: str | None = None
    ) -> SearchResults:
        """Top-k rows for each query. method: bm25 | dense | hybrid (default: best available)."""
        from ragtune.retrieval.fusion import rrf

        if isinstance(queries, str):
            queries = [queries]
        method = method or self.default_method
        if method not in self.methods:
            raise ConfigError(
                f"method {method!r} is not available in {self.path} (built with "
                f"{self.params['methods']}); use one of {self.methods} or rebuild with --methods"
            )
        if method == "bm25":
            return self._bm25_index().search(queries, k)
        if method == "dense":
            dense = self._dense_index()
            return dense.search_vectors(self._embedder.encode(queries), k)
        depth = max(k * 4, 50)  # fuse deeper lists than we return
        return _trim(
            rrf([self.search(queries, depth, "bm25"), self.search(queries, depth, "dense")], k), k
        )

    def hits(self, query: str, k: int = 5, method: str | None = None) -> list[tuple[Chunk, float]]:
        """(chunk, score) pairs for one query, best first."""
        res = self.search([query], k, method)
        return [
            (self.chunks[i], float(s))
            for i, s in zip(res.ids[0], res.scores[0], strict=True)
            if i >= 0
        ]


def _trim(r: SearchResults, k: int) -> SearchResults:
    return SearchResults(np.ascontiguousarray(r.ids[:, :k]), np.ascontiguousarray(r.scores[:, :k]))


BUNDLED_EMBEDDER = "bundled:all-MiniLM-L6-v2"


def embedder_ref(embedder: str | Path | None) -> str:
    """What params.json records for an embedder: the bundled model's name, or a directory as an
    absolute path, so the index loads it again from any working directory."""
    if not embedder:
        return BUNDLED_EMBEDDER
    p = Path(embedder)
    return str(p.resolve()) if p.exists() else str(embedder)


def embedder_path(index_dir: Path, params: dict[str, Any]) -> str | None:
    """The embedder directory an index's params name (None: the bundled one), checked to exist."""
    emb = params["dense"]["embedder"]
    if emb.startswith("bundled:"):
        return None
    if not Path(emb).exists():
        raise ConfigError(
            f"{index_dir} was embedded with {emb}, which no longer exists; put it back, or "
            f"re-embed the index: ragtune retriever reembed {index_dir} --embedder DIR"
        )
    return emb
