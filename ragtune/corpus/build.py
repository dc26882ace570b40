"""Corpus → chunks → index, as one job (`ragtune index`).

from ragtune import IndexConfig, build_index
idx = build_index(IndexConfig(paths=["docs/"], out="out/index"))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ragtune.corpus.chunking import iter_chunks
from ragtune.corpus.loaders import LoadReport, Skipped, iter_corpus
from ragtune.retrieval.index import Index


@dataclass
class IndexConfig:
    """Index a corpus (files and folders) into a directory."""

    paths: list[str] = field(
        default_factory=list,
        metadata={"help": "Files or folders to index.", "positional": True, "required": True},
    )
    out: str = field(default="", metadata={"help": "Index directory to write.", "required": True})
    text_field: str | None = field(
        default=None,
        metadata={"help": "JSON/JSONL field holding the text; unset renders whole records."},
    )
    chunk_size: int = field(default=256, metadata={"help": "Chunk size in generator tokens."})
    chunk_overlap: int = field(
        default=32, metadata={"help": "Tokens shared by neighbouring chunks."}
    )
    chunk_mode: str = field(
        default="tokens",
        metadata={"help": "'tokens' (sentence-packed) or 'record' (one per document)."},
    )
    tokenizer: str = field(
        default="smollm2-135m", metadata={"help": "Model spec whose tokenizer measures chunks."}
    )
    methods: list[str] = field(
        default_factory=lambda: ["bm25", "dense"],
        metadata={"help": "Retrievers to build: bm25, dense (both enable hybrid)."},
    )
    embedder: str | None = field(
        default=None,
        metadata={"help": "sentence-transformers directory (default: bundled MiniLM)."},
    )
    hnsw: bool = field(default=False, metadata={"help": "Also build an HNSW graph (approximate)."})
    max_bytes: int = field(default=50_000_000, metadata={"help": "Skip files larger than this."})
    strict: bool = field(
        default=False, metadata={"help": "Fail on the first bad file instead of skipping."}
    )


def build_index(
    cfg: IndexConfig | None = None,
    *,
    on_skip: Callable[[Skipped], None] | None = None,
    progress: Callable[[int], None] | None = None,
    on_chunked: Callable[[int], None] | None = None,
    tokenizer: Any = None,
    **kw: Any,
) -> Index:
    """Load, chunk and index. Returns the loaded Index; `index.params["load_report"]` has counts.

    The corpus streams through: files are read one at a time, their chunks written to the index
    and embedded in windows as they come (`Index.build` on an iterator), so a corpus larger than
    memory indexes in bounded memory. `on_chunked(n)` gets the chunk count once it is known, at
    the end.
    """
    cfg = cfg or IndexConfig(**kw)
    report = LoadReport()
    docs = iter_corpus(
        cfg.paths,
        text_field=cfg.text_field,
        max_bytes=cfg.max_bytes,
        strict=cfg.strict,
        on_skip=on_skip,
        report=report,
    )
    if tokenizer is None and cfg.chunk_mode == "tokens":
        from ragtune.llm.spec import load_tokenizer

        tokenizer = load_tokenizer(cfg.tokenizer)
    chunks = iter_chunks(
        docs, tokenizer, size=cfg.chunk_size, overlap=cfg.chunk_overlap, mode=cfg.chunk_mode
    )
    idx = Index.build(
        chunks,
        cfg.out,
        methods=cfg.methods,
        embedder=cfg.embedder,
        hnsw=cfg.hnsw,
        progress=progress,
        extra_params=lambda: {  # after the stream: the load report is complete only then
            "chunking": {
                "mode": cfg.chunk_mode,
                "size": cfg.chunk_size,
                "overlap": cfg.chunk_overlap,
                "tokenizer": cfg.tokenizer,
            },
            "load_report": _report_dict(report),
        },
    )
    if on_chunked:
        on_chunked(len(idx.chunks))
    return idx


def _report_dict(r: LoadReport) -> dict[str, Any]:
    return {
        "files_seen": r.files_seen,
        "files_loaded": r.files_loaded,
        "documents": r.documents,
        "skipped": [{"path": s.path, "line": s.line, "reason": s.reason} for s in r.skipped],
        "summary": r.summary(),
    }
