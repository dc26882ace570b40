"""RAFT units on Ray Data (`--engine ray`): the same units, checkpoint and records, more machines.

    ragtune raft build docs/ --out out/raft --teacher openai:MODEL@URL --engine ray
    ragtune raft build docs/ --out out/raft --teacher openai:MODEL@URL --engine ray --ray-address auto

Only the thread pool of `Builder.run` is replaced. The units not yet in the checkpoint
(`OUT/.raft-work/units.jsonl`) become a Ray Dataset; `map_batches` runs them, one unit per batch,
as Ray tasks, at most `--workers` at a time (the concurrency limit); each worker process builds
one `Builder` per run (teacher client or local model loaded once) and calls the same
`Builder.run_unit`. (Tasks rather than an actor pool: Ray reuses warm worker processes for
tasks, while every dataset starts its actors afresh, seconds each.)
The driver iterates the results as they finish and appends + fsyncs each one to the checkpoint,
exactly as the local engine does, so a killed run resumes with either engine, and `finish` /
`write_outputs` write the same files. Records depend only on the seed and each item's id, never
on where or in which order a unit ran, so they equal the local engine's.

Without `--ray-address` a local Ray instance is started (or the one this process already
started is used); `--ray-address auto` or `ray://HOST:10001` joins a cluster, whose nodes need
ragtune installed and the teacher's key (e.g. OPENAI_API_KEY) in their environment.
"""

from __future__ import annotations

import json
import pickle
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from ragtune.errors import ConfigError, RagtuneError

# What a task reserves: a teacher behind an endpoint mostly waits on HTTP, so many fit on a
# core; a local teacher model computes, so it takes a whole one.
CPUS_ENDPOINT = 0.25
CPUS_LOCAL_MODEL = 1.0
# Ray settings the workers need that the driver's environment has (a cluster's nodes may not).
FORWARD_ENV = ("HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM", "RAGTUNE_CACHE")


def _init(address: str | None):
    """The `ray` module, connected: to `address`, else to this process's instance or a new
    local one (no dashboard)."""
    import os

    from ragtune.extras import require

    ray = require("ray", "--engine ray")
    require("ray.data", "--engine ray")
    if not ray.is_initialized():
        env = {k: os.environ[k] for k in FORWARD_ENV if k in os.environ}
        env.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub, on any node
        ray.init(
            address=address,
            include_dashboard=False,
            ignore_reinit_error=True,
            runtime_env={"env_vars": env},
        )
    return ray


# One Builder per Ray worker process and run: a worker runs its tasks one at a time, and the
# teacher (an endpoint client, or a local model loaded once) serves every unit it is given.
_BUILDERS: dict[str, Any] = {}


def _builder(setup: tuple):
    (ref,) = setup  # nested in a tuple: Ray leaves the reference for us to fetch once
    key = ref.hex()
    b = _BUILDERS.get(key)
    if b is None:
        import ray

        from ragtune.raft.build import Builder

        cfg, pool, source = ray.get(ref)
        _BUILDERS.clear()  # an earlier run's teacher is not needed any more
        # engine=local: in the worker a Builder is the plain one; no units: the driver already
        # checked the pool against every unit before any teacher call
        b = _BUILDERS[key] = Builder(replace(cfg, engine="local"), [], pool, source)
    return b


def _counts(lm) -> tuple[dict, dict]:
    if lm is None:
        return {}, {}
    return lm.usage.as_dict(), dict(getattr(lm, "stats", {}) or {})


def run_batch(batch: dict, setup: tuple) -> dict:
    """The Ray Data task: `Builder.run_unit` on each unit of the batch (one, see run_units)."""
    b = _builder(setup)
    recs, usage, retries = [], [], []
    for blob in batch["unit"]:
        u0, r0 = _counts(b.lm)
        try:
            rec = json.dumps(b.run_unit(pickle.loads(blob)), ensure_ascii=False)
        except RagtuneError as e:
            # handed back as data: Ray's own wrapping of a task's exception loses its type
            # and message (only the traceback text crosses), and the driver re-raises it
            kind = next(c for c in type(e).__mro__ if c.__module__ == "ragtune.errors")
            rec = json.dumps({"error": kind.__name__, "message": str(e)})
        u1, r1 = _counts(b.lm)
        recs.append(rec)
        # this unit's share of the worker's teacher counters, summed again on the driver
        usage.append(json.dumps({k: v - u0.get(k, 0) for k, v in u1.items()}))
        retries.append(json.dumps({k: v - r0.get(k, 0) for k, v in r1.items()}))
    return {"rec": recs, "usage": usage, "retries": retries}


def _reraise(rec: dict) -> None:
    """Raise on the driver the ragtune error a task returned (the local engine's error)."""
    import ragtune.errors as errors

    kind = getattr(errors, rec["error"], RagtuneError)
    try:
        err = kind(rec["message"])
    except TypeError:  # an error class that takes more than its message
        err = RagtuneError(rec["message"])
    raise err


def run_units(
    builder,
    todo: Iterable,
    commit: Callable[[dict], None],
    usage: Counter,
    retries: Counter,
) -> None:
    """Run the `todo` units of `builder` on Ray; `commit(rec)` each result as it arrives."""
    cfg = builder.cfg
    todo = list(todo)
    if not todo:
        return
    if vllm_model(cfg.teacher) is not None:
        return run_units_vllm(builder, todo, commit, usage)
    ray = _init(cfg.ray_address)
    ray.data.DataContext.get_current().enable_progress_bars = False  # ragtune reports progress
    local_model = cfg.teacher != "offline" and not cfg.teacher.startswith("openai:")
    workers = max(1, cfg.workers)
    setup = (ray.put((cfg, builder.picker.pool, builder.source)),)  # stored once, not per task
    ds = ray.data.from_items([{"unit": pickle.dumps(u)} for u in todo])
    ds = ds.map_batches(
        run_batch,
        fn_kwargs={"setup": setup},
        batch_size=1,  # a unit is the checkpoint's grain: each result is committed alone
        concurrency=workers,  # at most this many units (teacher conversations) in flight
        num_cpus=CPUS_LOCAL_MODEL if local_model else CPUS_ENDPOINT,
    )
    for row in ds.iter_rows():
        usage.update(json.loads(row["usage"]))
        retries.update(json.loads(row["retries"]))
        rec = json.loads(row["rec"])
        if "error" in rec:  # a teacher error after all retries stops the run, as locally
            _reraise(rec)
        commit(rec)


# -- a vLLM teacher: Ray Data's LLM processor (ray.data.llm) --------------------------------
# `--teacher vllm:MODEL --engine ray` runs the teacher as vLLM engines on the cluster's GPUs
# instead of behind an endpoint. A processor is a dataset transform (rows of messages in, rows
# of generated text out), not a client a unit can call, so the units run in rounds: each round
# runs every pending unit's `Builder.run_unit` on the driver against the replies known so far;
# a unit that needs a reply not known yet stops, leaving its request; the round's requests go
# through the processor as one dataset, and the next round starts. A unit asks at most three
# things in turn (questions, answers, retries), so three or four rounds finish every unit, and
# each finished unit is committed to the checkpoint as before.
VLLM = "vllm:"
BATCH_SIZE = 64  # conversations per vLLM engine batch


def vllm_model(teacher: str) -> str | None:
    """The model source of a `vllm:MODEL` teacher spec (a HF id or a local directory)."""
    return teacher[len(VLLM) :] if teacher.startswith(VLLM) else None


def check_vllm(cfg) -> None:
    """`--teacher vllm:...` needs --engine ray and Ray Data's LLM processor (ray[llm], vLLM)."""
    if vllm_model(cfg.teacher) is None:
        return
    if not vllm_model(cfg.teacher):
        raise ConfigError("--teacher vllm:MODEL needs the model (a HF model id or a directory)")
    if cfg.engine != "ray":
        raise ConfigError(
            f"--teacher {cfg.teacher} runs in Ray Data's LLM processor (vLLM engines on GPUs): "
            "add --engine ray, or use an endpoint teacher (openai:MODEL@URL)"
        )
    if cfg.scaffold:
        raise ConfigError(
            "--scaffold prefills the teacher's replies, which the vLLM processor's chat "
            "template stage does not continue; drop --scaffold with a vllm: teacher"
        )
    try:
        import ray.data.llm  # noqa: F401
    except ImportError as e:
        raise ConfigError(
            f"--teacher {cfg.teacher} needs Ray Data's LLM processor, which did not import "
            f"({e}); install it with pip install 'ray[llm]' (vLLM; CUDA GPUs)"
        ) from None


class _NeedReplies(Exception):
    """A unit asked for replies this round does not have yet."""


def _request_key(msgs, params: dict) -> str:
    return json.dumps([msgs, params], sort_keys=True, ensure_ascii=False)


class ReplayLM:
    """The teacher's LM inside a round: answers from the replies known, else records what it
    was asked and stops the unit (`_NeedReplies`). Deterministic, so a unit re-run next round
    asks the same things and gets further."""

    can_prefill = False  # like an endpoint: the CoT shape is asked for, not prefilled

    def __init__(self, replies: dict[str, str], asked: dict[str, tuple]) -> None:
        from ragtune.llm.base import Usage

        self.replies, self.asked = replies, asked
        self.usage = Usage()
        self.stats: dict[str, int] = {}

    def generate(self, batch, *, max_tokens=256, temperature=0.0, top_p=1.0, stop=None, seed=None):
        from ragtune.llm.base import Completion

        params = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p}
        if stop:
            params["stop"] = list(stop)
        if seed is not None:
            params["seed"] = seed
        keys = [_request_key(m, params) for m in batch]
        missing = [(k, m) for k, m in zip(keys, batch, strict=True) if k not in self.replies]
        if missing:
            for k, m in missing:
                self.asked[k] = (m, params)
            raise _NeedReplies
        return [Completion(self.replies[k]) for k in keys]


def vllm_processor(cfg):
    """Ray Data's vLLM processor for `cfg.teacher`: rows {key, messages, params} (JSON) in,
    rows {key, text} out; `--workers` vLLM engines (one GPU each)."""
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    config = vLLMEngineProcessorConfig(
        model_source=vllm_model(cfg.teacher),
        concurrency=max(1, cfg.workers),
        batch_size=BATCH_SIZE,
    )
    return build_processor(
        config,
        preprocess=lambda row: {
            "key": row["key"],
            "messages": json.loads(row["messages"]),
            "sampling_params": json.loads(row["params"]),
        },
        postprocess=lambda row: {"key": row["key"], "text": row["generated_text"]},
    )


def run_units_vllm(builder, todo, commit, usage: Counter, processor=None) -> None:
    """The rounds described above; `processor` (dataset -> dataset) defaults to vLLM's."""
    from ragtune.raft.build import Builder
    from ragtune.raft.teacher import LLMTeacher

    cfg = builder.cfg
    pending = list(todo)
    if not pending:
        return
    ray = _init(cfg.ray_address)
    ray.data.DataContext.get_current().enable_progress_bars = False
    processor = processor or vllm_processor(cfg)
    replies: dict[str, str] = {}
    # the driver's own Builder, with the replaying teacher in place of an LLM client
    b = Builder(replace(cfg, engine="local", teacher="offline"), [], builder.picker.pool, {})
    while pending:
        asked: dict[str, tuple] = {}
        b.lm = ReplayLM(replies, asked)
        b.teacher = LLMTeacher(b.lm, few_shot=bool(cfg.few_shot), scaffold=False)
        waiting = []
        for u in pending:
            try:
                rec = b.run_unit(u)
            except _NeedReplies:
                waiting.append(u)
                continue
            commit(rec)
        if waiting and not asked:  # cannot happen: a stopped unit always asked something
            raise RagtuneError("vLLM rounds made no progress; rerun with --engine local")
        if asked:
            rows = [
                {"key": k, "messages": json.dumps(m), "params": json.dumps(p)}
                for k, (m, p) in asked.items()
            ]
            for row in processor(ray.data.from_items(rows)).iter_rows():
                replies[row["key"]] = row["text"]
            usage.update({"requests": len(rows)})
        pending = waiting
