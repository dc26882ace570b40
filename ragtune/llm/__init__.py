"""LM backends: one interface (`LM`), chosen by a spec string (`load_lm`)."""

from ragtune.llm.base import LM, Completion, GenerationConfig, Message, Messages, Usage
from ragtune.llm.spec import DEFAULT_MODEL, load_lm

__all__ = [
    "LM",
    "Completion",
    "GenerationConfig",
    "Message",
    "Messages",
    "Usage",
    "DEFAULT_MODEL",
    "load_lm",
]
