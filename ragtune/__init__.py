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
from typing import Any

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

_LAZY = {
    # the main objects
    "RAG": "ragtune.rag",
    "Answer": "ragtune.rag",
    "Index": "ragtune.retrieval",
    "KG": "ragtune.kg",
    "RoG": "ragtune.rog.pipeline",
    "LM": "ragtune.llm",
    "load_lm": "ragtune.llm",
    # the jobs: a config dataclass and the one function that takes it (the CLI calls the same)
    "IndexConfig": "ragtune.corpus.build",
    "build_index": "ragtune.corpus.build",
    "RaftBuildConfig": "ragtune.raft.jobs",
    "build_raft": "ragtune.raft.jobs",
    "RaftFromQAConfig": "ragtune.raft.jobs",
    "raft_from_qa": "ragtune.raft.jobs",
    "TrainConfig": "ragtune.train.trainer",
    "MergeConfig": "ragtune.train.merge",
    "EvalConfig": "ragtune.eval.compare",
    "KGLoadConfig": "ragtune.kg.jobs",
    "load_kg": "ragtune.kg.jobs",
    "BuildDataConfig": "ragtune.rog.data",
    "build_rog_data": "ragtune.rog.data",
    "RogTrainConfig": "ragtune.rog.train",
    "train_rog": "ragtune.rog.train",
    "RogEvalConfig": "ragtune.rog.evaluate",
    "RogAskConfig": "ragtune.rog.ask",
    "ask_rog": "ragtune.rog.ask",
    "PlannerTrainConfig": "ragtune.rog.rank",
    "SynthConfig": "ragtune.rog.synth",
    "synth_questions": "ragtune.rog.synth",
    "train_planner": "ragtune.rog.rank",
    "ExportConfig": "ragtune.train.export",
    "PipelineConfig": "ragtune.pipeline",
    "run_pipeline": "ragtune.pipeline",
    "load_config": "ragtune.config",
    "AskConfig": "ragtune.rag.ask",
    "ask": "ragtune.rag.ask",
    "ServeConfig": "ragtune.server.serve",
    "serve": "ragtune.server.serve",
    "ModelArgs": "ragtune.llm.args",
    # retrieval that learns the domain: a tuned embedder, a cross-encoder, a re-embedded index
    "RetrieverTrainConfig": "ragtune.retrieval.train",
    "train_retriever": "ragtune.retrieval.train",
    "RerankerTrainConfig": "ragtune.retrieval.train",
    "train_reranker": "ragtune.retrieval.train",
    "ReembedConfig": "ragtune.retrieval.reembed",
    "reembed_index": "ragtune.retrieval.reembed",
    "RetrieverEvalConfig": "ragtune.eval.retrieval",
    "evaluate_retrieval": "ragtune.eval.retrieval",
}
# public name -> (module, attribute) where they differ (`ragtune.train` is the package)
_ALIASES = {
    "finetune": ("ragtune.train.trainer", "train"),
    "merge": ("ragtune.train.merge", "merge_adapter"),
    "evaluate": ("ragtune.eval.compare", "evaluate"),
    "predict_rog": ("ragtune.rog.evaluate", "predict"),
    "export_model": ("ragtune.train.export", "export"),
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _ALIASES:
        mod, attr = _ALIASES[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'ragtune' has no attribute {name!r}")


__all__ = [
    *_LAZY,
    *_ALIASES,
    "RagtuneError",
    "ConfigError",
    "DataError",
    "LLMError",
    "RateLimited",
    "ContextTooLong",
    "Unreachable",
]
