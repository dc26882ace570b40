"""`ragtune kg load` (triple files -> a KG directory) and `ragtune kg paths` (follow a plan).

ragtune kg load kb.txt --out out/kg
ragtune kg paths out/kg "Sharon Tate" --relations ~starred_actors,release_year
"""

from __future__ import annotations

from dataclasses import dataclass, field

import typer
from rich.console import Console

from ragtune.cli.ui import err
from ragtune.config import typer_command
from ragtune.kg.jobs import KGLoadConfig, load_kg

console = Console()

kg_app = typer.Typer(
    help="Knowledge graphs for RoG: load triples into a store, follow relation paths.",
    no_args_is_help=True,
)


def run_load(cfg: KGLoadConfig):
    """Load triple files into a KG directory; bad lines are skipped and listed (or --strict)."""
    shown = 0

    def on_bad(b) -> None:
        nonlocal shown
        shown += 1
        if shown <= 20:
            err.print(f"[yellow]skipped[/] {b}", highlight=False)

    with err.status("loading triples"):
        kg = load_kg(cfg, on_bad=on_bad)
    if shown > 20:
        err.print(f"[yellow]... and {shown - 20:,} more skipped lines[/]", highlight=False)
    p = kg.params
    console.print(
        f"[green]loaded[/] {kg.report.summary()} → {p['entities']:,} entities, "
        f"{p['relations']:,} relations, {p['edges']:,} edges "
        f"({p['duplicates_dropped']:,} duplicate triples dropped) → {kg.path}",
        highlight=False,
        soft_wrap=True,
    )
    return kg


@dataclass
class KGPathsConfig:
    """Print the paths from an entity that follow a relation plan."""

    kg: str = field(
        default="", metadata={"help": "KG directory.", "positional": True, "required": True}
    )
    entity: str = field(
        default="",
        metadata={"help": "Start entity (case-insensitive).", "positional": True, "required": True},
    )
    relations: list[str] = field(
        default_factory=list,
        metadata={"help": "The plan: r1,r2 (~r walks r backwards).", "required": True},
    )
    max_paths: int = field(default=100, metadata={"help": "Print at most this many paths."})


def run_paths(cfg: KGPathsConfig):
    """Follow a relation plan from an entity and print each path."""
    from ragtune.errors import DataError
    from ragtune.kg import KG

    kg = KG.open(cfg.kg)
    i = kg.find_entity(cfg.entity)
    if i is None:
        raise DataError(
            f"entity {cfg.entity!r} is not in {cfg.kg}; names are matched exactly or ignoring "
            "case (see entities.txt in the KG directory)"
        )
    got = kg.follow([i], cfg.relations, max_paths=cfg.max_paths)
    for line in kg.render(got):
        print(line)  # plain text: paths are data, never wrapped or marked up
    if not got.count:
        err.print(f"no path from {kg.entity_names[i]!r} follows {','.join(cfg.relations)}")
    elif got.truncated:
        err.print(f"[yellow]more paths exist; showing the first {got.count:,} (--max-paths)[/]")
    return got


kg_app.command("load")(typer_command(KGLoadConfig, run_load))
kg_app.command("paths")(typer_command(KGPathsConfig, run_paths))
