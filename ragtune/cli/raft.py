"""`ragtune raft build` and `ragtune raft from-qa`."""

from __future__ import annotations

import typer
from rich.console import Console

from ragtune.cli.ui import err
from ragtune.config import typer_command
from ragtune.raft.jobs import RaftBuildConfig, RaftFromQAConfig, build_raft, raft_from_qa

console = Console()

raft_app = typer.Typer(
    help="Build RAFT training data (questions, oracle + distractors, CoT answers).",
    no_args_is_help=True,
)


def _run(job, cfg, **kw) -> dict:
    """Run a RAFT job under the progress bar, then print its summary."""
    from ragtune.cli.ui import job_progress

    with job_progress() as prog:
        task = prog.add_task("units", total=None, info="")

        def progress(done: int, total: int, usage: dict) -> None:
            tok = f"{usage.get('total_tokens', 0):,} teacher tokens" if usage else ""
            prog.update(task, completed=done, total=total, info=tok)

        m = job(cfg, progress, **kw)
    c = m["counts"]
    console.print(
        f"[green]wrote[/] {m['examples']} examples (train {c['train']}, valid {c['valid']}, "
        f"test {c['test']}; oracle kept in {m['oracle_present']}) to {cfg.out}; "
        f"resumed {m['units_resumed']} of {m['units']} units; drops: {m['drops'] or 'none'}",
        highlight=False,
    )
    return m


def run_build(cfg: RaftBuildConfig) -> dict:
    """Build RAFT data from a corpus."""
    return _run(
        build_raft, cfg, on_skip=lambda s: err.print(f"[yellow]skipped[/] {s}", highlight=False)
    )


def run_from_qa(cfg: RaftFromQAConfig) -> dict:
    """Build RAFT data from QA data: HotpotQA, PubMedQA, Gorilla APIBench or generic jsonl."""
    return _run(raft_from_qa, cfg)


raft_app.command("build")(typer_command(RaftBuildConfig, run_build))
raft_app.command("from-qa")(typer_command(RaftFromQAConfig, run_from_qa))
