"""Request bodies of the HTTP API (pydantic). Responses are plain dicts in OpenAI's shapes.

Unknown fields are accepted and ignored, as OpenAI clients expect of a compatible server (they
send `n`, `logit_bias`, `user`, ... freely).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# OpenAI's limit on stop sequences; each distinct list costs the local model a vocabulary scan
# (and a cache entry), so their count and length are bounded too
MAX_STOPS = 4
MAX_STOP_CHARS = 64


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    # a string, or OpenAI's list of parts ([{"type": "text", "text": "..."}]); None for tool calls
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "\n".join(
            str(p.get("text", "")) for p in self.content if p.get("type", "text") == "text"
        )


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat request, plus ragtune's `mode`, `k` and `entities`."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    n: int | None = Field(default=None, ge=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    # ragtune's own fields (OpenAI clients send them via `extra_body`)
    mode: Literal["rag", "rog"] = "rag"
    k: int | None = Field(default=None, ge=1, le=50)
    entities: list[str] | None = None

    @field_validator("stop")
    @classmethod
    def _bounded_stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        stops = [v] if isinstance(v, str) else v or []
        if len(stops) > MAX_STOPS:
            raise ValueError(
                f"at most {MAX_STOPS} stop sequences are allowed (got {len(stops)}); send a "
                f"string or a list of up to {MAX_STOPS} strings"
            )
        for i, st in enumerate(stops):
            if len(st) > MAX_STOP_CHARS:
                which = "the stop string" if isinstance(v, str) else f"stop[{i}]"
                raise ValueError(
                    f"each stop sequence may be at most {MAX_STOP_CHARS} characters; {which} "
                    f"has {len(st):,}"
                )
        return v

    def question(self) -> str:
        """The last user message's text: what gets answered."""
        for m in reversed(self.messages):
            if m.role == "user":
                return m.text().strip()
        return ""

    def history(self) -> list[dict[str, str]]:
        """The conversation before the question: user and assistant turns with text, in order
        (system messages are `system()`; tool messages are left out)."""
        last = max((i for i, m in enumerate(self.messages) if m.role == "user"), default=0)
        return [
            {"role": m.role, "content": m.text()}
            for m in self.messages[:last]
            if m.role in ("user", "assistant") and m.text().strip()
        ]

    def system(self) -> str | None:
        """The client's system (or developer) messages joined, None when there are none."""
        parts = [m.text().strip() for m in self.messages if m.role in ("system", "developer")]
        return "\n\n".join(p for p in parts if p) or None

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    query: str = Field(min_length=1)
    k: int = Field(default=5, ge=1, le=100)
    method: Literal["bm25", "dense", "hybrid"] | None = None


class RogRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    question: str = Field(min_length=1)
    entities: list[str] | None = None
