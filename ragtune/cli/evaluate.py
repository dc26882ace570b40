"""`ragtune eval`: the five-way RAFT comparison and the distractor sweep."""

from __future__ import annotations

from rich.console import Console

from ragtune.config import typer_command
from ragtune.eval.compare import EvalConfig

console = Console()
err = Console(stderr=True, soft_wrap=True)


def run_eval(cfg: EvalConfig) -> dict:
    """Compare base, base+RAG, DSF, DSF+RAG and RAFT; write results.json/md, plots, report.html."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ragtune.eval.compare import evaluate, markdown_table

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as prog:
        task = prog.add_task("evaluating", total=None)

        def tick(label: str, done: int, total: int) -> None:
            prog.update(task, description=label, completed=done, total=total)

        res = evaluate(cfg, tick)
    console.print(markdown_table(res), highlight=False)
    console.print(f"[green]report[/] {cfg.out}/report.html", highlight=False)
    return res


def register(app) -> None:
    app.command("eval")(typer_command(EvalConfig, run_eval))
