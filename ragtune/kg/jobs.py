"""`ragtune kg load`: triple files → a KG directory (memory-mapped CSR arrays, params.json).

import ragtune
kg = ragtune.load_kg(ragtune.KGLoadConfig(files=["kb.txt"], out="out/kg"))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class KGLoadConfig:
    """Load triple files (TSV, CSV, s|r|o text, JSON Lines) into a KG directory."""

    files: list[str] = field(
        default_factory=list,
        metadata={"help": "Triple files.", "positional": True, "required": True},
    )
    out: str = field(default="", metadata={"help": "Output KG directory.", "required": True})
    format: str | None = field(
        default=None, metadata={"help": "tsv | csv | pipe | jsonl (default: detect per file)."}
    )
    strict: bool = field(
        default=False, metadata={"help": "Fail on the first bad line instead of skipping it."}
    )


def load_kg(cfg: KGLoadConfig, on_bad: Callable[[Any], None] | None = None):
    """Build the KG directory `cfg.out`; `on_bad(line)` hears each skipped line. Returns the KG."""
    from ragtune.kg import KG

    return KG.from_files(cfg.files, cfg.out, format=cfg.format, strict=cfg.strict, on_bad=on_bad)
