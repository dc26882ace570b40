"""`ragtune train` and `ragtune merge`."""

from __future__ import annotations

from rich.console import Console

from ragtune.cli.ui import err
from ragtune.config import typer_command
from ragtune.train.merge import MergeConfig, merge_adapter
from ragtune.train.trainer import TrainConfig

console = Console()


def run_train(cfg: TrainConfig) -> dict:
    """LoRA fine-tuning; resumes from the newest checkpoint in --out; Ctrl-C saves one."""
    from ragtune.cli.ui import job_progress
    from ragtune.train.distributed import is_main_process
    from ragtune.train.trainer import train

    if not is_main_process():  # a rank of `accelerate launch -m ragtune.cli train`: rank 0 reports
        return train(cfg)
    with job_progress() as prog:
        task = prog.add_task("training", total=None, info="loading")

        def progress(step: int, total: int, rec: dict) -> None:
            info = f"loss {rec['loss']:.3f}  {rec['tokens_per_s']:.0f} tok/s"
            prog.update(task, completed=step, total=total, info=info)

        try:
            s = train(cfg, progress=progress)
        except KeyboardInterrupt:
            err.print(f"interrupted: checkpoint saved in {cfg.out}; run the same command to resume")
            raise SystemExit(130) from None
    console.print(
        f"[green]trained[/] {s['steps']} steps on {s['examples']} examples"
        + (
            f" ([yellow]{s['dropped_too_long']} longer than --max-length left out[/])"
            if s.get("dropped_too_long")
            else ""
        )
        + f" (resumed from step {s['resumed_from']}): loss {s['first_loss']:.3f} → {s['last_loss']:.3f}"
        + (f", eval loss {s['eval_loss']:.3f}" if s["eval_loss"] is not None else "")
        + f"; {s['tokens_per_s']:.0f} tokens/s → {cfg.out}/adapter",
        highlight=False,
    )
    return s


def run_merge(cfg: MergeConfig):
    """Fold a LoRA adapter into its base model."""
    out = merge_adapter(cfg)
    console.print(f"[green]merged[/] {cfg.adapter} → {out}", highlight=False)
    return out


def register(app) -> None:
    from ragtune.cli.export import run_export
    from ragtune.train.export import ExportConfig

    app.command("train")(typer_command(TrainConfig, run_train))
    app.command("merge")(typer_command(MergeConfig, run_merge))
    app.command("export")(typer_command(ExportConfig, run_export))
