"""The two RAFT data jobs: `raft build` (a corpus) and `raft from-qa` (an existing QA dataset).

    import ragtune
    m = ragtune.build_raft(ragtune.RaftBuildConfig(paths=["docs/api.jsonl"], out="out/raft"))
    m["counts"]                       # {"train": ..., "valid": ..., "test": ...}

Each is a config dataclass (the CLI's `--help` and `--config` come from it) and one function
that takes it whole; `progress(done, total, teacher_usage)` is called as units finish.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ragtune.errors import ConfigError
from ragtune.raft.build import RaftConfig

Progress = Callable[[int, int, dict], None]


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

    def reader_options(self) -> dict[str, Any]:
        """The keyword arguments of `read_qa` this config asks for (checked)."""
        kw: dict[str, Any] = {}
        if self.reader == "generic" and self.corpus:
            kw["corpus"] = self.corpus
        if self.reader != "gorilla" and (
            self.api_fields or self.field_chars or self.api_cot != "call"
        ):
            raise ConfigError(
                "--api-fields, --field-chars and --api-cot apply to the gorilla reader only"
            )
        if self.reader == "gorilla":
            if self.api:
                kw["api_path"] = self.api
            kw["cot"] = self.api_cot
            if self.api_fields:
                kw["api_fields"] = self.api_fields
            if self.field_chars is not None:
                if self.field_chars < 20:
                    raise ConfigError(
                        f"--field-chars {self.field_chars} is too small; use 20 or more"
                    )
                kw["field_chars"] = self.field_chars
        return kw


def build_raft(
    cfg: RaftBuildConfig, progress: Progress | None = None, on_skip=None
) -> dict[str, Any]:
    """Build RAFT data from a corpus into `cfg.out`; returns the manifest."""
    from ragtune.raft.build import Builder, corpus_units

    units, pool, source = corpus_units(cfg.paths, cfg, on_skip=on_skip)
    return Builder(cfg, units, pool, source).run(progress)


def raft_from_qa(cfg: RaftFromQAConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Build RAFT data from QA data (HotpotQA, PubMedQA, Gorilla APIBench, generic jsonl)."""
    from ragtune.raft.build import Builder, qa_units
    from ragtune.raft.readers import read_qa

    kw = cfg.reader_options()
    items, pool = read_qa(cfg.reader, cfg.path, **kw)
    units, pool = qa_units(items, pool, cfg)
    source = {"reader": cfg.reader, "path": cfg.path, "items": len(items), **kw}
    return Builder(cfg, units, pool, source).run(progress)
