"""Index files written and read without holding the corpus in memory.

- `DenseWriter`: texts in, `dense/vectors.npy` (+ `hnsw.faiss`) out, embedded a window at a time
  and appended to disk; the .npy header is written last, when the row count is known, so no
  counting pass over the corpus is needed. The files are the ones `DenseIndex.build` writes.
- `ChunkStore`: `chunks.jsonl` as a read-only sequence of `Chunk`s, parsed on access from a
  memory map (8 bytes of line offset per chunk in memory), so loading an index of millions of
  chunks costs a scan of the file instead of millions of Python objects.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ragtune.corpus.document import Chunk

# Texts embedded per window: the embedder sorts each window by length before batching (little
# padding); a window of 4,096 texts and its float32 vectors take a few MB.
WINDOW = 4096


class DenseWriter:
    """Embed texts as they come; `close()` returns the dimension once every text is written."""

    def __init__(
        self,
        embedder,
        path: Path,
        hnsw: bool = False,
        hnsw_m: int = 32,
        progress: Callable[[int], None] | None = None,
        window: int | None = None,
    ) -> None:
        self.emb, self.path, self.progress = embedder, path, progress
        self.window = window or WINDOW
        path.mkdir(parents=True, exist_ok=True)
        self._raw_path = path / ".vectors.f32"
        self._raw = open(self._raw_path, "wb")
        self._buf: list[str] = []
        self.n = 0
        self._hnsw = None
        if hnsw:
            import faiss

            # the graph grows as vectors come (faiss adds in batches); it is in memory by nature
            self._hnsw = faiss.IndexHNSWFlat(embedder.dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)

    def add(self, text: str) -> None:
        self._buf.append(text)
        if len(self._buf) >= self.window:
            self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        vecs = np.ascontiguousarray(self.emb.encode(self._buf, progress=self.progress), np.float32)
        self._raw.write(vecs.tobytes())
        if self._hnsw is not None:
            self._hnsw.add(vecs)
        self.n += len(self._buf)
        self._buf = []

    def close(self) -> int:
        """Write `vectors.npy` (the header, then the rows appended so far) and the graph."""
        import shutil

        self._flush()
        self._raw.close()
        dim = int(self.emb.dim)
        with open(self.path / "vectors.npy", "wb") as out, open(self._raw_path, "rb") as raw:
            np.lib.format.write_array_header_1_0(
                out, {"descr": "<f4", "fortran_order": False, "shape": (self.n, dim)}
            )
            shutil.copyfileobj(raw, out, 16 << 20)
        os.unlink(self._raw_path)
        if self._hnsw is not None:
            import faiss

            faiss.write_index(self._hnsw, str(self.path / "hnsw.faiss"))
        return dim


class ChunkStore(Sequence):
    """The chunks of `chunks.jsonl`, row i = line i, parsed when read."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        self._starts = _line_starts(self._mm, size)

    def __len__(self) -> int:
        return len(self._starts) - 1

    def _line(self, i: int) -> bytes:
        return self._mm[self._starts[i] : self._starts[i + 1]]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"chunk {i} is out of range (the index has {len(self)})")
        return Chunk.from_dict(json.loads(self._line(i)))

    def __iter__(self) -> Iterator[Chunk]:
        for i in range(len(self)):
            yield Chunk.from_dict(json.loads(self._line(i)))

    def __repr__(self) -> str:
        return f"ChunkStore({str(self.path)!r}, {len(self)} chunks)"


def _line_starts(data, size: int) -> np.ndarray:
    """Offsets where each line starts, plus the end: (n + 1,) int64, scanned in blocks."""
    starts = [np.zeros(1, np.int64)]
    block = 64 << 20
    for off in range(0, size, block):
        buf = np.frombuffer(data[off : off + block], np.uint8)
        starts.append(np.flatnonzero(buf == 10).astype(np.int64) + off + 1)
    out = np.concatenate(starts)
    if size and out[-1] != size:  # a last line without its newline
        out = np.append(out, size)
    return out
