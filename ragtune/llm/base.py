"""The one LM interface every backend implements.

A backend subclasses `LM` and implements `_generate` (one method). `score` (log-probabilities of
given continuations) is optional: backends that can, override it.

    lm = load_lm("smollm2-135m")
    [c] = lm.generate([[{"role": "user", "content": "Hi"}]], max_tokens=16)
    c.text, c.prompt_tokens, c.completion_tokens
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ragtune.errors import LLMError

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}
Messages = list[Message]


@dataclass
class GenerationConfig:
    max_tokens: int = 256
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"  # "stop" | "length"


@dataclass
class Usage:
    """Running token/requests totals for one backend instance (thread-safe)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, c: Completion) -> None:
        with self._lock:
            self.prompt_tokens += c.prompt_tokens
            self.completion_tokens += c.completion_tokens
            self.requests += 1

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "requests": self.requests,
        }


def truncate_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """Cut `text` at the earliest stop string; returns (text, was_cut)."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class LM:
    """Base class. Subclasses implement `_generate`; they may override `score` and `count_tokens`."""

    name: str = "lm"
    context_window: int = 8192

    def __init__(self) -> None:
        self.usage = Usage()

    # -- the one method a backend must implement -------------------------------------------
    def _generate(self, batch: list[Messages], cfg: GenerationConfig) -> list[Completion]:
        raise NotImplementedError

    # -- public API ------------------------------------------------------------------------
    def generate(
        self,
        batch: list[Messages],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> list[Completion]:
        """Generate one completion per conversation in `batch` (a list of message lists).

        Local backends treat a trailing assistant message as a prefill to continue from.
        """
        if batch and isinstance(batch[0], dict):
            raise LLMError(
                "generate() takes a *batch* of conversations; wrap a single one: "
                "lm.generate([messages])"
            )
        cfg = GenerationConfig(max_tokens, temperature, top_p, list(stop or []), seed)
        out = self._generate(batch, cfg)
        for c in out:
            self.usage.add(c)
        return out

    def complete(self, prompt: str, **kw) -> str:
        """Convenience: one user message in, the reply text out."""
        return self.generate([[{"role": "user", "content": prompt}]], **kw)[0].text

    def score(self, prompt: Messages, continuations: list[str]) -> list[float]:
        """Sum of log-probabilities of each continuation as the assistant's reply to `prompt`."""
        raise LLMError(
            f"{type(self).__name__} cannot score continuations; use a local model "
            "(e.g. 'smollm2-135m' or a model directory) or an endpoint with logprobs."
        )

    def count_tokens(self, text: str) -> int:
        """Token count of `text`; backends without a tokenizer estimate ~4 characters a token."""
        return max(1, (len(text) + 3) // 4)
