"""The whole flow as one job: documents (or QA data) → index → RAFT data → (a tuned embedder and
reranker, the index re-embedded with it) → DSF and RAFT adapters → evaluation → report.html; and
for a knowledge graph: kg load → RoG data → RoG adapter → scored predictions.

    ragtune pipeline configs/demo-raft.yaml            # every stage the file names
    ragtune pipeline configs/demo-raft.yaml --from eval --until eval

In Python: `ragtune.run_pipeline(ragtune.load_config(ragtune.PipelineConfig, FILE))`.

A config file names the stages to run, each as the fields of that stage's own job config (the
same dataclass as its command); the pipeline fills in the paths that link the stages (each
stage's output is `OUT/<stage>`). Each finished stage records the hash of its inputs (its config,
the contents of its input files, the hashes of the stages it reads) in `OUT/.pipeline/<stage>.json`;
a stage whose record matches is skipped, so a second run does nothing and a changed setting reruns
that stage and every stage after it. A stage that fails or is interrupted resumes where it stopped
(each job resumes on its own: RAFT units, training checkpoints, evaluation cells).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError

# (stage, what it needs first), in run order
STAGES = (
    "index",
    "raft",
    "retriever",
    "reranker",
    "reindex",
    "dsf",
    "raft_train",
    "eval",
    "kg",
    "rog_data",
    "rog_train",
    "rog_planner",
    "rog_predict",
)


@dataclass
class PipelineConfig:
    """Run the whole flow from one file: each key is a stage and holds that job's fields."""

    out: str = field(default="", metadata={"help": "Directory of every stage's output."})
    index: dict | None = field(
        default=None, metadata={"help": "IndexConfig fields (out is OUT/index)."}
    )
    raft: dict | None = field(
        default=None,
        metadata={
            "help": "RaftBuildConfig fields (paths default to the index's), or with `reader` "
            "and `path` RaftFromQAConfig fields (out is OUT/raft)."
        },
    )
    retriever: dict | None = field(
        default=None,
        metadata={
            "help": "RetrieverTrainConfig fields: the embedder tuned on the RAFT data's "
            "questions (data is OUT/raft, out OUT/retriever)."
        },
    )
    reranker: dict | None = field(
        default=None,
        metadata={
            "help": "RerankerTrainConfig fields: a cross-encoder (out OUT/reranker; negatives "
            "mined with the tuned embedder when `retriever` runs)."
        },
    )
    reindex: dict | None = field(
        default=None,
        metadata={
            "help": "ReembedConfig fields: OUT/index re-embedded with OUT/retriever into "
            "OUT/reindex, the index eval then uses."
        },
    )
    dsf: dict | None = field(
        default=None, metadata={"help": "TrainConfig fields for the DSF adapter (view dsf)."}
    )
    raft_train: dict | None = field(
        default=None, metadata={"help": "TrainConfig fields for the RAFT adapter (view chat)."}
    )
    eval: dict | None = field(
        default=None,
        metadata={"help": "EvalConfig fields; the adapters and the index come from the stages."},
    )
    kg: dict | None = field(default=None, metadata={"help": "KGLoadConfig fields (files, ...)."})
    rog_data: dict | None = field(
        default=None, metadata={"help": "BuildDataConfig fields (kg is OUT/kg)."}
    )
    rog_train: dict | None = field(default=None, metadata={"help": "RogTrainConfig fields."})
    rog_planner: dict | None = field(
        default=None,
        metadata={
            "help": "PlannerTrainConfig fields: a rank-embed planner trained on OUT/rog_data; "
            "rog_predict then plans with it (planner_kind rank-embed unless set)."
        },
    )
    rog_predict: dict | None = field(default=None, metadata={"help": "RogEvalConfig fields."})


@dataclass
class PipelineRun:
    """Run a pipeline file: every stage it names, skipping those whose output is up to date."""

    file: str = field(
        default="",
        metadata={"help": "The pipeline YAML file.", "positional": True, "required": True},
    )
    start: str | None = field(
        default=None, metadata={"help": "First stage to run.", "flag": "--from"}
    )
    until: str | None = field(default=None, metadata={"help": "Last stage to run."})
    force: bool = field(default=False, metadata={"help": "Rerun stages even when up to date."})


@dataclass
class Stage:
    name: str
    job: Callable[..., Any]
    cfg: Any  # the job's config dataclass, paths filled in
    inputs: list[str]  # files or folders whose contents the stage reads
    needs: list[str]  # earlier stages whose outputs it reads
    done: str  # a file inside `out/<stage>` that exists once the stage finished


def _load(cls, values: dict, where: str, **fixed):
    """`cls` from a stage's YAML mapping plus the paths the pipeline fills in."""
    from ragtune.config import load_config

    clash = sorted(set(values) & set(fixed))
    if clash:
        raise ConfigError(
            f"{where}: {', '.join(clash)} is set by the pipeline (each stage writes OUT/<stage> "
            "and reads the stages before it); remove it from the file"
        )
    try:
        return load_config(cls, None, **values, **fixed)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def plan(cfg: PipelineConfig) -> list[Stage]:
    """The stages `cfg` names, with their configs linked (an error names the missing stage)."""
    from ragtune.corpus.build import IndexConfig, build_index
    from ragtune.eval.compare import EvalConfig, evaluate
    from ragtune.raft.jobs import RaftBuildConfig, RaftFromQAConfig, build_raft, raft_from_qa
    from ragtune.train.trainer import TrainConfig, train

    if not cfg.out:
        raise ConfigError("the pipeline file needs `out:` (the directory of every stage's output)")
    out = Path(cfg.out)
    stages: list[Stage] = []
    given = {s for s in STAGES if getattr(cfg, s) is not None}

    def need(stage: str, what: str) -> None:
        if what not in given:
            raise ConfigError(f"stage {stage!r} needs stage {what!r}; add `{what}:` to the file")

    if cfg.index is not None:
        c = _load(IndexConfig, cfg.index, "index", out=str(out / "index"))
        stages.append(Stage("index", build_index, c, list(c.paths), [], "params.json"))
    if cfg.raft is not None:
        values = dict(cfg.raft)
        if "reader" in values:
            c = _load(RaftFromQAConfig, values, "raft", out=str(out / "raft"))
            inputs = [p for p in (c.path, c.corpus, c.api) if p]
            stages.append(Stage("raft", raft_from_qa, c, inputs, [], "manifest.json"))
        else:
            if "paths" not in values:
                need("raft", "index")
                values["paths"] = list(cfg.index["paths"])
            c = _load(RaftBuildConfig, values, "raft", out=str(out / "raft"))
            stages.append(Stage("raft", build_raft, c, list(c.paths), [], "manifest.json"))
    stages += _retrieval_stages(cfg, out, given, need)
    for name, view in (("dsf", "dsf"), ("raft_train", "chat")):
        values = getattr(cfg, name)
        if values is None:
            continue
        need(name, "raft")
        values = {"view": view, **values}
        c = _load(TrainConfig, values, name, data=str(out / "raft"), out=str(out / name))
        stages.append(Stage(name, train, c, [], ["raft"], "adapter/adapter_config.json"))
    if cfg.eval is not None:
        need("eval", "raft")
        fixed: dict[str, Any] = {"data": str(out / "raft"), "out": str(out / "eval")}
        needs = ["raft"]
        for stage, key in (("dsf", "dsf_adapter"), ("raft_train", "raft_adapter")):
            if stage in given:
                fixed[key] = str(out / stage / "adapter")
                needs.append(stage)
        if "index" in given and "index" in {f.name for f in dataclasses.fields(EvalConfig)}:
            # evaluate the RAG system the user runs: the re-embedded index when there is one
            which = "reindex" if "reindex" in given else "index"
            fixed["index"] = str(out / which)
            needs.append(which)
        values = dict(cfg.eval)
        if str(values.get("rerank", "")).strip() == "cross":
            need("eval", "reranker")  # `rerank: cross` names the pipeline's own reranker
            values["rerank"] = f"cross:{out / 'reranker'}"
        if str(values.get("rerank", "")).startswith(f"cross:{out / 'reranker'}"):
            needs.append("reranker")
        c = _load(EvalConfig, values, "eval", **fixed)
        stages.append(Stage("eval", evaluate, c, [], needs, "results.json"))
    stages += _rog_stages(cfg, out, given, need)
    return stages


def _retrieval_stages(cfg: PipelineConfig, out: Path, given: set[str], need) -> list[Stage]:
    """retriever (tuned embedder), reranker (cross-encoder), reindex (OUT/index re-embedded).

    Their pairs are the RAFT data's train split: a QA dataset's real questions (`raft from-qa`)
    or, for a plain corpus, the teacher's generated ones (`raft build`), with no second
    generation pass. The index stage stays first and untouched; reindex writes the tuned copy.
    """
    from ragtune.retrieval.reembed import ReembedConfig, reembed_index
    from ragtune.retrieval.train import (
        RerankerTrainConfig,
        RetrieverTrainConfig,
        train_reranker,
        train_retriever,
    )

    stages: list[Stage] = []
    if cfg.retriever is not None:
        need("retriever", "raft")
        c = _load(
            RetrieverTrainConfig,
            cfg.retriever,
            "retriever",
            data=str(out / "raft"),
            out=str(out / "retriever"),
        )
        stages.append(Stage("retriever", train_retriever, c, [], ["raft"], "modules.json"))
    if cfg.reranker is not None:
        need("reranker", "raft")
        values = dict(cfg.reranker)
        needs = ["raft"]
        if "retriever" in given and "miner" not in values:
            values["miner"] = str(out / "retriever")  # negatives from the first stage it reranks
            needs.append("retriever")
        c = _load(
            RerankerTrainConfig,
            values,
            "reranker",
            data=str(out / "raft"),
            out=str(out / "reranker"),
        )
        stages.append(Stage("reranker", train_reranker, c, [], needs, "config.json"))
    if cfg.reindex is not None:
        need("reindex", "index")
        need("reindex", "retriever")
        c = _load(
            ReembedConfig,
            cfg.reindex,
            "reindex",
            index=str(out / "index"),
            embedder=str(out / "retriever"),
            out=str(out / "reindex"),
        )
        stages.append(Stage("reindex", reembed_index, c, [], ["index", "retriever"], "params.json"))
    return stages


def _rog_stages(cfg: PipelineConfig, out: Path, given: set[str], need) -> list[Stage]:
    stages: list[Stage] = []
    if cfg.kg is not None:
        from ragtune.kg.jobs import KGLoadConfig, load_kg

        c = _load(KGLoadConfig, cfg.kg, "kg", out=str(out / "kg"))
        stages.append(Stage("kg", load_kg, c, list(c.files), [], "params.json"))
    if cfg.rog_data is not None:
        from ragtune.rog.data import BuildDataConfig, build_rog_data

        need("rog_data", "kg")
        c = _load(
            BuildDataConfig, cfg.rog_data, "rog_data", kg=str(out / "kg"), out=str(out / "rog_data")
        )
        stages.append(Stage("rog_data", build_rog_data, c, [c.questions], ["kg"], "manifest.json"))
    if cfg.rog_train is not None:
        from ragtune.rog.train import RogTrainConfig, train_rog

        need("rog_train", "rog_data")
        c = _load(
            RogTrainConfig,
            cfg.rog_train,
            "rog_train",
            data=str(out / "rog_data"),
            out=str(out / "rog_train"),
        )
        stages.append(
            Stage("rog_train", train_rog, c, [], ["rog_data"], "adapter/adapter_config.json")
        )
    if cfg.rog_planner is not None:
        from ragtune.rog.rank import PlannerTrainConfig, train_planner

        need("rog_planner", "rog_data")
        c = _load(
            PlannerTrainConfig,
            cfg.rog_planner,
            "rog_planner",
            kg=str(out / "kg"),
            data=[str(out / "rog_data")],
            out=str(out / "rog_planner"),
        )
        stages.append(
            Stage("rog_planner", train_planner, c, [], ["kg", "rog_data"], "modules.json")
        )
    if cfg.rog_predict is not None:
        from ragtune.rog.evaluate import RogEvalConfig, predict

        need("rog_predict", "rog_data")
        fixed = {
            "kg": str(out / "kg"),
            "data": str(out / "rog_data"),
            "out": str(out / "rog_predict"),
        }
        needs = ["kg", "rog_data"]
        if "rog_train" in given:
            fixed["adapter"] = str(out / "rog_train" / "adapter")
            needs.append("rog_train")
        if "rog_planner" in given:
            # the planner this file trains plans, unless the file asks for another kind
            fixed["ranker"] = str(out / "rog_planner")
            needs.append("rog_planner")
            if "planner_kind" not in cfg.rog_predict:
                fixed["planner_kind"] = "rank-embed"
        c = _load(RogEvalConfig, cfg.rog_predict, "rog_predict", **fixed)
        stages.append(Stage("rog_predict", predict, c, [], needs, "results.json"))
    return stages


def _content_hash(paths: list[str]) -> str:
    """sha256 over the files under `paths` (relative names and bytes, sorted): where the files
    sit does not matter, what they hold does."""
    h = hashlib.sha256()
    for p in paths:
        root = Path(p)
        if not root.exists():
            raise ConfigError(f"input {p} does not exist; check the path in the pipeline file")
        files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
        for f in files:
            h.update(str(f.relative_to(root) if root.is_dir() else f.name).encode() + b"\0")
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def _settings(cfg: Any) -> dict:
    """The config as it decides the output: paths under OUT are links, not inputs."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("out",)}


StageRunner = Callable[[Stage], Any]


def run_pipeline(
    cfg: PipelineConfig,
    *,
    start: str | None = None,
    until: str | None = None,
    force: bool = False,
    runner: StageRunner | None = None,
    on_event: Callable[[str, str], None] | None = None,
) -> dict[str, str]:
    """Run the stages of `cfg` in order; returns {stage: "ran" | "skipped"}.

    `runner(stage)` runs one stage (default: `stage.job(stage.cfg)`); the CLI passes one that
    draws each job's progress bar. `on_event(stage, "ran"|"skipped"|"start")` reports.
    """
    stages = plan(cfg)
    names = [s.name for s in stages]
    for flag, v in (("--from", start), ("--until", until)):
        if v is not None and v not in names:
            raise ConfigError(f"{flag} {v!r}: the file's stages are {', '.join(names)}")
    lo = names.index(start) if start else 0
    hi = names.index(until) if until else len(names) - 1
    out = Path(cfg.out)
    marks = out / ".pipeline"
    hashes: dict[str, str] = {}
    status: dict[str, str] = {}
    from ragtune.store import atomic_write, remove_dir

    for i, st in enumerate(stages):
        h = hashlib.sha256(
            json.dumps(
                {
                    "stage": st.name,
                    "settings": _settings(st.cfg),
                    "inputs": _content_hash(st.inputs) if st.inputs else None,
                    "needs": {n: hashes.get(n) for n in st.needs},
                },
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()
        hashes[st.name] = h
        mark = marks / f"{st.name}.json"
        rec = json.loads(mark.read_text(encoding="utf-8")) if mark.exists() else {}
        if not lo <= i <= hi:
            continue
        if rec.get("hash") == h and rec.get("done") and (out / st.name / st.done).exists():
            if not force:
                status[st.name] = "skipped"
                if on_event:
                    on_event(st.name, "skipped")
                continue
        if rec.get("hash") != h or force:
            # made from other inputs (or --force): start the stage afresh. The same inputs
            # and not done means it failed or was interrupted: its job resumes in place.
            remove_dir(out / st.name)
        if on_event:
            on_event(st.name, "start")
        marks.mkdir(parents=True, exist_ok=True)
        atomic_write(mark, json.dumps({"hash": h, "done": False}, indent=2) + "\n")
        t0 = time.time()
        (runner or (lambda s: s.job(s.cfg)))(st)
        atomic_write(
            mark,
            json.dumps({"hash": h, "done": True, "seconds": round(time.time() - t0, 1)}, indent=2)
            + "\n",
        )
        status[st.name] = "ran"
        if on_event:
            on_event(st.name, "ran")
    return status
