"""Optional dependencies: which extra installs each, and one import that says so when missing.

    peft = require("peft")      # MissingExtra: "... pip install 'ragtune[train]'" when absent

Core ragtune (index, search, ask, the bundled models) needs none of these; `ragtune[all]` has them
all.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ragtune.errors import MissingExtra

EXTRA_OF = {
    "peft": "train",  # LoRA training, adapters, merging
    "accelerate": "train",
    "datasets": "train",  # RAFT data's HF dataset directory
    "pyarrow": "train",  # parquet outputs
    "fastapi": "server",
    "uvicorn": "server",
    "matplotlib": "eval",  # the evaluation's plots and report
    "ray": "ray",
    "onnxruntime_genai": "onnx",  # the onnx: backend
    "onnx_ir": "onnx",  # its one-time export (onnxruntime-genai's builder)
}


def require(module: str, what: str | None = None) -> ModuleType:
    """Import `module`, or raise MissingExtra naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        root = module.split(".")[0]
        extra = EXTRA_OF.get(root, "all")
        raise MissingExtra(
            f"{what or 'this'} needs {root}, which is not installed; install it with "
            f"pip install 'ragtune[{extra}]' (or 'ragtune[all]' for every optional part)",
            extra=extra,
        ) from None
