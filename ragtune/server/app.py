"""The HTTP server: an OpenAI-compatible chat API over a RAG (and optionally RoG) pipeline.

    from ragtune import RAG
    from ragtune.server import Settings, create_app
    app = create_app(rag=RAG("out/index", "smollm2-135m"), settings=Settings(max_concurrency=2))

then `uvicorn.run(app, host="127.0.0.1", port=8000)`, which is what `ragtune serve` does.

Routes (docs/server.md has examples):
    GET  /                      the web page (static files from the package; works offline)
    GET  /healthz               liveness, modes, queue depth (open even when a key is required)
    GET  /v1/models             the one served model
    POST /v1/chat/completions   OpenAI chat; `stream: true` for SSE; extra field `ragtune`
    POST /v1/retrieve           {"query", "k"} -> ranked chunks
    POST /v1/rog                {"question", "entities"?} -> answers + reasoning paths

Generation runs in worker threads behind `GenerationGate`, so the event loop keeps answering
/healthz and queueing requests while a model is busy. Every error is OpenAI's
{"error": {"message", "type", "code"}}; unexpected exceptions are logged here, never returned.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragtune.errors import (
    ConfigError,
    ContextTooLong,
    DataError,
    LLMError,
    RagtuneError,
    RateLimited,
    Unreachable,
)
from ragtune.llm.base import Completion
from ragtune.server.batching import Batcher, BatchRequest
from ragtune.server.limits import (
    Busy,
    ClientGone,
    GenerationGate,
    LimitsMiddleware,
    Settings,
    error_response,
)
from ragtune.server.schemas import ChatCompletionRequest, RetrieveRequest, RogRequest

log = logging.getLogger("ragtune.server")
STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_END = object()


class _ClientError(Exception):
    """A request the server refuses with a 4xx before generating."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        self.status, self.code = status, code
        super().__init__(message)


def create_app(rag: Any, rog: Any = None, settings: Settings | None = None) -> FastAPI:
    """The ASGI app. `rag`: a `ragtune.RAG`; `rog`: a `ragtune.rog.pipeline.RoG` or None."""
    settings = settings or Settings()
    gate = GenerationGate(settings.max_concurrency, settings.max_queue, settings.max_batch)
    if settings.rewrite is not None:
        rag.rewrite = settings.rewrite
    # batched generation: RAG requests share a slot (RoG requests still take one each)
    batcher = (
        Batcher(gate, rag, settings.max_batch, settings.batch_wait_ms / 1000)
        if settings.max_batch > 1
        else None
    )
    # retrieval runs outside the gate (no model), but a dense query is an embedder pass: bound
    # them apart from anyio's default pool of 40 threads
    retrievals = anyio.CapacityLimiter(settings.max_retrievals)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.warmup:
            await anyio.to_thread.run_sync(_warm, rag)
        yield
        gate.shutdown()

    app = FastAPI(
        title="ragtune",
        summary="OpenAI-compatible answers grounded in your documents, with their sources.",
        docs_url=None,  # the interactive docs load scripts from a CDN: not offline, not here
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.rag, app.state.rog, app.state.settings, app.state.gate = rag, rog, settings, gate
    modes = ["rag"] + (["rog"] if rog is not None else [])

    # -- errors -----------------------------------------------------------------------------

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        msg = str(exc.detail)
        if exc.status_code == 404:
            msg = f"no route {request.method} {request.url.path}; see GET /v1/models, /healthz"
        elif exc.status_code == 405:
            msg = f"{request.method} is not allowed on {request.url.path}"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return error_response(exc.status_code, msg, "invalid_request_error", code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, exc: RequestValidationError):
        return error_response(400, _validation_message(exc.errors()), code="invalid_request")

    @app.exception_handler(Exception)
    async def unexpected(request, exc: Exception):  # a safety net: endpoints catch their own
        return _internal_error(exc)

    # -- helpers ----------------------------------------------------------------------------

    lm = rag.lm

    async def check_prompt(text: str) -> None:
        limit = settings.max_prompt_tokens
        if len(text.encode()) <= limit:  # no tokenizer makes more tokens than bytes
            return
        n = await anyio.to_thread.run_sync(_count_tokens, lm, text)
        if n > limit:
            raise _ClientError(
                400,
                f"the prompt is {n:,} tokens; this server accepts at most {limit:,}. Send a "
                "shorter question, or start the server with a larger --max-prompt-tokens",
                "context_length_exceeded",
            )

    # -- routes -----------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz")
    async def healthz():
        return {
            "status": "ok",
            "model": settings.model_id,
            "modes": modes,
            "auth": bool(settings.api_key),
            "generating": gate.running,
            "queued": gate.queued,
            "limits": {
                "max_concurrency": settings.max_concurrency,
                "max_queue": settings.max_queue,
                "max_batch": settings.max_batch,
                "batch_wait_ms": settings.batch_wait_ms,
                "max_body_bytes": settings.max_body_bytes,
                "max_prompt_tokens": settings.max_prompt_tokens,
                "max_completion_tokens": settings.max_completion_tokens,
            },
        }

    def model_card() -> dict:
        return {
            "id": settings.model_id,
            "object": "model",
            "created": int(app.state.started),
            "owned_by": "ragtune",
            "ragtune": {"modes": modes, "rog": rog is not None},
        }

    app.state.started = time.time()

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str):
        if model_id != settings.model_id:
            return error_response(
                404,
                f"model {model_id!r} is not served here; this server serves {settings.model_id!r}",
                code="model_not_found",
            )
        return model_card()

    @app.post("/v1/retrieve")
    async def retrieve(req: RetrieveRequest):
        try:
            await check_prompt(req.query)
            method = req.method or rag.method
            hits = await anyio.to_thread.run_sync(
                lambda: rag.index.hits(req.query, req.k, method), limiter=retrievals
            )
        except Exception as e:
            return _error_for(e)
        data = [
            {
                "rank": i,
                "chunk_id": c.id,
                "doc_id": c.doc_id,
                "source": str(c.metadata.get("source", "")),
                "title": c.metadata.get("title"),
                "page": c.metadata.get("page"),
                "score": float(s),
                "text": c.text,
            }
            for i, (c, s) in enumerate(hits, 1)
        ]
        return {"object": "list", "model": settings.model_id, "query": req.query, "data": data}

    @app.post("/v1/rog")
    async def rog_route(req: RogRequest, request: Request):
        try:
            if rog is None:
                raise _no_kg()
            await check_prompt(req.question + " " + " ".join(req.entities or []))
            ticket = gate.reserve()  # raises Busy when the queue is full
            ans = await ticket.run(
                lambda: rog.ask(req.question, entities=req.entities),
                gone=request.is_disconnected,
            )
        except Exception as e:
            return _error_for(e)
        return {"object": "ragtune.rog", "model": settings.model_id, **_as_dict(ans)}

    @app.post("/v1/chat/completions")
    async def chat(req: ChatCompletionRequest, request: Request):
        try:
            question = req.question()
            if not question:
                raise _ClientError(
                    400,
                    "messages hold no user message with text; the last user message is the "
                    "question to answer",
                )
            if req.n not in (None, 1):
                raise _ClientError(400, f"n={req.n} is not supported; ask for one choice (n=1)")
            if req.mode == "rog" and rog is None:
                raise _no_kg()
            max_tokens = req.max_completion_tokens or req.max_tokens or rag.max_tokens
            if max_tokens > settings.max_completion_tokens:
                raise _ClientError(
                    400,
                    f"max_tokens={max_tokens} is above this server's limit of "
                    f"{settings.max_completion_tokens}; ask for fewer, or start the server "
                    "with a larger --max-completion-tokens",
                )
            history, system = req.history(), req.system()
            await check_prompt(question + " " + " ".join(req.entities or []))
            gen: dict[str, Any] = {"max_tokens": max_tokens}
            gen["temperature"] = req.temperature or 0.0
            if req.top_p is not None:
                gen["top_p"] = req.top_p
            if req.seed is not None:
                gen["seed"] = req.seed
            gen["stop"] = list(rag.stop) + [s for s in req.stops() if s not in rag.stop]
            ticket = gate.reserve()  # raises Busy when the queue is full
        except Exception as e:
            return _error_for(e)

        cid = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())
        common = {"id": cid, "created": created, "model": settings.model_id}

        if req.mode == "rog":

            def work(emit: Callable[[str], None]):
                return rog.ask(question, entities=req.entities)

        else:
            convo: dict[str, Any] = {"history": history, "system": system}

            def work(emit: Callable[[str], None]):
                if not req.stream:
                    return rag.ask(question, k=req.k, **convo, **gen)
                teed = copy.copy(rag)  # shallow: the same index and model, a streaming tee
                teed.lm = _TeeLM(rag.lm, emit)
                return teed.ask(question, k=req.k, **convo, **gen)

        batched = batcher is not None and req.mode != "rog"

        def start(emit: Callable[[str], None] | None):
            """The generation, as a coroutine: in a batch, or alone in a slot."""
            if batched:
                breq = BatchRequest(question, history, system, req.k, **gen)
                return batcher.submit(ticket, breq, emit=emit, gone=request.is_disconnected)
            return ticket.run(work, emit or (lambda piece: None), gone=request.is_disconnected)

        if not req.stream:
            try:
                result = await start(None)
            except Exception as e:
                return _error_for(e)
            text, finish, usage, extra = _outcome(req.mode, result, lm, question, max_tokens)
            return {
                **common,
                "object": "chat.completion",
                "system_fingerprint": None,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "usage": usage,
                "ragtune": extra,
            }

        fmt = getattr(rag, "format", None) if req.mode != "rog" else None
        reasons = bool(fmt is not None and fmt.reasons)
        run = _StreamRun(start)
        first = await run.next()
        if first is _END and run.error is not None:  # failed before a word: a proper status
            return _error_for(run.error)
        include_usage = bool((req.stream_options or {}).get("include_usage"))

        def chunk(delta: dict, finish: str | None = None, **more: Any) -> str:
            body = {
                **common,
                "object": "chat.completion.chunk",
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
                **more,
            }
            return "data: " + json.dumps(body, ensure_ascii=False) + "\n\n"

        async def events() -> AsyncIterator[str]:
            try:
                yield chunk({"role": "assistant", "content": ""})
                item, started = first, False
                # A model that reasons first (a RAFT adapter) streams its chain of thought as
                # `reasoning_content` (vLLM's and DeepSeek's field) and its final answer, once
                # parsed, as `content`, so a client shows the answer without the markers.
                field = "reasoning_content" if reasons else "content"
                while item is not _END:
                    piece = item if started else item.lstrip()
                    if piece:
                        started = True
                        yield chunk({field: piece})
                    item = await run.next()
                if run.error is not None:
                    resp = _error_for(run.error)
                    yield "data: " + resp.body.decode() + "\n\n"
                    yield "data: [DONE]\n\n"
                    return
                text, finish, usage, extra = _outcome(
                    req.mode, run.result, lm, question, max_tokens
                )
                if (req.mode == "rog" or reasons) and text:  # the answer comes whole
                    yield chunk({"content": text})
                yield chunk({}, finish, usage=usage, ragtune=extra)
                if include_usage:  # OpenAI's usage chunk: no choices
                    body = {**common, "object": "chat.completion.chunk", "choices": []}
                    body.update(usage=usage, ragtune=extra)
                    yield "data: " + json.dumps(body, ensure_ascii=False) + "\n\n"
                yield "data: [DONE]\n\n"
            finally:
                run.gone.set()  # the worker stops at its next piece if the client left

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    app.add_middleware(LimitsMiddleware, settings=settings)
    return app


# -- streaming ------------------------------------------------------------------------------------


class _StreamRun:
    """A generation started now (so its slot frees even if nobody reads), read piece by piece."""

    def __init__(self, start: Callable[[Callable[[str], None]], Any]) -> None:
        loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.gone = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

        def emit(piece: str) -> None:  # called in the worker thread
            if self.gone.is_set():
                raise ClientGone("the client disconnected mid-stream")
            loop.call_soon_threadsafe(self.queue.put_nowait, piece)

        def done(task: asyncio.Task) -> None:
            if task.cancelled():
                self.error = RagtuneError("the generation was cancelled (server shutting down)")
            elif task.exception() is not None:
                self.error = task.exception()
            else:
                self.result = task.result()
            self.queue.put_nowait(_END)

        self.task = asyncio.ensure_future(start(emit))
        self.task.add_done_callback(done)

    async def next(self) -> Any:
        return await self.queue.get()


class _TeeLM:
    """Stands in for the RAG's model: streams each reply through `emit` while collecting it."""

    def __init__(self, lm: Any, emit: Callable[[str], None]) -> None:
        self._lm, self._emit = lm, emit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lm, name)

    def generate(self, batch: list, *, max_tokens: int = 256, **kw: Any) -> list[Completion]:
        out = []
        for messages in batch:
            parts: list[str] = []
            pieces = self._lm.stream(messages, max_tokens=max_tokens, **kw)
            try:
                for piece in pieces:
                    parts.append(piece)
                    self._emit(piece)
            finally:
                close = getattr(pieces, "close", None)
                if close is not None:
                    close()  # a local model stops generating here
            text = "".join(parts).strip()
            render = getattr(self._lm, "render", None)
            prompt = render(messages) if render else " ".join(m["content"] for m in messages)
            n = self._lm.count_tokens(text) if text else 0
            finish = "length" if n >= max_tokens else "stop"
            out.append(Completion(text, self._lm.count_tokens(prompt), n, finish))
        return out


# -- shaping results and errors ------------------------------------------------------------------


def _as_dict(obj: Any) -> dict:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if is_dataclass(obj):
        return asdict(obj)
    return dict(obj)


def _outcome(mode: str, result: Any, lm: Any, question: str, max_tokens: int):
    """(text, finish_reason, usage, ragtune extra) of a RAG Answer or a RoG answer."""
    if mode == "rog":
        d = _as_dict(result)
        answers = d.get("answers") or []
        text = "; ".join(answers) if answers else "No answer found in the knowledge graph."
        # RoG makes several model calls (planning, reasoning); these counts are estimates
        pt, ct = lm.count_tokens(question), lm.count_tokens(text)
        return text, "stop", _usage(pt, ct), {"mode": "rog", **d}
    d = result.to_dict()
    pt = int(result.usage.get("prompt_tokens", 0))
    ct = int(result.usage.get("completion_tokens", 0))
    finish = "length" if ct >= max_tokens else "stop"
    extra = {
        "mode": "rag",
        "citations": d["citations"],
        "documents": d["documents"],
        "seconds": d.get("seconds", {}),
        # a tuned model's chain of thought (the answer above is its final answer), else None
        "reasoning": d.get("reasoning"),
        # what retrieval searched for (a follow-up is made standalone from the conversation)
        "query": d.get("query"),
    }
    return result.answer, finish, _usage(pt, ct), extra


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _no_kg() -> _ClientError:
    return _ClientError(
        400,
        "this server has no knowledge graph, so mode 'rog' is off; start it with "
        "`ragtune serve --kg DIR` (or use mode 'rag')",
        "rog_unavailable",
    )


def _validation_message(errors: list[dict]) -> str:
    parts = []
    for e in errors[:5]:
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        where = ".".join(loc) or "body"
        if e.get("type") == "json_invalid":
            return "the request body is not valid JSON"
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")  # our validators'
        parts.append(f"{where}: {msg}")
    return "invalid request: " + "; ".join(parts)


def _error_for(e: BaseException) -> JSONResponse:
    if isinstance(e, _ClientError):
        return error_response(e.status, str(e), "invalid_request_error", e.code)
    if isinstance(e, Busy):
        return error_response(
            503,
            str(e),
            "server_error",
            "server_busy",
            headers={"Retry-After": str(e.retry_after)},
        )
    if isinstance(e, ContextTooLong):
        return error_response(400, str(e), "invalid_request_error", "context_length_exceeded")
    if isinstance(e, (ConfigError, DataError)):  # raised on what the request asked for
        return error_response(400, str(e), "invalid_request_error", "invalid_request")
    if isinstance(e, RateLimited):
        ra = str(max(1, int(e.retry_after or 1)))
        msg = f"the model backend is rate limited: {e}"
        return error_response(503, msg, "server_error", "backend_busy", {"Retry-After": ra})
    if isinstance(e, Unreachable):
        msg = f"the model backend is unreachable: {e}"
        return error_response(502, msg, "server_error", "backend_unreachable")
    if isinstance(e, LLMError):
        return error_response(502, f"the model backend failed: {e}", "server_error", "backend")
    if isinstance(e, ClientGone):  # nobody reads this; nginx's "client closed request"
        return error_response(499, str(e), "invalid_request_error", "client_closed_request")
    return _internal_error(e)  # a generic message: the traceback goes to the log only


def _internal_error(e: BaseException) -> JSONResponse:
    ref = uuid.uuid4().hex[:12]
    log.error("internal error %s: %s", ref, type(e).__name__, exc_info=e)
    return error_response(
        500,
        f"internal server error (ref {ref}); the server's log has the details",
        "server_error",
        "internal_error",
    )


def _count_tokens(lm: Any, text: str) -> int:
    """`lm.count_tokens`, off the generation thread. A Hugging Face fast tokenizer that a
    generation is re-configuring (padding on/off) raises "Already borrowed": try again."""
    for attempt in range(20):
        try:
            return lm.count_tokens(text)
        except RuntimeError as e:
            if "borrow" not in str(e) or attempt == 19:
                raise
            time.sleep(0.005)
    raise AssertionError("unreachable")


def _warm(rag: Any) -> None:
    """Load the retrievers (and the embedder) now, not under the first request."""
    try:
        rag.retrieve("warm up", 1)
    except Exception as e:  # a broken index still fails its requests, with a clear message
        log.warning("warm-up retrieval failed: %s", e)
