"""The one LM interface every backend implements.

A backend subclasses `LM` and implements `_generate` (one method). `score` (log-probabilities of
given continuations) is optional: backends that can, override it.

    lm = load_lm("smollm2-135m")
    [c] = lm.generate([[{"role": "user", "content": "Hi"}]], max_tokens=16)
    c.text, c.prompt_tokens, c.completion_tokens
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

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
class Row:
    """One request of a batched generation (`LM.run_rows`): its own settings, its own stream.

    `emit(piece)` receives the reply's text as it is generated (None: no streaming); when it
    raises, or `gone()` answers True (the client left), the row is dropped from the batch.
    `done(result)` is called exactly once, with the Completion or the exception that ended it.
    """

    messages: Messages
    cfg: GenerationConfig
    done: Callable[[Any], None]
    emit: Callable[[str], None] | None = None
    gone: Callable[[], bool] | None = None


class RowDropped(Exception):
    """A row left its batch before it finished (its client disconnected)."""


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
    # Declared capabilities: callers ask these, never the spec string or the class.
    local: bool = False  # runs in this process (threads, devices and adapters apply)
    can_score: bool = False  # `score` gives log-probabilities of continuations
    can_stream: bool = False  # `stream` yields pieces as they are generated
    can_prefill: bool = False  # a trailing assistant message is continued, not answered
    # next-token logits are in reach (`model`, `tokenizer`): beam search constrained to a trie
    # (RoG's planner and grounded answers) runs on it
    can_constrain: bool = False
    # `run_rows` generates many requests in one batch (own settings and stream per row, rows
    # joining and leaving between tokens); the default runs them one after another
    can_batch: bool = False
    # The prompt format a tuned model was trained on (ragtune.rag.formats.PromptFormat); None:
    # an untuned model, asked in the `rag` format.
    prompt_format: Any = None

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

    def run_rows(
        self,
        rows: list[Row],
        more: Callable[[int], list[Row]] | None = None,
        max_batch: int = 8,
    ) -> None:
        """Generate every row, and the rows `more(n)` hands over (up to `n` free places) while
        others run; each row's `done` is called as it ends. This default runs them one at a
        time (streaming rows through `stream`); backends with `can_batch` batch them."""
        queue = list(rows)
        # refill a whole batch at a time: the server retrieves for the rows it hands over at once
        while queue or (more is not None and (queue := more(max_batch))):
            row = queue.pop(0)
            try:
                row.done(self._run_row(row))
            except Exception as e:  # one row's failure (a prompt too long) is that row's own
                row.done(e)

    def _run_row(self, row: Row) -> Completion:
        c = row.cfg
        kw = dict(
            max_tokens=c.max_tokens,
            temperature=c.temperature,
            top_p=c.top_p,
            stop=c.stop,
            seed=c.seed,
        )
        if row.gone is not None and row.gone():
            raise RowDropped("the client disconnected before its turn")
        if row.emit is None:
            return self.generate([row.messages], **kw)[0]
        parts: list[str] = []
        pieces = self.stream(row.messages, **kw)
        try:
            for piece in pieces:
                if row.gone is not None and row.gone():
                    raise RowDropped("the client disconnected mid-stream")
                parts.append(piece)
                row.emit(piece)
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # a local model stops generating here
        text = "".join(parts).strip()
        n = self.count_tokens(text) if text else 0
        prompt = " ".join(str(m.get("content", "")) for m in row.messages)
        finish = "length" if n >= c.max_tokens else "stop"
        return Completion(text, self.count_tokens(prompt), n, finish)

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

    def stream(
        self,
        messages: Messages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield the reply to one conversation in pieces as they are generated.

        Backends that cannot stream yield the whole reply once (this default). Joined, the pieces
        are the text `generate` would return; usage is counted as for `generate`.
        """
        yield self.generate(
            [messages],
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            stop=stop,
            seed=seed,
        )[0].text


def stream_until_stop(pieces: Iterable[str], stop: list[str] | None) -> Iterator[str]:
    """Pass streamed text through, ending just before the first stop string.

    A stop string may arrive split over several pieces: text that could be the start of one is
    held back until the next piece decides.
    """
    stop = [s for s in stop or [] if s]
    if not stop:
        yield from pieces
        return
    held = ""
    for piece in pieces:
        held += piece
        cut = min((i for s in stop if (i := held.find(s)) >= 0), default=-1)
        if cut >= 0:
            if cut:
                yield held[:cut]
            return
        keep = max(
            (
                k
                for s in stop
                for k in range(min(len(s) - 1, len(held)), 0, -1)
                if held.endswith(s[:k])
            ),
            default=0,
        )
        if len(held) > keep:
            yield held[: len(held) - keep]
            held = held[len(held) - keep :]
    if held:
        yield held
