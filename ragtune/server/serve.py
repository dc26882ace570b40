"""`ragtune serve`: a RAG (and RoG) pipeline behind the OpenAI-compatible API, under uvicorn.

from ragtune.server.serve import ServeConfig, build_app
app = build_app(ServeConfig(index="out/index"))   # the ASGI app (tests, your own server)

`serve(ServeConfig(index="out/index", port=8000))` runs it under uvicorn until interrupted: what
`ragtune serve` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ragtune.rag.ask import RAGArgs


@dataclass
class ServeConfig(RAGArgs):
    """Serve an index (and a knowledge graph) over an OpenAI-compatible API and a web page."""

    kg: str | None = field(
        default=None, metadata={"help": "Knowledge-graph directory: turns on RoG answers."}
    )
    rog_mode: str = field(
        default="grounded",
        metadata={
            "help": "RoG mode: grounded | constrained | rog | paths | lm (grounded and "
            "constrained need a local model)."
        },
    )
    rog_adapter: str | None = field(
        default=None, metadata={"help": "PEFT adapter for RoG (default: the same model as RAG)."}
    )
    host: str = field(
        default="127.0.0.1", metadata={"help": "Address to listen on (loopback by default)."}
    )
    port: int = field(default=8000, metadata={"help": "TCP port."})
    name: str | None = field(
        default=None, metadata={"help": "Model id clients see (default: the model spec)."}
    )
    max_concurrency: int = field(
        default=1, metadata={"help": "Generations at once (more only for endpoints or GPUs)."}
    )
    max_queue: int = field(
        default=16, metadata={"help": "Requests that may wait; beyond, 503 + Retry-After."}
    )
    max_batch: int = field(
        default=1,
        metadata={
            "help": "RAG requests generated together in one batch (1: one at a time; a local "
            "model shares each decode step among them)."
        },
    )
    batch_wait_ms: float = field(
        default=10.0,
        metadata={"help": "How long an idle server's first request waits for others to batch."},
    )
    rewrite: str = field(
        default="rules",
        metadata={
            "help": "How a follow-up question becomes a search query: rules (adds the earlier "
            "question's words), model (asks the model), off."
        },
    )
    max_body_bytes: int = field(default=1_000_000, metadata={"help": "Largest request body."})
    max_prompt_tokens: int = field(
        default=1024, metadata={"help": "Longest question (tokens) a client may send."}
    )
    max_completion_tokens: int = field(
        default=1024, metadata={"help": "Largest max_tokens a client may ask for."}
    )
    log_level: str = field(default="info", metadata={"help": "debug | info | warning | error."})


def build_app(cfg: ServeConfig):
    """Load the model, index and (with `kg`) the RoG pipeline; return the ASGI app."""
    from ragtune.errors import ConfigError
    from ragtune.server import Settings, create_app

    rag = cfg.load_rag()
    rog = None
    if cfg.kg:
        from ragtune.kg import KG
        from ragtune.rog.pipeline import RoG

        rog_lm = cfg.load_lm(adapter=cfg.rog_adapter) if cfg.rog_adapter else rag.lm
        rog = RoG(KG.open(cfg.kg), rog_lm, mode=cfg.rog_mode)
        if rog.mode in ("constrained", "grounded") and not rog.planner.local:
            # else every /v1/rog request would fail with a 400; say so now, once
            raise ConfigError(
                f"--rog-mode {rog.mode} needs a local model for its beam search, but "
                f"{cfg.model!r} is not one; pass --rog-mode rog or --rog-mode paths, or serve "
                "a local --model (with a --rog-adapter)"
            )
    settings = Settings(
        model_id=cfg.name or cfg.model,
        max_body_bytes=cfg.max_body_bytes,
        max_prompt_tokens=cfg.max_prompt_tokens,
        max_completion_tokens=cfg.max_completion_tokens,
        max_concurrency=cfg.max_concurrency,
        max_queue=cfg.max_queue,
        max_batch=cfg.max_batch,
        batch_wait_ms=cfg.batch_wait_ms,
        rewrite=cfg.rewrite,
    )
    return create_app(rag=rag, rog=rog, settings=settings)


def serve(cfg: ServeConfig, app=None) -> None:
    """Run the app (built from `cfg` unless given) under uvicorn until interrupted."""
    import logging

    import uvicorn

    app = app if app is not None else build_app(cfg)
    logging.basicConfig(level=cfg.log_level.upper(), format="%(levelname)s:  %(name)s: %(message)s")
    uvicorn.run(
        app,
        host=cfg.host,
        port=cfg.port,
        log_level=cfg.log_level,
        timeout_graceful_shutdown=10,
        server_header=False,
    )
