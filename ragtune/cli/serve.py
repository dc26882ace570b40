"""`ragtune serve`: the OpenAI-compatible API and the web page, under uvicorn.

ragtune serve --index out/index                         # http://127.0.0.1:8000
ragtune serve --index out/index --kg out/kg --adapter out/rog/adapter
RAGTUNE_API_KEY=secret ragtune serve --index out/index --host 0.0.0.0
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ragtune.cli.ui import err


@dataclass
class ServeConfig:
    """Serve an index (and a knowledge graph) over an OpenAI-compatible API and a web page."""

    index: str = field(default="", metadata={"help": "Index directory.", "required": True})
    kg: str | None = field(
        default=None, metadata={"help": "Knowledge-graph directory: turns on RoG answers."}
    )
    model: str = field(
        default="smollm2-135m",
        metadata={"help": "Model spec: smollm2-135m, a model dir, gguf:PATH, openai:MODEL@URL."},
    )
    adapter: str | None = field(
        default=None, metadata={"help": "PEFT adapter directory (local models)."}
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
    k: int = field(default=3, metadata={"help": "Documents to retrieve.", "short": "-k"})
    method: str | None = field(default=None, metadata={"help": "bm25 | dense | hybrid."})
    max_tokens: int = field(default=128, metadata={"help": "Default answer length in tokens."})
    max_context_tokens: int = field(default=2048, metadata={"help": "Token budget for documents."})
    threads: int | None = field(default=None, metadata={"help": "CPU threads for a local model."})
    max_concurrency: int = field(
        default=1, metadata={"help": "Generations at once (more only for endpoints or GPUs)."}
    )
    max_queue: int = field(
        default=16, metadata={"help": "Requests that may wait; beyond, 503 + Retry-After."}
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
    """Load the model, index and (with --kg) the RoG pipeline; return the ASGI app."""
    from ragtune.cli.commands import load_rag
    from ragtune.errors import ConfigError
    from ragtune.llm.spec import load_lm
    from ragtune.server import Settings, create_app

    rag = load_rag(cfg)
    lm = rag.lm
    rog = None
    if cfg.kg:
        from ragtune.kg import KG
        from ragtune.rog.pipeline import RoG

        rog_lm = lm
        if cfg.rog_adapter:
            with err.status("loading the RoG model"):
                local = not cfg.model.startswith("openai:")
                kw = {"threads": cfg.threads} if cfg.threads and local else {}
                rog_lm = load_lm(cfg.model, adapter=cfg.rog_adapter, **kw)
        with err.status("loading knowledge graph"):
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
    )
    return create_app(rag=rag, rog=rog, settings=settings)


def run_serve(cfg: ServeConfig) -> None:
    """Answer questions over HTTP: /v1/chat/completions (OpenAI-compatible) and a page at /."""
    import logging

    import uvicorn

    from ragtune.server.limits import API_KEY_ENV

    app = build_app(cfg)
    settings = app.state.settings
    logging.basicConfig(level=cfg.log_level.upper(), format="%(levelname)s:  %(name)s: %(message)s")
    loopback = cfg.host in ("127.0.0.1", "localhost", "::1")
    if not loopback and not settings.api_key:
        err.print(
            f"[yellow]warning:[/] listening on {cfg.host} without an API key: anyone who can "
            f"reach this port can use the model; set ${API_KEY_ENV} to require one",
            highlight=False,
        )
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    err.print(
        f"[green]serving[/] {settings.model_id} on http://{host}:{cfg.port}  "
        f"(page /, API /v1, modes: {', '.join(['rag'] + (['rog'] if cfg.kg else []))}"
        f"{', key required' if settings.api_key else ''})",
        highlight=False,
    )
    uvicorn.run(
        app,
        host=cfg.host,
        port=cfg.port,
        log_level=cfg.log_level,
        timeout_graceful_shutdown=10,
        server_header=False,
    )


def register(app) -> None:
    from ragtune.config import typer_command

    app.command("serve")(typer_command(ServeConfig, run_serve))
