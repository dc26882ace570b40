"""Run RoG's comparison on a question split and score it.

ragtune rog predict --kg out/kg --data out/rog-data --adapter out/rog/adapter --out out/rog-eval

For each mode (LM only, all paths without planning, RoG free, RoG constrained) it writes
`predictions-{mode}.jsonl` (one row per question, appended as batches finish so an interrupted
run resumes where it stopped), then `results.json` and `results.md` with every metric.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ragtune.rog.args import RogArgs, build_rog
from ragtune.rog.metrics import answer_supported, evaluate_rows, read_predictions
from ragtune.store import read_log

MODE_LABELS = {
    "lm": "LM only (no graph)",
    "paths": "all paths ≤ h hops (no planning)",
    "rog": "RoG, free decoding",
    "constrained": "RoG, constrained decoding",
    "grounded": "RoG, constrained plans + answers from path ends",
}


@dataclass
class RogEvalConfig(RogArgs):
    """Predict and score a question split in the four RoG configurations."""

    kg: str = field(
        default="", metadata={"help": "KG directory (ragtune kg load).", "required": True}
    )
    data: str = field(
        default="", metadata={"help": "Data dir of `ragtune rog build-data`.", "required": True}
    )
    out: str = field(default="", metadata={"help": "Output directory.", "required": True})
    modes: list[str] = field(
        default_factory=lambda: ["lm", "paths", "rog", "constrained", "grounded"],
        metadata={"help": "Which of lm, paths, rog, constrained, grounded to run."},
    )
    split: str = field(default="test", metadata={"help": "Question split to answer."})
    limit: int = field(default=0, metadata={"help": "Answer only the first N questions (0: all)."})
    batch_size: int = field(default=8, metadata={"help": "Questions per batch."})


def predict(cfg: RogEvalConfig, progress=None) -> dict:
    from ragtune.kg import KG
    from ragtune.rog.data import load_split
    from ragtune.rog.pipeline import MODES

    bad = [m for m in cfg.modes if m not in MODES]
    if bad:
        from ragtune.errors import ConfigError

        raise ConfigError(f"unknown mode(s) {bad}: use {', '.join(MODES)}")
    qs = load_split(cfg.data, cfg.split)
    if cfg.limit:
        qs = qs[: cfg.limit]
    rog = build_rog(cfg, KG.open(cfg.kg), need_free_decoding="rog" in cfg.modes)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"questions": len(qs), "split": cfg.split, "modes": {}}
    ids = {q.id for q in qs}
    _check_same_run(out, cfg)
    for mode in cfg.modes:
        path = out / f"predictions-{mode}.jsonl"
        done = {r["id"] for r in read_log(path)}
        todo = [q for q in qs if q.id not in done]
        if progress:
            progress(mode, len(qs) - len(todo), len(qs))
        with open(path, "a", encoding="utf-8") as f:
            for i in range(0, len(todo), cfg.batch_size):
                batch = todo[i : i + cfg.batch_size]
                answers = rog.ask_many(
                    [q.question for q in batch],
                    [q.entities or None for q in batch],
                    mode=mode,
                    exclude_entities=[
                        q.excludes() if cfg.exclude_entities is None else cfg.exclude_entities
                        for q in batch
                    ],
                )
                for q, a in zip(batch, answers, strict=True):
                    row = {
                        "id": q.id,
                        "question": q.question,
                        "prediction": "\n".join(a.answers),
                        "ground_truth": q.answers,
                        "paths": a.rendered,
                        "plans": a.plans,
                        "supported": answer_supported(
                            a.answers, q.answers, [p[-1] for p in a.paths]
                        )
                        if mode != "lm"
                        else None,
                    }
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                f.flush()
                if progress:
                    progress(mode, len(qs) - len(todo) + i + len(batch), len(qs))
        rows = [r for r in read_predictions(path) if r["id"] in ids]
        results["modes"][mode] = evaluate_rows(rows)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(results_table(results) + "\n")
    return results


# Settings that change predictions: a resumed run must use the same ones, or its rows would
# mix two runs (limit, modes, batch size and threads only change which/how fast rows come).
_RUN_KEYS = (
    "kg",
    "data",
    "model",
    "adapter",
    "planner",
    "planner_adapter",
    "split",
    "hops",
    "max_paths",
    "beams",
    "top_plans",
    "exclude_entities",
    "planner_kind",
    "ranker",
    "plan_margin",
    "max_relation_paths",
)


def _check_same_run(out: Path, cfg: RogEvalConfig) -> None:
    from dataclasses import asdict

    from ragtune.store import check_same_run

    mine = {k: v for k, v in asdict(cfg).items() if k in _RUN_KEYS}
    check_same_run(out, mine, "predictions-*.jsonl")


def results_table(results: dict) -> str:
    head = (
        "| configuration | Hits@1 (true) | Hit (RoG's 'Hits@1') | F1 | precision | recall "
        "| plan validity | answers on a path |\n|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for mode, m in results["modes"].items():

        def f(k, m=m):
            return f"{m[k]:.1f}" if k in m else "–"

        lines.append(
            f"| {MODE_LABELS.get(mode, mode)} | {f('hit1')} | {f('hit')} | {f('f1')} | "
            f"{f('precision')} | {f('recall')} | {f('plan_validity')} | {f('supported')} |"
        )
    return "\n".join(lines)
