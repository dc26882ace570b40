"""`ragtune serve`: the OpenAI-compatible API and the web page, under uvicorn.

ragtune serve --index out/index                         # http://127.0.0.1:8000
ragtune serve --index out/index --kg out/kg --adapter out/rog/adapter
RAGTUNE_API_KEY=secret ragtune serve --index out/index --host 0.0.0.0
"""

from __future__ import annotations

from ragtune.cli.ui import err
from ragtune.server.serve import ServeConfig


def run_serve(cfg: ServeConfig) -> None:
    """Answer questions over HTTP: /v1/chat/completions (OpenAI-compatible) and a page at /."""
    from ragtune.server.limits import API_KEY_ENV
    from ragtune.server.serve import build_app, serve

    with err.status("loading model, index" + (" and knowledge graph" if cfg.kg else "")):
        app = build_app(cfg)
    settings = app.state.settings
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
    serve(cfg, app)


def register(app) -> None:
    from ragtune.config import typer_command

    app.command("serve")(typer_command(ServeConfig, run_serve))
