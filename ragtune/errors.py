"""The error tree. Every message says what went wrong *and* how to fix it.

RagtuneError
├── ConfigError          bad settings, unknown keys, wrong index version
│   └── MissingExtra     an optional dependency is not installed (names the extra)
├── DataError            unreadable / malformed input (names the file, line or field)
└── LLMError             anything a language-model backend reports
    ├── RateLimited      429 after all retries
    ├── ContextTooLong   the prompt does not fit the model's window
    └── Unreachable      connection refused, DNS, timeouts after all retries
"""

from __future__ import annotations


class RagtuneError(Exception):
    """Base class of every error ragtune raises on purpose."""


class ConfigError(RagtuneError):
    """A setting, config file, model spec or index directory is wrong."""


class MissingExtra(ConfigError):
    """An optional dependency is missing; `extra` is the `ragtune[...]` extra that installs it."""

    def __init__(self, message: str, extra: str):
        self.extra = extra
        super().__init__(message)


class DataError(RagtuneError):
    """Input data is unreadable or malformed; the message names file/line/field."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)


class LLMError(RagtuneError):
    """A language-model backend failed."""


class RateLimited(LLMError):
    """The endpoint kept answering 429 after every retry."""

    def __init__(self, message: str, retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(message)


class ContextTooLong(LLMError):
    """The prompt plus max_tokens exceeds the model's context window."""


class Unreachable(LLMError):
    """The endpoint could not be reached (connection error or timeout) after every retry."""
