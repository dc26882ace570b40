"""`ragtune rog train`: one LoRA adapter for the planner and the reasoner, on `rog build-data`
output; RoG's path markers (<PATH>, <SEP>, </PATH>) are added tokens trained with it.

In Python: `ragtune.train_rog(ragtune.RogTrainConfig(data="out/rog-data", out="out/rog"))`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ragtune.rog.prompts import MARKERS
from ragtune.train.trainer import TrainConfig


@dataclass
class RogTrainConfig(TrainConfig):
    """LoRA on RoG data: planning and reasoning mixed; the path markers are added tokens."""

    add_tokens: list[str] = field(
        default_factory=lambda: list(MARKERS),
        metadata={"help": "Tokens added to the tokenizer (RoG's path markers)."},
    )
    lr: float = field(default=5e-4, metadata={"help": "Peak learning rate."})
    batch_tokens: int = field(
        default=4096, metadata={"help": "Token budget per micro-batch (batch x longest)."}
    )


def train_rog(cfg: RogTrainConfig, progress=None) -> dict:
    """Train the planner + reasoner adapter; the training summary (as `ragtune train`'s)."""
    from ragtune.train.trainer import train

    return train(cfg, progress=progress)
