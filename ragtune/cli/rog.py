"""`ragtune rog synth | build-data | train | train-planner | ask | predict | eval` — Reasoning on Graphs.

ragtune kg load kb.txt --out out/kg
ragtune rog build-data out/kg questions.txt --format pathquestion --out out/rog-data
ragtune rog synth out/kg --templates t.yaml --out q3.jsonl     # templated multi-hop questions
ragtune rog train --data out/rog-data --out out/rog
ragtune rog train-planner --kg out/kg --data out/rog-data --out out/planner   # rank-embed
ragtune rog ask out/kg "which nationality is frederica_of_mecklenburg-strelitz 's couple" \
    --adapter out/rog/adapter
ragtune rog predict --kg out/kg --data out/rog-data --adapter out/rog/adapter --out out/rog-eval
ragtune rog eval out/rog-eval/predictions-constrained.jsonl
"""

from __future__ import annotations

from dataclasses import dataclass, field

import typer
from rich.console import Console

from ragtune.config import typer_command
from ragtune.rog.ask import RogAskConfig
from ragtune.rog.data import BuildDataConfig
from ragtune.rog.evaluate import RogEvalConfig
from ragtune.rog.rank import PlannerTrainConfig
from ragtune.rog.synth import SynthConfig
from ragtune.rog.train import RogTrainConfig

console = Console()

rog_app = typer.Typer(
    help="Reasoning on Graphs: plan relation paths, retrieve them from a KG, answer.",
    no_args_is_help=True,
)


def run_build_data(cfg: BuildDataConfig) -> dict:
    """Split the questions and write chat/train.jsonl, questions/{train,test}.jsonl."""
    from ragtune.rog.data import build_rog_data

    m = build_rog_data(cfg)
    for name, s in m["splits"].items():
        extra = (
            f": {s['planning']} planning + {s['reasoning']} reasoning examples, "
            f"{s['no_target']} without a path to an answer"
            if "planning" in s
            else ""
        )
        console.print(f"{name}: {s['questions']} questions{extra}", highlight=False)
    console.print(f"[green]wrote[/] {cfg.out}", highlight=False)
    return m


def run_synth(cfg: SynthConfig) -> dict:
    """Write templated multi-hop questions (rog build-data --format jsonl input)."""
    from ragtune.rog.synth import synth_questions

    m = synth_questions(cfg)
    counts = ", ".join(str(c) for c in m["per_template"])
    console.print(
        f"[green]wrote[/] {m['questions']} questions ({counts} per template) to {m['out']}",
        highlight=False,
    )
    return m


def run_rog_train(cfg: RogTrainConfig) -> dict:
    """Train the planner + reasoner adapter on `ragtune rog build-data` output."""
    from ragtune.cli.train import run_train

    return run_train(cfg)


def run_ask(cfg: RogAskConfig):
    """Plan, retrieve, reason; print answers and the paths that support them."""
    import json

    from ragtune.rog.ask import ask_rog

    ans = ask_rog(cfg)
    if cfg.json:
        print(json.dumps(ans.to_dict(), ensure_ascii=False, indent=2))
        return ans
    console.print(
        f"[bold]entities:[/] {', '.join(ans.entities) or '(none found)'}", highlight=False
    )
    for p in ans.plans:
        mark = "[green]✓[/]" if p["valid"] else "[red]✗[/]"
        console.print(f"plan {mark} {' → '.join(p['relations'])}  ({p['score']:.3f})")
    console.print("[bold]answers:[/] " + ("; ".join(ans.answers) or "(none)"), highlight=False)
    if ans.excluded:
        console.print(
            f"[dim]not answers (the question's own): {', '.join(ans.excluded)}[/]",
            highlight=False,
        )
    shown = ans.supporting or ans.rendered[:5]
    if shown:
        console.print("[bold]paths:[/]")
        for r in shown:
            console.print("  " + r, highlight=False)
    return ans


def run_predict(cfg: RogEvalConfig) -> dict:
    """Answer a split in each mode; write predictions-*.jsonl, results.json, results.md."""
    from ragtune.cli.ui import job_progress
    from ragtune.rog.evaluate import predict, results_table

    with job_progress() as prog:
        tasks: dict[str, int] = {}

        def progress(mode: str, done: int, total: int) -> None:
            if mode not in tasks:
                tasks[mode] = prog.add_task(mode, total=total, info="")
            prog.update(tasks[mode], completed=done)

        res = predict(cfg, progress)
    console.print(results_table(res), highlight=False)
    return res


def run_train_planner(cfg: PlannerTrainConfig) -> dict:
    """Train the rank-embed planner (a bi-encoder over relation-path texts)."""
    from ragtune.cli.ui import job_progress
    from ragtune.rog.rank import train_planner

    with job_progress() as prog:
        task = prog.add_task("train-planner", total=None, info="")

        def progress(step: int, total: int, _logs: dict) -> None:
            prog.update(task, completed=step, total=total)

        s = train_planner(cfg, progress)
    console.print(
        f"{s['pairs']} pairs from {s['questions']} questions, {s['steps']} steps, "
        f"{s['train_seconds']} s; held-out plan accuracy {s['valid_plan_accuracy_before']} -> "
        f"{s['valid_plan_accuracy_after']} ({s['valid_questions']} questions)",
        highlight=False,
    )
    console.print(f"[green]wrote[/] {cfg.out}", highlight=False)
    return s


@dataclass
class RogEvalFileConfig:
    """Score a predictions jsonl (ragtune's or the RoG reference's format)."""

    predictions: str = field(
        default="", metadata={"help": "Predictions jsonl.", "positional": True, "required": True}
    )


def run_eval_file(cfg: RogEvalFileConfig) -> dict:
    """Print every metric: true Hits@1, RoG's hit, F1, precision (clipped and not), recall."""
    from ragtune.rog.metrics import evaluate_file

    m = evaluate_file(cfg.predictions)
    names = {
        "n": "questions",
        "hit1": "Hits@1 (first answer is gold)",
        "hit": "Hit (any gold answer in the output; RoG's 'Hits@1')",
        "f1": "F1 (precision clipped at 1)",
        "precision": "precision (clipped at 1)",
        "recall": "recall",
        "f1_ref": "F1 as the reference computes it",
        "precision_ref": "precision as the reference computes it (unclipped)",
        "plan_validity": "plans that exist in the graph",
        "supported": "correct answers on a retrieved path",
    }
    for k, v in m.items():
        val = f"{v:d}" if k == "n" else f"{v:.2f}"
        console.print(f"{names.get(k, k):<55} {val}", highlight=False)
    return m


rog_app.command("synth")(typer_command(SynthConfig, run_synth))
rog_app.command("build-data")(typer_command(BuildDataConfig, run_build_data))
rog_app.command("train")(typer_command(RogTrainConfig, run_rog_train))
rog_app.command("train-planner")(typer_command(PlannerTrainConfig, run_train_planner))
rog_app.command("ask")(typer_command(RogAskConfig, run_ask))
rog_app.command("predict")(typer_command(RogEvalConfig, run_predict))
rog_app.command("eval")(typer_command(RogEvalFileConfig, run_eval_file))
