"""`ragtune pipeline`: documents → index → RAFT data → adapters → eval from one file; a second run
skips every stage; a changed setting reruns that stage and those after it; --from/--until."""

from __future__ import annotations

import json

import pytest
import yaml

from ragtune.cli import main
from ragtune.errors import ConfigError
from tests.conftest import write_short_api


def _write(tmp_path, tiny_model, **over) -> str:
    api = write_short_api(tmp_path / "api.jsonl", n=12)
    train = {"model": str(tiny_model), "max_steps": 1, "batch_tokens": 1024, "save_every": 0}
    cfg = {
        "out": str(tmp_path / "run"),
        "index": {"paths": [str(api)], "chunk_mode": "record"},
        "raft": {"distractors": 2, "questions": 1},
        "dsf": dict(train, threads=1),
        "raft_train": dict(train, threads=1),
        "eval": {
            "model": str(tiny_model),
            "k": 2,
            "sweep": [0],
            "limit": 2,
            "max_tokens": 4,
            "threads": 1,
        },
    }
    for k, v in over.items():
        cfg[k] = {**cfg[k], **v}
    f = tmp_path / "pipeline.yaml"
    f.write_text(yaml.safe_dump(cfg))
    return str(f)


def _marks(tmp_path) -> dict[str, str]:
    d = tmp_path / "run" / ".pipeline"
    return {p.stem: json.loads(p.read_text())["hash"] for p in sorted(d.glob("*.json"))}


def test_pipeline_runs_every_stage_then_skips_them(tmp_path, tiny_model, capsys):
    f = _write(tmp_path, tiny_model)
    main(["pipeline", f])
    run = tmp_path / "run"
    assert (run / "index" / "params.json").exists()
    assert (run / "raft" / "manifest.json").exists()
    for stage in ("dsf", "raft_train"):
        info = json.loads((run / stage / "adapter" / "ragtune.json").read_text())
        assert info["prompt_format"] == {"dsf": "dsf", "raft_train": "raft"}[stage]
    res = json.loads((run / "eval" / "results.json").read_text())
    assert set(res["main"]) >= {"base", "base+rag", "dsf", "dsf+rag", "raft"}
    first = _marks(tmp_path)
    assert list(first) == sorted(["index", "raft", "dsf", "raft_train", "eval"])
    capsys.readouterr()

    main(["pipeline", f])  # nothing changed: every stage is up to date
    out = capsys.readouterr().out
    assert "ran nothing" in out and out.count("(skipped)") == 5

    # a changed eval setting reruns eval only; a changed RAFT setting reruns it and what follows
    from ragtune.config import load_config
    from ragtune.pipeline import PipelineConfig, run_pipeline

    f2 = _write(tmp_path, tiny_model, eval={"limit": 1})
    assert run_pipeline(load_config(PipelineConfig, f2)) == {
        "index": "skipped",
        "raft": "skipped",
        "dsf": "skipped",
        "raft_train": "skipped",
        "eval": "ran",
    }
    f3 = _write(tmp_path, tiny_model, raft={"distractors": 1})
    status = run_pipeline(load_config(PipelineConfig, f3), until="raft")
    assert status == {"index": "skipped", "raft": "ran"}
    assert _marks(tmp_path)["dsf"] == first["dsf"]  # not reached by --until: left as it was


def test_pipeline_errors_name_the_stage_and_the_fix(tmp_path, tiny_model):
    from ragtune.config import load_config
    from ragtune.pipeline import PipelineConfig, plan, run_pipeline

    f = _write(tmp_path, tiny_model, dsf={"epochz": 2})
    with pytest.raises(ConfigError, match=r"dsf: .*unknown key\(s\) epochz"):
        plan(load_config(PipelineConfig, f))
    f = _write(tmp_path, tiny_model, raft={"out": "elsewhere"})
    with pytest.raises(ConfigError, match="raft: out is set by the pipeline"):
        plan(load_config(PipelineConfig, f))
    cfg = load_config(PipelineConfig, _write(tmp_path, tiny_model))
    with pytest.raises(ConfigError, match="--from 'trian'"):
        run_pipeline(cfg, start="trian")
    cfg.raft = None
    with pytest.raises(ConfigError, match="stage 'dsf' needs stage 'raft'"):
        plan(cfg)


def test_demo_rog_file_plans_with_the_planner_it_trains():
    """configs/demo-rog.yaml (make demo): rog_predict ranks plans with OUT/rog_planner."""
    from ragtune.config import load_config
    from ragtune.pipeline import PipelineConfig, plan

    stages = {s.name: s for s in plan(load_config(PipelineConfig, "configs/demo-rog.yaml"))}
    assert list(stages) == ["kg", "rog_data", "rog_planner", "rog_predict"]
    pred = stages["rog_predict"]
    assert pred.cfg.planner_kind == "rank-embed"
    assert pred.cfg.ranker.endswith("rog/rog_planner") and "rog_planner" in pred.needs
    assert stages["rog_planner"].cfg.data == [stages["rog_data"].cfg.out]


def test_rog_stages_train_the_planner_and_predict_with_it(tmp_path, tiny_model, capsys):
    """kg -> rog_data -> rog_planner -> rog_predict from one file; a kind the file names wins."""
    from ragtune.config import load_config
    from ragtune.examples.catalog import write_catalog
    from ragtune.pipeline import PipelineConfig, plan

    kb, qs = write_catalog(tmp_path / "films", n_films=20)
    cfg = {
        "out": str(tmp_path / "run"),
        "kg": {"files": [str(kb)]},
        "rog_data": {"questions": str(qs), "test": 0.2, "seed": 0},
        "rog_planner": {"epochs": 1, "limit": 40, "threads": 1},
        "rog_predict": {
            "model": str(tiny_model),
            "limit": 2,
            "modes": ["grounded"],
            "top_plans": 1,
            "threads": 1,
        },
    }
    f = tmp_path / "rog.yaml"
    f.write_text(yaml.safe_dump(cfg))
    main(["pipeline", str(f)])
    run = tmp_path / "run"
    summary = json.loads((run / "rog_planner" / "ragtune_planner.json").read_text())
    assert summary["kind"] == "rank-embed" and summary["steps"] >= 1
    assert "grounded" in json.loads((run / "rog_predict" / "results.json").read_text())["modes"]
    rows = [
        json.loads(x)
        for x in (run / "rog_predict" / "predictions-grounded.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 2 and all(len(r["plans"]) >= 1 for r in rows)
    assert "(skipped)" not in capsys.readouterr().out

    cfg["rog_predict"]["planner_kind"] = "lm"  # the file's own kind is kept
    f.write_text(yaml.safe_dump(cfg))
    pred = [s for s in plan(load_config(PipelineConfig, str(f))) if s.name == "rog_predict"][0]
    assert pred.cfg.planner_kind == "lm"
