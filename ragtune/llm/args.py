"""The model arguments every job that loads a model shares (ask, serve, train, RoG).

@dataclass
class AskConfig(ModelArgs):
    question: str = ...

lm = cfg.load_lm()      # the backend, with the adapter and the local-only settings applied
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ragtune.llm.device import device_field, dtype_field


@dataclass
class ModelArgs:
    """Which model, and how to run it."""

    model: str = field(
        default="smollm2-135m",
        metadata={"help": "Model spec: smollm2-135m, a model dir, gguf:PATH, openai:MODEL@URL."},
    )
    adapter: str | None = field(
        default=None, metadata={"help": "PEFT adapter directory (local models)."}
    )
    threads: int | None = field(
        default=None, metadata={"help": "CPU threads for a local model (ignored by endpoints)."}
    )
    device: str = device_field()  # auto | cpu | cuda[:N] | mps (ragtune.llm.device.resolve)
    dtype: str = dtype_field()  # auto | fp32 | bf16 | fp16

    def load_lm(self, adapter: str | None = None, **kw: Any):
        """The backend `model` names, with `adapter` (default: this config's)."""
        from ragtune.llm.spec import load_lm

        return load_lm(
            self.model,
            adapter=adapter or self.adapter,
            threads=self.threads,
            device=self.device,
            dtype=self.dtype,
            **kw,
        )
