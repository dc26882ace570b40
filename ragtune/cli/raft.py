"""`ragtune raft build` and `ragtune raft from-qa`."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer
from rich.console import Console

from ragtune.cli.ui import err
from ragtune.config import typer_command
from ragtune.errors import ConfigError
from ragtune.raft.build import RaftConfig

console = Console()

raft_app = typer.Typer(
    help="Build RAFT training data (questions, oracle + distractors, CoT answers).",
    no_args_is_help=True,
)


@dataclass
class RaftBuildConfig(RaftConfig):
    """Build RAFT data from a corpus: a teacher writes questions per chunk and CoT answers."""

    paths: list[str] = field(
        default_factory=list,
        metadata={"help": "Corpus files or folders.", "positional": True, "required": True},
    )


@dataclass
class RaftFromQAConfig(RaftConfig):
    """Build RAFT data from an existing QA dataset (the teacher writes only the CoT)."""

    reader: str = field(
        default="",
        metadata={
            "help": "hotpotqa | pubmedqa | gorilla | generic",
            "positional": True,
            "required": True,
        },
    )
    path: str = field(
        default="", metadata={"help": "The QA file.", "positional": True, "required": True}
    )
    corpus: str | None = field(
        default=None, metadata={"help": "generic: jsonl of {id, text} the oracle_ids point into."}
    )
    api: str | None = field(
        default=None, metadata={"help": "gorilla: the *_api.jsonl pool (default: found beside)."}
    )
    api_fields: list[str] = field(
        default_factory=list,
        metadata={
            "help": "gorilla: keep only these fields of each API record, in this order "
            "(e.g. domain api_name api_call description; default: all)."
        },
    )
    field_chars: int | None = field(
        default=None,
        metadata={"help": "gorilla: cut each field's value to N characters (api_call never)."},
    )
    api_cot: str = field(
        default="call",
        metadata={
            "help": "gorilla: the offline CoT. 'call' quotes the api_call line; 'task' names "
            "the record's domain first and quotes the record from its domain line to its call."
        },
    )


def _run(builder) -> dict:
    from ragtune.cli.ui import job_progress

    with job_progress() as prog:
        task = prog.add_task("units", total=len(builder.units), info="")

        def progress(done: int, total: int, usage: dict) -> None:
            tok = f"{usage.get('total_tokens', 0):,} teacher tokens" if usage else ""
            prog.update(task, completed=done, total=total, info=tok)

        m = builder.run(progress)
    c = m["counts"]
    console.print(
        f"[green]wrote[/] {m['examples']} examples (train {c['train']}, valid {c['valid']}, "
        f"test {c['test']}; oracle kept in {m['oracle_present']}) to {builder.out}; "
        f"resumed {m['units_resumed']} of {m['units']} units; drops: {m['drops'] or 'none'}",
        highlight=False,
    )
    return m


def run_build(cfg: RaftBuildConfig) -> dict:
    """Build RAFT data from a corpus."""
    from ragtune.raft.build import Builder, corpus_units

    units, pool, source = corpus_units(
        cfg.paths, cfg, on_skip=lambda s: err.print(f"[yellow]skipped[/] {s}", highlight=False)
    )
    return _run(Builder(cfg, units, pool, source))


def run_from_qa(cfg: RaftFromQAConfig) -> dict:
    """Build RAFT data from QA data: HotpotQA, PubMedQA, Gorilla APIBench or generic jsonl."""
    from ragtune.raft.build import Builder, qa_units
    from ragtune.raft.readers import read_qa

    kw = {}
    if cfg.reader == "generic" and cfg.corpus:
        kw["corpus"] = cfg.corpus
    if cfg.reader == "gorilla" and cfg.api:
        kw["api_path"] = cfg.api
    if cfg.reader != "gorilla" and (cfg.api_fields or cfg.field_chars or cfg.api_cot != "call"):
        raise ConfigError(
            "--api-fields, --field-chars and --api-cot apply to the gorilla reader only"
        )
    if cfg.reader == "gorilla":
        kw["cot"] = cfg.api_cot
        if cfg.api_fields:
            kw["api_fields"] = cfg.api_fields
        if cfg.field_chars is not None:
            if cfg.field_chars < 20:
                raise ConfigError(f"--field-chars {cfg.field_chars} is too small; use 20 or more")
            kw["field_chars"] = cfg.field_chars
    items, pool = read_qa(cfg.reader, cfg.path, **kw)
    units, pool = qa_units(items, pool, cfg)
    source = {"reader": cfg.reader, "path": cfg.path, "items": len(items), **kw}
    return _run(Builder(cfg, units, pool, source))


raft_app.command("build")(typer_command(RaftBuildConfig, run_build))
raft_app.command("from-qa")(typer_command(RaftFromQAConfig, run_from_qa))
