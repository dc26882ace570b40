"""Batched RAG generation in the server: requests that arrive while the model is busy share it.

    batcher = Batcher(gate, rag, max_batch=8, wait_s=0.01)
    answer = await batcher.submit(ticket, BatchRequest(question, ...), gone=request.is_disconnected)

One generation slot of the `GenerationGate` runs a batch. The first request of an idle server
waits at most `wait_s` for company (a burst arrives within milliseconds); then the batch starts
in a worker thread: retrieval for all of it as one batched search, then `lm.run_rows`, which for
a local model decodes every row in one forward pass per token (ragtune.llm.batching). While it
runs, later requests join it between two tokens, up to `max_batch` rows at once, and each row
answers as soon as it ends, so a short answer never waits for a long one. A request whose client
leaves is dropped from its batch (or never starts).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ragtune.llm.base import GenerationConfig, Row, RowDropped
from ragtune.server.limits import ClientGone, GenerationGate, Ticket

log = logging.getLogger("ragtune.server")
WATCH_EVERY_S = 0.25  # how often a waiting request asks whether its client is still there


@dataclass
class BatchRequest:
    """One RAG chat request: the question, its conversation and its generation settings."""

    question: str
    history: list[dict] | None = None
    system: str | None = None
    k: int | None = None
    max_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


@dataclass
class _Item:
    req: BatchRequest
    ticket: Ticket
    fut: asyncio.Future
    emit: Callable[[str], None] | None
    arrived: float
    gone: threading.Event = field(default_factory=threading.Event)
    streaming: bool = False  # its first piece went out: the response watches the client now
    admitted: float | None = None


class Batcher:
    def __init__(self, gate: GenerationGate, rag: Any, max_batch: int, wait_s: float) -> None:
        self.gate, self.rag = gate, rag
        self.max_batch, self.wait_s = max_batch, wait_s
        self._inbox: deque[_Item] = deque()
        self._lock = threading.Lock()  # the inbox is read by the worker thread too
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._inflight: set[int] = set()  # ids of pulled items not settled yet
        self._batches: set[asyncio.Task] = set()

    async def submit(
        self,
        ticket: Ticket,
        req: BatchRequest,
        emit: Callable[[str], None] | None = None,
        gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> Any:
        """Queue `req`, and return its Answer once its row ends. `emit` streams its text."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved, always
        item = _Item(req, ticket, fut, None, loop.time())
        if emit is not None:

            def streamed(piece: str, _emit=emit) -> None:
                item.streaming = True
                _emit(piece)

            item.emit = streamed
        with self._lock:
            self._inbox.append(item)
        if self._wake is not None:
            self._wake.set()
        if self._task is None:
            self._task = loop.create_task(self._drain())
        watcher = loop.create_task(self._watch(item, gone)) if gone is not None else None
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            item.gone.set()  # the request was cancelled: drop its row
            raise
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _watch(self, item: _Item, gone: Callable[[], Awaitable[bool]]) -> None:
        """Mark the item gone when its client hangs up; a streamed one is watched by its
        response once it streams (two readers of the connection would steal its messages)."""
        while not item.fut.done() and not item.streaming:
            if await gone():
                item.gone.set()
                return
            await asyncio.sleep(WATCH_EVERY_S)

    # -- the event loop's side ------------------------------------------------------------------
    async def _drain(self) -> None:
        """Start batches while requests wait: each takes a gate slot, so with
        `--max-concurrency N` up to N batches run at once (each in its worker thread)."""
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        sem = self.gate._semaphore()
        try:
            while True:
                with self._lock:
                    if not self._inbox:
                        return
                await sem.acquire()
                with self._lock:  # a running batch may have taken them in the meantime
                    first = self._inbox[0].arrived if self._inbox else None
                if first is None:
                    sem.release()
                    continue
                deadline = first + self.wait_s  # the first request waits at most wait_s
                while len(self._inbox) < self.max_batch and loop.time() < deadline:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), deadline - loop.time())
                    except TimeoutError:
                        break
                items = self._pull(self.max_batch)
                task = loop.create_task(self._batch(loop, items, sem))
                self._batches.add(task)  # held, so the task is not garbage-collected
                task.add_done_callback(self._batches.discard)
        finally:
            self._task = None

    async def _batch(self, loop: asyncio.AbstractEventLoop, items: list[_Item], sem) -> None:
        """One batch in a worker thread; its slot is given back when it ends."""
        taken = list(items)  # and whatever joins it
        try:
            await loop.run_in_executor(self.gate._pool, self._run, loop, items, taken)
        except Exception as e:  # a bug, not a request's fault: never leave one hanging
            log.error("batch failed: %s", type(e).__name__, exc_info=e)
        finally:
            sem.release()
            for it in taken:  # settled by the calls queued before this one, unless it failed
                self._settle(it, RuntimeError("the batch ended early"))

    def _settle(self, item: _Item, result: Any) -> None:
        """On the loop: the item's outcome, and the gate's counters."""
        gate = self.gate
        if id(item) not in self._inflight:
            return  # settled already
        self._inflight.discard(id(item))
        if item.admitted is not None:
            gate.running -= 1
            gate._seconds.append(time.perf_counter() - item.admitted)
        item.ticket.cancel()  # gives back the queue place (pending -= 1)
        if item.fut.done():
            return
        if isinstance(result, RowDropped):
            result = ClientGone(str(result))
        if isinstance(result, BaseException):
            item.fut.set_exception(result)
        else:
            item.fut.set_result(result)

    def _admit(self, item: _Item) -> None:
        item.admitted = time.perf_counter()
        self.gate.running += 1

    # -- the worker thread's side ---------------------------------------------------------------
    def _run(self, loop: asyncio.AbstractEventLoop, items: list[_Item], taken: list) -> None:
        def more(n: int) -> list[Row]:
            joined = self._pull(n)
            taken.extend(joined)
            return self._rows(joined, loop)

        self.rag.lm.run_rows(self._rows(items, loop), more=more, max_batch=self.max_batch)

    def _pull(self, n: int) -> list[_Item]:
        with self._lock:
            items = [self._inbox.popleft() for _ in range(min(n, len(self._inbox)))]
            for it in items:
                self._inflight.add(id(it))
        return items

    def _rows(self, items: list[_Item], loop: asyncio.AbstractEventLoop) -> list[Row]:
        """Retrieval for `items` at once, then one Row each (dropped items answer ClientGone)."""
        settle = lambda it, res: loop.call_soon_threadsafe(self._settle, it, res)  # noqa: E731
        live = []
        for it in items:
            if it.gone.is_set():
                settle(it, ClientGone("the client disconnected while its request was queued"))
            else:
                live.append(it)
        if not live:
            return []
        # admitted before retrieval, so /healthz counts them as generating from now on (the
        # loop runs these calls in order, so each admission comes before its settling)
        for it in live:
            loop.call_soon_threadsafe(self._admit, it)
        try:
            prepared = self.rag.prepare(
                [it.req.question for it in live],
                k=[it.req.k for it in live],
                max_tokens=[it.req.max_tokens for it in live],
                histories=[it.req.history for it in live],
                systems=[it.req.system for it in live],
            )
        except Exception as e:  # e.g. an unknown retrieval method: each of them says so
            for it in live:
                settle(it, e)
            return []
        rows = []
        for it, p in zip(live, prepared, strict=True):
            r = it.req
            cfg = GenerationConfig(r.max_tokens, r.temperature, r.top_p, list(r.stop), r.seed)
            t0 = time.perf_counter()

            def finished(result: Any, it=it, p=p, t0=t0) -> None:
                if not isinstance(result, BaseException):
                    try:
                        result = self.rag.answer(p, result, time.perf_counter() - t0)
                    except Exception as e:
                        result = e
                settle(it, result)

            rows.append(Row(p.messages, cfg, finished, it.emit, it.gone.is_set))
        return rows
