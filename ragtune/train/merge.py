"""`ragtune merge`: fold a LoRA adapter into its base model, as a full model directory.

import ragtune
ragtune.merge(ragtune.MergeConfig(adapter="out/raft-lora/adapter", out="out/raft-merged"))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class MergeConfig:
    """Fold a LoRA adapter into its base model; writes a full model directory."""

    adapter: str = field(default="", metadata={"help": "PEFT adapter directory.", "required": True})
    out: str = field(default="", metadata={"help": "Output model directory.", "required": True})


def merge_adapter(cfg: MergeConfig) -> Path:
    """Write `cfg.out` (staged, then renamed into place); returns its path."""
    from ragtune.train.trainer import merge

    return merge(cfg.adapter, cfg.out)
