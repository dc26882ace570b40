"""OpenAI-compatible chat-completions backend (vLLM, llama.cpp server, Ollama, OpenAI, ...).

    lm = OpenAILM("gpt-4o-mini")                                  # key from $OPENAI_API_KEY
    lm = OpenAILM("qwen2.5-7b", "http://localhost:8000/v1")       # local server, no key needed
    [c] = lm.generate([[{"role": "user", "content": "Hi"}]], max_tokens=32)
    lm.usage.as_dict(), lm.stats                                  # tokens, retries by cause

A batch is sent as parallel requests (at most `concurrency` in flight), results in input order.
Transient failures (429, 500/502/503/504, connection errors, timeouts, malformed replies) are
retried with exponential backoff and full jitter, honouring `Retry-After`; permanent ones (400,
401, 403, 404) are raised at once with a message that says how to fix them.

`stream()` reads the endpoint's Server-Sent Events as they come (retried like a request until
the first byte of the reply, never after: the pieces already handed on cannot be taken back).
Newer OpenAI models refuse `max_tokens` ("use max_completion_tokens"), and some servers the
other way round: the first such 400 switches the key for this instance, and the request is sent
again at once.
"""

from __future__ import annotations

import email.utils
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from ragtune.errors import ContextTooLong, LLMError, RateLimited, Unreachable
from ragtune.llm.base import (
    LM,
    Completion,
    GenerationConfig,
    Messages,
    Row,
    stream_until_stop,
    truncate_at_stop,
)

__all__ = ["OpenAILM", "render_plain"]

T = TypeVar("T")
R = TypeVar("R")

RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_STOP_SENT = 4  # the OpenAI API rejects more; the rest are applied client-side
_CONTEXT_RE = re.compile(
    r"context[ _]length|maximum context|too many tokens|context[ _]window|context size"
    r"|prompt is too long|exceeds? the (?:model'?s? )?(?:maximum|max)",
    re.IGNORECASE,
)
MAX_KEYS = ("max_tokens", "max_completion_tokens")


def _swapped_key(body: dict, msg: str) -> str | None:
    """The other length key when a 400's message says the one sent is not supported (OpenAI:
    "Unsupported parameter: 'max_tokens' ... Use 'max_completion_tokens' instead.")."""
    sent = next((k for k in MAX_KEYS if k in body), None)
    if sent is None:
        return None
    other = MAX_KEYS[1 - MAX_KEYS.index(sent)]
    low = msg.lower()
    refused = re.search(
        r"unsupported|not supported|unrecognized|unknown|extra (?:fields|inputs)", low
    )
    return other if sent in low and refused else None


class _SwapKey(Exception):
    """Internal: the endpoint refused the length key; send the request again with `key`."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


def render_plain(messages: Messages) -> str:
    """Chat messages as plain text, ending with the assistant's turn ("...Assistant: ")."""
    parts = [f"{str(m.get('role', 'user')).capitalize()}: {m.get('content', '')}" for m in messages]
    return "\n\n".join([*parts, "Assistant: "])


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (it may be a number of seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _server_message(resp: httpx.Response) -> str:
    """The error message an OpenAI-style server put in its body, else the raw text."""
    try:
        data = resp.json()
    except ValueError:
        return resp.text.strip()[:500] or resp.reason_phrase
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            for key in ("message", "detail", "msg"):
                if err.get(key):
                    return str(err[key])[:500]
        elif isinstance(err, str):
            return err[:500]
        for key in ("message", "detail"):
            if data.get(key):
                return str(data[key])[:500]
    return str(data)[:500]


def _has_chat_content(data: Any) -> bool:
    try:
        return isinstance(data["choices"][0]["message"]["content"], str)
    except (KeyError, IndexError, TypeError):
        return False


def _has_choice(data: Any) -> bool:
    try:
        return isinstance(data["choices"][0], dict)
    except (KeyError, IndexError, TypeError):
        return False


class _Retry(Exception):
    """Internal: one attempt failed in a way worth retrying."""

    def __init__(self, cause: str, detail: str, retry_after: float | None = None):
        self.cause, self.detail, self.retry_after = cause, detail, retry_after
        super().__init__(detail)


class OpenAILM(LM):
    """A chat model behind an OpenAI-compatible `/v1` endpoint.

    `max_retries` is the number of *retries* after the first attempt (0 = try once). `stats`
    counts the retries made, by cause: "429", "500", "502", "503", "504", "timeout", "connect",
    "malformed".
    """

    can_score = True  # through /v1/completions with echo + logprobs, where the endpoint has it
    can_stream = True  # Server-Sent Events from the endpoint

    def __init__(
        self,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        *,
        api_key_env: str = "OPENAI_API_KEY",
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        concurrency: int = 4,
        context_window: int = 8192,
        extra_body: dict | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self._api_key = api_key if api_key is not None else (os.environ.get(api_key_env) or None)
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.concurrency = max(1, int(concurrency))
        self.context_window = int(context_window)
        self.extra_body = dict(extra_body or {})
        self.name = f"openai:{model}@{self.base_url}"
        self.stats: dict[str, int] = {
            k: 0 for k in ("429", "500", "502", "503", "504", "timeout", "connect", "malformed")
        }
        self._stats_lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        # the length key this endpoint takes, learnt from its first refusal (see the docstring)
        self.max_tokens_key = "max_tokens"

    # -- plumbing --------------------------------------------------------------------------------
    @property
    def client(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                headers = {"Content-Type": "application/json"}
                if self._api_key:
                    headers["Authorization"] = f"Bearer {self._api_key}"
                self._client = httpx.Client(
                    headers=headers,
                    timeout=httpx.Timeout(self.timeout),
                    limits=httpx.Limits(
                        max_connections=self.concurrency,
                        max_keepalive_connections=self.concurrency,
                    ),
                )
            return self._client

    def close(self) -> None:
        """Close the HTTP connection pool (a later request opens a new one)."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> OpenAILM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_client"] = None
        state["_client_lock"] = None
        state["_stats_lock"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._client_lock = threading.Lock()
        self._stats_lock = threading.Lock()

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = random.uniform(0.0, min(self.backoff_max, self.backoff_base * 2**attempt))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max))
        return delay

    def _count_retry(self, cause: str) -> None:
        with self._stats_lock:
            self.stats[cause] = self.stats.get(cause, 0) + 1

    def _map(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        """fn over items with at most `concurrency` in flight; results in input order."""
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(x) for x in items]
        pool = ThreadPoolExecutor(
            max_workers=min(self.concurrency, len(items)), thread_name_prefix="openai-lm"
        )
        futures = [pool.submit(fn, x) for x in items]
        try:
            out = [f.result() for f in futures]
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return out

    def _fatal(
        self,
        resp: httpx.Response,
        url: str,
        on_client_error: Callable[[int, str], LLMError] | None,
    ) -> LLMError:
        """The error for a non-retryable HTTP status."""
        status, msg = resp.status_code, _server_message(resp)
        if status in (401, 403):
            how = (
                f"set the environment variable {self.api_key_env} to a valid API key "
                "(or pass api_key=...)"
                if status == 401 or not self._api_key
                else f"check that the key in {self.api_key_env} may use model {self.model!r}"
            )
            return LLMError(f"{url} refused the request (HTTP {status}: {msg}); {how}.")
        if status in (400, 413, 422) and _CONTEXT_RE.search(msg):
            return ContextTooLong(
                f"the prompt does not fit {self.model!r}'s context window ({msg}); lower top-k "
                "(fewer retrieved chunks) or max_tokens, or use a model with a larger window."
            )
        if on_client_error is not None and 400 <= status < 500:
            return on_client_error(status, msg)
        if status == 404:
            return LLMError(
                f"{url} answered 404 for model {self.model!r} ({msg}); check the model name "
                "and that base_url ends in /v1 (e.g. http://localhost:8000/v1)."
            )
        if 400 <= status < 500:
            return LLMError(
                f"{url} rejected the request (HTTP {status}: {msg}); fix the request settings "
                "named in that message (e.g. temperature, max_tokens, stop) or extra_body."
            )
        return LLMError(
            f"{url} failed with HTTP {status} ({msg}); check the server's logs, or retry later."
        )

    def _post(
        self,
        path: str,
        body: dict,
        valid: Callable[[Any], bool],
        on_client_error: Callable[[int, str], LLMError] | None = None,
    ) -> dict:
        """POST JSON with retries; returns the parsed reply, or raises the right LLMError."""
        url = f"{self.base_url}{path}"
        attempts = self.max_retries + 1
        last: _Retry | None = None
        swapped = False
        attempt = 0
        while attempt < attempts:
            try:
                return self._attempt(url, body, valid, on_client_error)
            except _Retry as r:
                last = r
            except _SwapKey as s:
                if swapped:  # refused both keys: say so instead of going round
                    raise LLMError(
                        f"{url} refused both max_tokens and max_completion_tokens; set the "
                        "right one through extra_body"
                    ) from None
                swapped, body = True, self._with_key(body, s.key)
                continue  # not a retry: the same request, in the words this endpoint takes
            if attempt + 1 < attempts:
                self._count_retry(last.cause)
                time.sleep(self._backoff(attempt, last.retry_after))
            attempt += 1
        assert last is not None
        raise self._exhausted(url, last, attempts)

    def _with_key(self, body: dict, key: str) -> dict:
        """`body` with its length under `key`, and `key` remembered for later requests."""
        self.max_tokens_key = key
        body = dict(body)
        n = next((body.pop(k) for k in MAX_KEYS if k in body), None)
        body[key] = n
        return body

    def _exhausted(self, url: str, last: _Retry, attempts: int) -> LLMError:
        """The error once every attempt failed with `last`."""
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if last.cause == "429":
            return RateLimited(
                f"{url} kept answering 429 (rate limited) after {tries}; lower concurrency "
                f"(now {self.concurrency}), or raise max_retries/backoff_max, or wait and rerun.",
                retry_after=last.retry_after,
            )
        if last.cause in ("connect", "timeout"):
            what = (
                f"timed out after {self.timeout:g}s"
                if last.cause == "timeout"
                else "could not be reached"
            )
            hint = "; if it is just slow, raise timeout=" if last.cause == "timeout" else ""
            return Unreachable(
                f"{url} {what} ({last.detail}) after {tries}; check the server is running and "
                f"that --base-url / base_url is right (e.g. http://localhost:8000/v1){hint}."
            )
        if last.cause == "malformed":
            return LLMError(
                f"{url} sent a malformed reply after {tries} ({last.detail}); check base_url "
                "points at an OpenAI-compatible endpoint ending in /v1."
            )
        return LLMError(
            f"{url} kept failing with HTTP {last.cause} after {tries} ({last.detail}); the "
            "server may be overloaded or crashing: check its logs, or raise max_retries."
        )

    def _attempt(
        self,
        url: str,
        body: dict,
        valid: Callable[[Any], bool],
        on_client_error: Callable[[int, str], LLMError] | None,
    ) -> dict:
        try:
            resp = self.client.post(url, json=body)
        except httpx.TimeoutException as e:
            raise _Retry("timeout", f"{type(e).__name__}: {e}") from e
        except httpx.TransportError as e:
            raise _Retry("connect", f"{type(e).__name__}: {e}") from e
        status = resp.status_code
        if status in RETRY_STATUSES:
            ra = (
                _parse_retry_after(resp.headers.get("Retry-After"))
                if status in (429, 503)
                else None
            )
            raise _Retry(str(status), f"HTTP {status}: {_server_message(resp)}", ra)
        if not 200 <= status < 300:
            if status in (400, 422) and (key := _swapped_key(body, _server_message(resp))):
                raise _SwapKey(key)
            raise self._fatal(resp, url, on_client_error)
        try:
            data = resp.json()
        except ValueError:
            raise _Retry("malformed", f"not JSON: {resp.text[:120]!r}") from None
        if not valid(data):
            raise _Retry("malformed", f"unexpected JSON: {str(data)[:120]}")
        return data

    # -- LM API ----------------------------------------------------------------------------------
    def _generate(self, batch: list[Messages], cfg: GenerationConfig) -> list[Completion]:
        return self._map(lambda messages: self._one(messages, cfg), batch)

    def _chat_body(self, messages: Messages, cfg: GenerationConfig) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            self.max_tokens_key: cfg.max_tokens,
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
        }
        if cfg.stop:
            body["stop"] = cfg.stop[:MAX_STOP_SENT]
        if cfg.seed is not None:
            body["seed"] = cfg.seed
        body.update(self.extra_body)
        return body

    def _one(self, messages: Messages, cfg: GenerationConfig) -> Completion:
        body = self._chat_body(messages, cfg)
        data = self._post("/chat/completions", body, _has_chat_content)
        choice = data["choices"][0]
        content = choice["message"]["content"]
        text, cut = truncate_at_stop(content, cfg.stop)
        finish = "length" if choice.get("finish_reason") == "length" and not cut else "stop"
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        pt, ct = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not isinstance(pt, int):
            pt = self.count_tokens("\n".join(str(m.get("content", "")) for m in messages))
        if not isinstance(ct, int):
            ct = self.count_tokens(content) if content else 0
        return Completion(text=text, prompt_tokens=pt, completion_tokens=ct, finish_reason=finish)

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
        """Yield the reply's pieces as the endpoint sends them (`stream: true`, SSE).

        Failures before the first byte of the reply are retried as for `generate`; a stream
        that breaks afterwards raises LLMError (what was yielded cannot be taken back). Closing
        the generator early closes the connection, which stops the endpoint generating.
        """
        cfg = GenerationConfig(max_tokens, temperature, top_p, list(stop or []), seed)
        body = self._chat_body(messages, cfg)
        body.update(stream=True, stream_options={"include_usage": True})
        url = f"{self.base_url}/chat/completions"
        parts: list[str] = []
        usage: dict = {}
        for piece in stream_until_stop(self._events(url, body, usage), cfg.stop):
            parts.append(piece)
            yield piece
        text = "".join(parts)
        pt, ct = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not isinstance(pt, int):
            pt = self.count_tokens("\n".join(str(m.get("content", "")) for m in messages))
        if not isinstance(ct, int):
            ct = self.count_tokens(text) if text else 0
        self.usage.add(Completion(text, pt, ct))

    def _events(self, url: str, body: dict, usage: dict) -> Iterator[str]:
        """The content pieces of one streamed chat completion; `usage` is filled in at the end."""
        attempts = self.max_retries + 1
        attempt, swapped, last = 0, False, None
        while attempt < attempts:
            try:
                with self.client.stream("POST", url, json=body) as resp:
                    self._check_stream_status(resp, url, body)
                    lines = resp.iter_lines()
                    try:
                        first = next(lines, None)
                    except (httpx.TimeoutException, httpx.TransportError) as e:
                        raise _Retry("connect", f"{type(e).__name__}: {e}") from e
                    if first is None:
                        raise _Retry("malformed", "the stream ended before any event")
                    # from here on, nothing is retried: pieces may have been handed on
                    yield from self._read_events(first, lines, url, usage)
                    return
            except httpx.TimeoutException as e:
                last = _Retry("timeout", f"{type(e).__name__}: {e}")
            except httpx.TransportError as e:
                last = _Retry("connect", f"{type(e).__name__}: {e}")
            except _Retry as r:
                last = r
            except _SwapKey as sk:
                if swapped:
                    raise LLMError(
                        f"{url} refused both max_tokens and max_completion_tokens; set the "
                        "right one through extra_body"
                    ) from None
                swapped, body = True, self._with_key(body, sk.key)
                continue
            if attempt + 1 < attempts:
                self._count_retry(last.cause)
                time.sleep(self._backoff(attempt, last.retry_after))
            attempt += 1
        assert last is not None
        raise self._exhausted(url, last, attempts)

    def _check_stream_status(self, resp: httpx.Response, url: str, body: dict) -> None:
        status = resp.status_code
        if 200 <= status < 300:
            return
        resp.read()  # the error body, for its message
        if status in RETRY_STATUSES:
            ra = (
                _parse_retry_after(resp.headers.get("Retry-After"))
                if status in (429, 503)
                else None
            )
            raise _Retry(str(status), f"HTTP {status}: {_server_message(resp)}", ra)
        if status in (400, 422) and (key := _swapped_key(body, _server_message(resp))):
            raise _SwapKey(key)
        raise self._fatal(resp, url, None)

    def _read_events(self, first: str, lines: Iterator[str], url: str, usage: dict):
        import itertools
        import json

        n = 0
        try:
            for line in itertools.chain([first], lines):
                if not line.startswith("data:"):
                    continue  # comments (": ping"), event names, blank separators
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except ValueError:
                    msg = f"{url} sent a stream event that is not JSON: {data[:120]!r}"
                    raise LLMError(msg) from None
                if isinstance(event.get("error"), dict | str):
                    err = event["error"]
                    msg = err.get("message", err) if isinstance(err, dict) else err
                    raise LLMError(f"{url} failed mid-stream: {msg}")
                if isinstance(event.get("usage"), dict):
                    usage.update(event["usage"])
                for choice in event.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        n += 1
                        yield piece
        except (httpx.TimeoutException, httpx.TransportError) as e:
            raise LLMError(
                f"{url} broke off the stream after {n} piece{'s' if n != 1 else ''} "
                f"({type(e).__name__}: {e}); not retried, as the answer had begun"
            ) from e
        # the connection closed without [DONE]: the reply is cut short
        raise LLMError(
            f"{url} closed the stream after {n} piece{'s' if n != 1 else ''} without [DONE]; "
            "the answer is incomplete (check the server's logs)"
        )

    def run_rows(
        self, rows: list[Row], more: Callable[[int], list[Row]] | None = None, max_batch: int = 8
    ) -> None:
        """A server's batch: up to `concurrency` rows in flight at once, each its own request
        (streamed when the row streams); rows from `more` start as places free up."""
        queue = list(rows)
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="openai-rows")

        def one(row: Row) -> None:
            try:
                row.done(self._run_row(row))
            except Exception as e:
                row.done(e)

        running: set = set()
        try:
            while True:
                if more is not None and len(queue) + len(running) < max_batch:
                    queue.extend(more(max_batch - len(queue) - len(running)))
                while queue and len(running) < self.concurrency:
                    running.add(pool.submit(one, queue.pop(0)))
                if not running:
                    if queue:
                        continue
                    return
                _, running = wait(running, timeout=0.05, return_when=FIRST_COMPLETED)
        finally:
            pool.shutdown(wait=True)

    def score(self, prompt: Messages, continuations: list[str]) -> list[float]:
        """Sum of log-probabilities of each continuation after `prompt` (best-effort).

        Uses the legacy `/completions` endpoint with echo + logprobs and max_tokens 0, on the chat
        rendered as plain text (see `render_plain`), so the numbers are comparable between
        continuations of one prompt, not with a chat template's.
        """
        head = render_plain(prompt)
        return self._map(lambda c: self._score_one(head, c), list(continuations))

    def _no_scoring(self, url: str, why: str) -> LLMError:
        return LLMError(
            f"{url} does not support echo+logprobs scoring ({why}); use a local model for "
            "scoring (e.g. 'smollm2-135m' or a model directory) instead of this endpoint."
        )

    def _score_one(self, head: str, continuation: str) -> float:
        if not continuation:
            return 0.0
        url = f"{self.base_url}/completions"
        text = head + continuation
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": text,
            "echo": True,
            "logprobs": 1,
            "max_tokens": 0,
            "temperature": 0.0,
        }
        body.update(self.extra_body)
        data = self._post(
            "/completions",
            body,
            _has_choice,
            on_client_error=lambda status, msg: self._no_scoring(url, f"HTTP {status}: {msg}"),
        )
        lp = data["choices"][0].get("logprobs")
        try:
            tokens = list(lp["tokens"])
            logprobs = list(lp["token_logprobs"])
            offsets = [int(o) for o in lp["text_offset"]]
        except (KeyError, TypeError, ValueError):
            raise self._no_scoring(
                url, "the reply has no tokens/token_logprobs/text_offset"
            ) from None
        if not (len(tokens) == len(logprobs) == len(offsets)) or not tokens:
            raise self._no_scoring(url, "the reply's logprobs are empty or inconsistent")
        start, end = len(head), len(text)
        total = 0.0
        for i, (tok, lpv, off) in enumerate(zip(tokens, logprobs, offsets, strict=True)):
            tok_end = offsets[i + 1] if i + 1 < len(offsets) else off + len(tok)
            # Every token overlapping the continuation counts (one may straddle the boundary,
            # e.g. " Paris" when the head ends in a space); generated tokens (off >= end) do not.
            if tok_end > start and off < end and lpv is not None:
                total += float(lpv)
        return total
