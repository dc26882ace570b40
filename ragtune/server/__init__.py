"""Serve a RAG (and RoG) pipeline over an OpenAI-compatible HTTP API with a web page.

    from ragtune.server import create_app, Settings
    app = create_app(rag=RAG(index, lm), settings=Settings(max_concurrency=2))

`ragtune serve --index DIR` does this and runs it under uvicorn (docs/server.md).
"""

from ragtune.server.app import create_app
from ragtune.server.limits import Settings

__all__ = ["create_app", "Settings"]
