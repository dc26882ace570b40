"""Serve a RAG (and RoG) pipeline over an OpenAI-compatible HTTP API with a web page.

    from ragtune import RAG
    from ragtune.server import Settings, create_app
    app = create_app(rag=RAG("out/index", "smollm2-135m"), settings=Settings(max_concurrency=2))

`ragtune serve --index DIR` does this and runs it under uvicorn (docs/server.md).
"""

from ragtune.extras import require

require("fastapi", "the server")  # before app.py's imports fail with a bare ImportError
from ragtune.server.app import create_app  # noqa: E402
from ragtune.server.limits import Settings  # noqa: E402

__all__ = ["create_app", "Settings"]
