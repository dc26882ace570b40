"""Dense retrieval: the bundled all-MiniLM-L6-v2 embedder + faiss (exact inner product or HNSW).

Vectors are L2-normalised, so inner product == cosine. They are stored as `vectors.npy`
(float32, (n, d)); an HNSW graph, when asked for, as `hnsw.faiss` (faiss's own format, no pickle).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ragtune.retrieval.types import SearchResults


class Embedder:
    """Sentence embeddings from a local sentence-transformers directory (default: bundled MiniLM)."""

    def __init__(
        self, path: str | Path | None = None, batch_size: int = 64, device: str = "auto"
    ) -> None:
        from sentence_transformers import SentenceTransformer

        from ragtune.llm.bundled import minilm_dir
        from ragtune.llm.device import resolve_device

        # the same `auto` as the generator's (ragtune.llm.device); fp32 whatever the device:
        # the vectors are stored as float32 and compared across builds
        self.device = resolve_device(device)
        self.path = str(path or minilm_dir())
        import transformers

        transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar per load
        self.model = SentenceTransformer(self.path, device=str(self.device), local_files_only=True)
        self.batch_size = batch_size
        get_dim = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension  # sentence-transformers < 6
        )
        self.dim = int(get_dim())

    def encode(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """(n, dim) float32, unit-norm rows. `progress(n_done_in_batch)` after each batch.

        Texts are embedded in order of length so each batch pads to similar lengths (the
        transformer's cost is batch x longest), then put back in input order.
        """
        out = np.empty((len(texts), self.dim), np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        for i in range(0, len(texts), self.batch_size):
            rows = order[i : i + self.batch_size]
            out[rows] = self.model.encode(
                [texts[j] for j in rows],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
            )
            if progress:
                progress(len(rows))
        return out


def similarity_order(
    emb: Embedder, docs: Sequence[Sequence[str]], questions: Sequence[str]
) -> list[list[int]]:
    """For each question, the indices of its documents from most to least similar to it.

    A reranking step: the documents stay the same, only their order changes. Each distinct
    text is embedded once; the sort is stable, so equal scores keep the given order.
    """
    texts = sorted({d for ds in docs for d in ds})  # sorted: a deterministic batch order
    vec = dict(zip(texts, emb.encode(texts), strict=True))
    qv = emb.encode(list(questions))  # (n, dim), unit rows: dot = cosine
    return [
        sorted(range(len(ds)), key=lambda i, ds=ds, v=v: -float(vec[ds[i]] @ v))
        for ds, v in zip(docs, qv, strict=True)
    ]


class DenseIndex:
    def __init__(self, vectors: np.ndarray, hnsw=None) -> None:
        import faiss

        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if hnsw is not None:
            self._faiss = hnsw
        else:
            self._faiss = faiss.IndexFlatIP(self.vectors.shape[1])
            self._faiss.add(self.vectors)

    @classmethod
    def build(
        cls, vectors: np.ndarray, path: Path, hnsw: bool = False, hnsw_m: int = 32
    ) -> DenseIndex:
        import faiss

        path.mkdir(parents=True, exist_ok=True)
        np.save(path / "vectors.npy", vectors.astype(np.float32))
        index = None
        if hnsw:
            index = faiss.IndexHNSWFlat(vectors.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            faiss.write_index(index, str(path / "hnsw.faiss"))
        return cls(vectors, index)

    @classmethod
    def load(cls, path: Path) -> DenseIndex:
        import faiss

        vectors = np.load(path / "vectors.npy", mmap_mode="r")
        hnsw = (
            faiss.read_index(str(path / "hnsw.faiss")) if (path / "hnsw.faiss").exists() else None
        )
        return cls(vectors, hnsw)

    def search_vectors(self, q: np.ndarray, k: int = 10) -> SearchResults:
        """q: (n_queries, dim) unit-norm float32 → top-k by inner product (one batched call)."""
        k_eff = min(k, self.vectors.shape[0])
        scores, ids = self._faiss.search(np.ascontiguousarray(q, dtype=np.float32), k_eff)
        if k_eff < k:  # pad to the promised shape
            pad = k - k_eff
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        return SearchResults(ids.astype(np.int64), scores)
