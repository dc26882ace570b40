"""`ragtune eval`: the five-way RAFT comparison and the distractor sweep."""

from __future__ import annotations

from rich.console import Console

from ragtune.config import typer_command
from ragtune.eval.compare import EvalConfig

console = Console()


def run_eval(cfg: EvalConfig) -> dict:
    """Compare base, base+RAG, DSF, DSF+RAG and RAFT; write results.json/md, plots, report.html."""
    from ragtune.cli.ui import job_progress
    from ragtune.eval.compare import evaluate, markdown_table

    with job_progress(transient=True) as prog:
        task = prog.add_task("evaluating", total=None, info="")

        def tick(label: str, done: int, total: int) -> None:
            prog.update(task, description=label, completed=done, total=total)

        res = evaluate(cfg, tick)
    console.print(markdown_table(res), highlight=False)
    console.print(f"[green]report[/] {cfg.out}/report.html", highlight=False)
    return res


def register(app) -> None:
    app.command("eval")(typer_command(EvalConfig, run_eval))
