"""ragtune: language models that are domain experts and stay grounded in your sources.

    import ragtune
    idx = ragtune.build_index(ragtune.IndexConfig(paths=["docs/"], out="out/index"))
    print(ragtune.RAG(idx, "smollm2-135m").ask("How do I open a vault read-only?").answer)

Every code example in this package's docstrings and in the README runs as written
(tests/test_examples.py executes them).

Heavy dependencies (torch, transformers, faiss, tantivy) load only when first used.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ragtune.errors import (
    ConfigError,
    ContextTooLong,
    DataError,
    LLMError,
    RagtuneError,
    RateLimited,
    Unreachable,
)

__version__ = "0.1.0"

# peft reads transformers' deprecated `is_gradient_checkpointing` whenever it wraps a model
# (PeftModel.__init__), so every LoRA load and training run printed a FutureWarning that no
# ragtune user can act on. Only that one message is silenced.
warnings.filterwarnings(
    "ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning
)

if TYPE_CHECKING:  # pragma: no cover
    from ragtune.llm import LM, load_lm
    from ragtune.rag import RAG, Answer
    from ragtune.retrieval import Index

_LAZY = {
    "RAG": "ragtune.rag",
    "Answer": "ragtune.rag",
    "Index": "ragtune.retrieval",
    "LM": "ragtune.llm",
    "load_lm": "ragtune.llm",
    "build_index": "ragtune.corpus.build",
    "IndexConfig": "ragtune.corpus.build",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ragtune' has no attribute {name!r}")


__all__ = [
    "RAG",
    "Answer",
    "Index",
    "LM",
    "load_lm",
    "build_index",
    "IndexConfig",
    "RagtuneError",
    "ConfigError",
    "DataError",
    "LLMError",
    "RateLimited",
    "ContextTooLong",
    "Unreachable",
]
