"""What keeps one server healthy under many clients: a key, a body-size cap, a bounded queue.

    settings = Settings(max_concurrency=1, max_queue=16)    # api_key defaults to $RAGTUNE_API_KEY
    gate = GenerationGate(settings.max_concurrency, settings.max_queue)
    ticket = gate.reserve()            # raises Busy (-> 503 + Retry-After) when the queue is full
    result = await ticket.run(fn, *args, gone=request.is_disconnected)
    # waits for a slot, runs fn in a worker thread; raises ClientGone if the client left meanwhile

`LimitsMiddleware` (pure ASGI, outermost) answers 401 before reading a body, and 413 from the
Content-Length header or, for chunked uploads, as soon as the streamed body passes the limit.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse

from ragtune.errors import ConfigError

API_KEY_ENV = "RAGTUNE_API_KEY"
OPEN_PATHS = ("/", "/healthz", "/favicon.ico")  # and everything under /static/


def _env_key() -> str | None:
    return os.environ.get(API_KEY_ENV) or None


@dataclass
class Settings:
    """Server limits. The API key comes from $RAGTUNE_API_KEY (never a flag: flags show in ps)."""

    model_id: str = "ragtune"
    api_key: str | None = field(default_factory=_env_key, repr=False)
    max_body_bytes: int = 1_000_000
    max_prompt_tokens: int = 1024
    max_completion_tokens: int = 1024
    max_concurrency: int = 1
    max_queue: int = 16
    # RAG requests generated together in one slot (1: one at a time); the first request of an
    # idle server waits at most batch_wait_ms for others (ragtune.server.batching)
    max_batch: int = 1
    batch_wait_ms: float = 10.0
    rewrite: str | None = None  # follow-up -> search query: rules | model | off (None: the RAG's)
    max_retrievals: int = 4  # /v1/retrieve calls at once (each may run an embedder pass)
    warmup: bool = True  # load the retrievers at startup, not on the first request

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_prompt_tokens", "max_completion_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1 (got {self.max_concurrency})")
        if self.max_batch < 1:
            raise ConfigError(f"max_batch must be at least 1 (got {self.max_batch})")
        if self.batch_wait_ms < 0:
            raise ConfigError(f"batch_wait_ms must be 0 or more (got {self.batch_wait_ms})")
        if self.rewrite not in (None, "rules", "model", "off"):
            raise ConfigError(f"rewrite must be rules, model or off (got {self.rewrite!r})")
        if self.max_retrievals < 1:
            raise ConfigError(f"max_retrievals must be at least 1 (got {self.max_retrievals})")
        if self.max_queue < 0:
            raise ConfigError(f"max_queue must be 0 or more (got {self.max_queue})")


def error_body(message: str, type_: str = "invalid_request_error", code: str | None = None):
    """OpenAI's error shape."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def error_response(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(message, type_, code), status_code=status, headers=headers)


# -- concurrency ------------------------------------------------------------------------------


class Busy(Exception):
    """Every generation slot is taken and the queue is full."""

    def __init__(self, retry_after: int, active: int, queued: int) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"the server is busy ({active} generating, {queued} queued, the queue is full); "
            f"retry in {retry_after} s"
        )


class ClientGone(Exception):
    """The client hung up: nothing is generated (or the rest is not) for it."""


class GenerationGate:
    """At most `max_active` generations at once (each in a worker thread), `max_queue` waiting.

    Counters are touched only on the event loop's thread, so they need no lock. A slot is held
    until its worker thread finishes, even when the client hangs up first: a thread cannot be
    killed, so letting another generation start would oversubscribe the CPU.
    """

    def __init__(self, max_active: int, max_queue: int, max_batch: int = 1) -> None:
        # a slot runs up to max_batch requests at once (batched generation)
        self.max_active, self.max_queue, self.max_batch = max_active, max_queue, max_batch
        self.pending = 0  # waiting + running
        self.running = 0
        self._sem: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool = ThreadPoolExecutor(max_active, thread_name_prefix="ragtune-generate")
        self._seconds: deque[float] = deque(maxlen=32)  # recent generation times

    @property
    def queued(self) -> int:
        return self.pending - self.running

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._loop is not loop:
            self._sem, self._loop = asyncio.Semaphore(self.max_active), loop
        return self._sem

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: mean generation time x queue depth / slots."""
        mean = sum(self._seconds) / len(self._seconds) if self._seconds else 1.0
        waves = (self.queued + 1) / (self.max_active * self.max_batch)
        return max(1, min(120, math.ceil(mean * waves)))

    def reserve(self) -> Ticket:
        if self.pending >= self.max_active * self.max_batch + self.max_queue:
            raise Busy(self.retry_after(), self.running, self.queued)
        self.pending += 1
        return Ticket(self)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Ticket:
    """One reserved place in the queue; `run` it exactly once (or `cancel` it)."""

    def __init__(self, gate: GenerationGate) -> None:
        self.gate = gate
        self._done = False

    def cancel(self) -> None:
        if not self._done:
            self._done = True
            self.gate.pending -= 1

    async def run(
        self,
        fn: Callable[..., Any],
        *args: Any,
        gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> Any:
        """Wait for a slot, then run `fn(*args)` in a worker thread. `gone`: asked once the slot
        is ours; when it answers True (the client hung up while queued) the slot is given back
        at once and `ClientGone` raised, so a queue of abandoned requests costs no generation."""
        gate = self.gate
        sem = gate._semaphore()
        try:
            await sem.acquire()
        except BaseException:  # cancelled while queued: give the place back
            self.cancel()
            raise
        try:
            left = gone is not None and await gone()
        except BaseException:
            sem.release()
            self.cancel()
            raise
        if left:
            sem.release()
            self.cancel()
            raise ClientGone("the client disconnected while its request was queued")
        self._done = True
        gate.running += 1
        t0 = time.perf_counter()
        fut = asyncio.get_running_loop().run_in_executor(gate._pool, fn, *args)

        def release(f: asyncio.Future) -> None:
            gate.running -= 1
            gate.pending -= 1
            sem.release()
            gate._seconds.append(time.perf_counter() - t0)
            if not f.cancelled():
                f.exception()  # mark it retrieved: the awaiting request may be gone

        fut.add_done_callback(release)
        return await asyncio.shield(fut)


# -- auth and body size -----------------------------------------------------------------------


def is_open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith("/static/")


def key_matches(header: str | None, key: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), key.encode())


class LimitsMiddleware:
    """Pure ASGI: auth, then the body-size cap (the body is read here, bounded, and replayed)."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = self.settings.api_key
        if key and not is_open_path(scope["path"]):
            if not key_matches(headers.get("authorization"), key):
                given = "a wrong" if headers.get("authorization") else "no"
                resp = error_response(
                    401,
                    f"this server needs an API key and the request carried {given} key; send "
                    "`Authorization: Bearer <key>` with the key set in the server's "
                    f"${API_KEY_ENV}",
                    "invalid_request_error",
                    "invalid_api_key",
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await resp(scope, receive, send)
                return
        limit = self.settings.max_body_bytes
        too_big = error_response(
            413,
            f"request body is larger than this server's limit of {limit:,} bytes; send a "
            "shorter request, or start the server with a larger --max-body-bytes",
            "invalid_request_error",
            "request_too_large",
        )
        length = headers.get("content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                await error_response(400, "Content-Length is not a number")(scope, receive, send)
                return
            if n > limit:
                await too_big(scope, receive, send)
                return
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before sending its body
            body = message.get("body", b"")
            total += len(body)
            if total > limit:
                await too_big(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # afterwards: http.disconnect, for streaming responses

        await self.app(scope, replay, send)
