"""The commands: index, search, ask. Heavy imports happen inside each command."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from rich.console import Console

from ragtune.cli import app
from ragtune.cli.ui import err
from ragtune.config import typer_command
from ragtune.corpus.build import IndexConfig
from ragtune.rag.ask import AskConfig

console = Console()


def run_index(cfg: IndexConfig):
    """Load a corpus, chunk it in tokens and build BM25 + dense indexes into --out."""
    from ragtune.cli.ui import job_progress
    from ragtune.corpus.build import build_index

    def on_skip(s):
        err.print(f"[yellow]skipped[/] {s}", highlight=False)

    with job_progress(transient=True) as prog:
        # the corpus streams through (loaded, chunked and embedded file by file): the count of
        # chunks embedded grows, and the total is known at the end
        task = prog.add_task("indexing", total=None, info="")

        def on_chunked(n: int) -> None:
            prog.update(task, total=n)

        idx = build_index(
            cfg, on_skip=on_skip, on_chunked=on_chunked, progress=lambda n: prog.advance(task, n)
        )
    rep = idx.params["load_report"]
    console.print(
        f"[green]indexed[/] {len(idx.chunks)} chunks from {rep['summary']} → {idx.path} "
        f"(methods: {', '.join(idx.methods)})",
        highlight=False,
    )
    return idx


@dataclass
class SearchConfig:
    """Search an index and print the top chunks."""

    index: str = field(
        default="", metadata={"help": "Index directory.", "positional": True, "required": True}
    )
    query: str = field(
        default="", metadata={"help": "Query text.", "positional": True, "required": True}
    )
    k: int = field(default=5, metadata={"help": "Number of results.", "short": "-k"})
    method: str | None = field(
        default=None, metadata={"help": "bm25 | dense | hybrid (default: best built)."}
    )
    json: bool = field(default=False, metadata={"help": "Print JSON lines instead of a table."})


def run_search(cfg: SearchConfig):
    """Search an index and print the top chunks with their scores."""
    from rich.table import Table

    from ragtune.retrieval import Index

    idx = Index.load(cfg.index)
    hits = idx.hits(cfg.query, cfg.k, cfg.method)
    if cfg.json:
        for c, s in hits:
            print(
                json.dumps(
                    {"id": c.id, "score": s, "source": c.metadata.get("source"), "text": c.text}
                )
            )
        return hits
    t = Table("#", "score", "source", "text", show_lines=True)
    for i, (c, s) in enumerate(hits, 1):
        src = str(c.metadata.get("source", ""))
        if c.metadata.get("page"):
            src += f" p.{c.metadata['page']}"
        t.add_row(str(i), f"{s:.3f}", src, c.text[:300])
    console.print(t)
    return hits


def run_ask(cfg: AskConfig):
    """Retrieve, generate and print an answer with its cited sources."""
    from ragtune.rag.ask import ask

    with err.status("loading model"):
        lm = cfg.load_lm()
    with err.status("answering"):
        ans = ask(cfg, lm)
    if cfg.json:
        print(json.dumps(ans.to_dict(), ensure_ascii=False, indent=2))
    else:
        print_answer(ans, reasoning=cfg.show_reasoning)
    return ans


def print_answer(ans, reasoning: bool = False) -> None:
    console.print(f"[bold]Q:[/] {ans.question}", highlight=False)
    if reasoning and ans.reasoning:
        console.print(f"[dim]reasoning:[/] {ans.reasoning}", highlight=False)
    console.print(f"[bold]A:[/] {ans.answer}", highlight=False)
    if not ans.citations:
        console.print("   [dim](no source supports this answer)[/]")
    for c in ans.citations:
        where = c.source + (f" p.{c.page}" if c.page else "")
        how = {"model": "", "quote": " (quoted)"}.get(c.method, " (attributed by word overlap)")
        console.print(f"   [cyan][{c.n}][/] {where}{how}: “{c.quote[:160]}”", highlight=False)


app.command("index")(typer_command(IndexConfig, run_index))
app.command("search")(typer_command(SearchConfig, run_search))
app.command("ask")(typer_command(AskConfig, run_ask))

from ragtune.cli.raft import raft_app  # noqa: E402

app.add_typer(raft_app, name="raft")

from ragtune.cli.train import register as _register_train  # noqa: E402

_register_train(app)

from ragtune.cli.evaluate import register as _register_eval  # noqa: E402

_register_eval(app)

from ragtune.cli.rog import rog_app  # noqa: E402

app.add_typer(rog_app, name="rog")

from ragtune.cli.kg import kg_app  # noqa: E402

app.add_typer(kg_app, name="kg")

from ragtune.cli.serve import register as _register_serve  # noqa: E402

_register_serve(app)

from ragtune.cli.pipeline import register as _register_pipeline  # noqa: E402

_register_pipeline(app)

from ragtune.cli.retrieval import register as _register_retrieval  # noqa: E402

_register_retrieval(app)
