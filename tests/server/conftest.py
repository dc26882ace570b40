"""A real uvicorn server on a free loopback port (in a thread), a streaming DummyLM, a fake RoG."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import asdict, dataclass, field

import pytest

from ragtune.rag import RAG
from ragtune.testing import DummyLM


class LiveServer:
    """uvicorn serving `app` on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app) -> None:
        import uvicorn

        self.app = app
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"


@pytest.fixture
def serve():
    """serve(rag, rog=None, **settings) -> a started LiveServer, stopped after the test."""
    from ragtune.server import Settings, create_app

    running: list[LiveServer] = []

    def _serve(rag, rog=None, **settings) -> LiveServer:
        settings.setdefault("model_id", "ragtune-test")
        settings.setdefault("api_key", None)
        srv = LiveServer(create_app(rag=rag, rog=rog, settings=Settings(**settings))).start()
        running.append(srv)
        return srv

    yield _serve
    for srv in running:
        srv.stop()


class WordStreamLM(DummyLM):
    """A DummyLM that streams its reply word by word (whitespace kept with the words)."""

    def stream(self, messages, **kw):
        text = self.generate([messages], **kw)[0].text
        yield from (p for p in re.findall(r"\s*\S+", text))


LEASE_Q = "How long does a lease last by default?"
LEASE_A = "Leases last 30 seconds by default [1]."


@pytest.fixture
def lease_rag(glimmer_index):
    return RAG(glimmer_index, WordStreamLM(lambda m: LEASE_A), k=3)


@dataclass
class FakeRogAnswer:
    question: str
    answers: list[str]
    paths: list[list[str]] = field(default_factory=list)
    rendered: list[str] = field(default_factory=list)
    plans: list[dict] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    raw: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class FakeRoG:
    """Stands in for ragtune.rog.pipeline.RoG: same `ask` signature and answer fields."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str] | None]] = []

    def ask(self, question: str, entities: list[str] | None = None) -> FakeRogAnswer:
        self.calls.append((question, entities))
        paths = [
            [
                "Sharon Tate",
                "~starred_actors",
                "The Fearless Vampire Killers",
                "directed_by",
                "Roman Polanski",
            ],
            ["Sharon Tate", "~starred_actors", "Valley of the Dolls", "directed_by", "Mark Robson"],
        ]
        return FakeRogAnswer(
            question=question,
            answers=["Roman Polanski"],
            paths=paths,
            rendered=[" -> ".join(p) for p in paths],
            plans=[{"relations": ["~starred_actors", "directed_by"], "score": -0.4, "valid": True}],
            entities=entities or ["Sharon Tate"],
            raw="Roman Polanski",
        )
