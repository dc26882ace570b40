"""Model spec strings → a backend.

smollm2-135m                  the bundled SmolLM2-135M-Instruct (default; offline)
gguf:PATH  or  PATH.gguf      a local GGUF file (transformers, converted once and cached)
PATH                          a local Hugging Face model directory
openai:MODEL@BASE_URL         an OpenAI-compatible endpoint (key from $OPENAI_API_KEY)
openai:MODEL                  OpenAI itself
onnx:MODEL                    onnxruntime-genai on CPU (MODEL: smollm2-135m, a model dir, a
                              GGUF file or an exported dir; exported once; the `onnx` extra)
dummy                         ragtune.testing.DummyLM (echoes; for wiring tests)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError
from ragtune.llm.base import LM

DEFAULT_MODEL = "smollm2-135m"


# Settings that only one kind of backend has: the other kind ignores them, so a job passes
# them whatever the spec is (callers never test the spec string themselves).
LOCAL_ONLY = ("threads", "batch_size", "device", "dtype")
REMOTE_ONLY = ("concurrency", "max_retries", "timeout", "api_key_env", "backoff_base")


def runs_locally(spec: str) -> bool:
    """Whether a spec names a model that runs in this process, without loading it (the loaded
    backend says the same as `lm.local`)."""
    return not spec.strip().startswith("openai:")


def load_lm(spec: str = DEFAULT_MODEL, *, adapter: str | None = None, **kw: Any) -> LM:
    """Build the backend a spec string names (see the module docstring). `None` settings are
    left at the backend's default; local-only settings are dropped for endpoints and the other
    way round."""
    spec = spec.strip()
    kw = {k: v for k, v in kw.items() if v is not None}
    remote = not runs_locally(spec)
    for k in REMOTE_ONLY if not remote else LOCAL_ONLY:
        kw.pop(k, None)
    if remote:
        from ragtune.llm.openai import OpenAILM

        if adapter:
            raise ConfigError(
                "--adapter applies to local models; serve the adapter on the endpoint"
            )
        rest = spec[len("openai:") :]
        model, _, base = rest.partition("@")
        if not model:
            raise ConfigError(f"model spec {spec!r} has no model name; use openai:MODEL@BASE_URL")
        return OpenAILM(model, base or "https://api.openai.com/v1", **kw)
    if spec == "dummy":
        from ragtune.testing import DummyLM

        return DummyLM()
    if spec.startswith("onnx:"):  # onnxruntime-genai: the CPU fast path (the `onnx` extra)
        from ragtune.llm.onnx import OnnxLM

        return OnnxLM(spec[len("onnx:") :], adapter=adapter, threads=kw.get("threads"))
    from ragtune.llm.local import TransformersLM

    if spec in ("smollm2-135m", "smollm2", "default"):
        from ragtune.llm.bundled import smollm2_gguf

        return TransformersLM(smollm2_gguf(), adapter=adapter, **kw)
    if spec.startswith("gguf:"):
        spec = spec[len("gguf:") :]
    p = Path(spec).expanduser()
    if not p.exists():
        raise ConfigError(
            f"model spec {spec!r} is neither a known name, an existing path, nor openai:MODEL@URL; "
            "use 'smollm2-135m', a model directory, gguf:PATH, or openai:MODEL@BASE_URL "
            "(nothing is downloaded from a model hub)"
        )
    return TransformersLM(p, adapter=adapter, **kw)


def load_tokenizer(spec: str = DEFAULT_MODEL):
    """The tokenizer of a local model spec (for token-accurate chunking and budgets).

    Endpoints (openai:...) have no local tokenizer: the bundled SmolLM2 tokenizer stands in.
    """
    from transformers import AutoTokenizer

    from ragtune.llm.bundled import converted_gguf_dir, smollm2_gguf

    spec = spec.strip()
    if spec in ("smollm2-135m", "smollm2", "default", "dummy") or spec.startswith("openai:"):
        return AutoTokenizer.from_pretrained(converted_gguf_dir(smollm2_gguf()))
    if spec.startswith("gguf:"):
        spec = spec[len("gguf:") :]
    p = Path(spec).expanduser()
    if p.suffix == ".gguf" and p.exists():
        return AutoTokenizer.from_pretrained(converted_gguf_dir(p))
    if (p / "tokenizer.json").exists() or (p / "tokenizer_config.json").exists():
        return AutoTokenizer.from_pretrained(p)
    raise ConfigError(
        f"no tokenizer at {spec!r}; pass --tokenizer with a model directory, a .gguf file or "
        "'smollm2-135m'"
    )
