"""`ragtune pipeline CONFIG.yaml`: every stage of the file, each with its command's progress bar."""

from __future__ import annotations

from rich.console import Console

from ragtune.config import typer_command
from ragtune.pipeline import PipelineRun

console = Console()


def run_pipeline_file(cfg: PipelineRun) -> dict[str, str]:
    """Run a pipeline file: documents → index → RAFT data → adapters → eval (and RoG's stages);
    stages whose inputs are unchanged since their last run are skipped."""
    from ragtune.cli.commands import run_index
    from ragtune.cli.evaluate import run_eval
    from ragtune.cli.kg import run_load
    from ragtune.cli.raft import run_build, run_from_qa
    from ragtune.cli.retrieval import run_reembed, run_reranker_train, run_retriever_train
    from ragtune.cli.rog import run_build_data, run_predict, run_rog_train, run_train_planner
    from ragtune.cli.train import run_train
    from ragtune.config import load_config
    from ragtune.pipeline import PipelineConfig, run_pipeline

    # each stage's job -> the command that runs it with its progress bar and summary
    commands = {
        "index": run_index,
        "raft": lambda c: (run_from_qa if hasattr(c, "reader") else run_build)(c),
        "retriever": run_retriever_train,
        "reranker": run_reranker_train,
        "reindex": run_reembed,
        "dsf": run_train,
        "raft_train": run_train,
        "eval": run_eval,
        "kg": run_load,
        "rog_data": run_build_data,
        "rog_train": run_rog_train,
        "rog_planner": run_train_planner,
        "rog_predict": run_predict,
    }

    def on_event(stage: str, event: str) -> None:
        if event == "start":
            console.rule(f"pipeline: {stage}")
        elif event == "skipped":
            console.print(f"[dim]pipeline: {stage} is up to date (skipped)[/]", highlight=False)

    status = run_pipeline(
        load_config(PipelineConfig, cfg.file),
        start=cfg.start,
        until=cfg.until,
        force=cfg.force,
        runner=lambda st: commands[st.name](st.cfg),
        on_event=on_event,
    )
    ran = [s for s, v in status.items() if v == "ran"]
    console.print(
        f"[green]pipeline done[/]: ran {', '.join(ran) or 'nothing'}; "
        f"{len(status) - len(ran)} stage(s) up to date",
        highlight=False,
    )
    return status


def register(app) -> None:
    app.command("pipeline")(typer_command(PipelineRun, run_pipeline_file))
