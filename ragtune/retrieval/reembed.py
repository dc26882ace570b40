"""Re-embed an index with another embedder, without reading the corpus again (`ragtune retriever
reembed`).

    ragtune retriever reembed out/index --embedder out/retriever            # in place
    ragtune retriever reembed out/index --embedder out/retriever --out out/index-tuned

(`ragtune.reembed_index(ragtune.ReembedConfig(index=..., embedder=...))` in Python.)

dense/ is written anew from chunks.jsonl; chunks, BM25 and the rest of params.json are kept, and
`params["dense"]["embedder"]` records the new embedder (an absolute path), which the index's
dense and hybrid searches then embed queries with.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ragtune.retrieval.index import Index, embedder_ref


@dataclass
class ReembedConfig:
    """Re-embed an index's chunks with another embedder (BM25 and chunks stay as they are)."""

    index: str = field(
        default="", metadata={"help": "Index directory.", "positional": True, "required": True}
    )
    embedder: str | None = field(
        default=None,
        metadata={
            "help": "sentence-transformers directory, e.g. one `ragtune retriever train` wrote "
            "(unset: the bundled MiniLM)."
        },
    )
    out: str | None = field(
        default=None, metadata={"help": "Write the re-embedded index here (default: in place)."}
    )
    hnsw: bool | None = field(
        default=None, metadata={"help": "Build an HNSW graph (default: as the index had)."}
    )


def reembed_index(cfg: ReembedConfig, progress: Callable[[int], None] | None = None) -> Index:
    """Write `dense/` anew with `cfg.embedder`; `progress(n)` as chunks are embedded. Staged like
    every index write: the old index serves until the new one is renamed in."""
    from ragtune.errors import ConfigError
    from ragtune.retrieval.dense import DenseIndex, Embedder
    from ragtune.store import staged_dir

    if not cfg.index:
        raise ConfigError("missing INDEX: the index directory to re-embed")
    if cfg.embedder and not (Path(cfg.embedder) / "modules.json").is_file():
        raise ConfigError(
            f"--embedder {cfg.embedder}: not a sentence-transformers directory (no modules.json); "
            "give one `ragtune retriever train` wrote, or leave it unset for the bundled MiniLM"
        )
    src = Index.load(cfg.index)  # checks format and version, recovers a killed swap
    out = Path(cfg.out) if cfg.out else src.path
    params = json.loads(json.dumps(src.params))  # a copy to edit
    hnsw = cfg.hnsw if cfg.hnsw is not None else bool(params.get("dense", {}).get("hnsw", False))
    emb = Embedder(cfg.embedder)
    vecs = emb.encode([c.text for c in src.chunks], progress=progress)
    with staged_dir(out, what="index") as tmp:
        for item in src.path.iterdir():  # chunks.jsonl, bm25/ and anything else but dense/
            if item.name in ("dense", "params.json"):
                continue
            if item.is_dir():
                shutil.copytree(item, tmp / item.name)
            else:
                shutil.copy2(item, tmp / item.name)
        DenseIndex.build(vecs, tmp / "dense", hnsw=hnsw)
        methods = list(params["methods"])
        params["methods"] = methods if "dense" in methods else [*methods, "dense"]
        params["dense"] = {
            "embedder": embedder_ref(cfg.embedder),
            "dim": emb.dim,
            "hnsw": hnsw,
            "reembedded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / "params.json").write_text(json.dumps(params, indent=2), encoding="utf-8")
    return Index.load(out)
