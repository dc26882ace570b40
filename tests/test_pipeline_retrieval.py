"""The pipeline's retrieval stages: retriever (tuned on the RAFT build's own questions, no second
generation pass), reranker (negatives from the tuned embedder), reindex (OUT/index re-embedded),
and eval on the re-embedded index with the pipeline's reranker."""

from __future__ import annotations

import pytest
import yaml

from ragtune.errors import ConfigError
from tests.conftest import write_short_api

pytest.importorskip("datasets")

QUICK = {
    "epochs": 1,
    "batch_size": 4,
    "negatives": 1,
    "neg_ranks": [1, 5],
    "max_length": 32,
    "threads": 1,
}


def _file(tmp_path, **stages) -> str:
    api = write_short_api(tmp_path / "api.jsonl", n=12)
    cfg = {
        "out": str(tmp_path / "run"),
        "index": {"paths": [str(api)], "chunk_mode": "record"},
        "raft": {"distractors": 2, "questions": 1},
        **stages,
    }
    f = tmp_path / "pipeline.yaml"
    f.write_text(yaml.safe_dump(cfg))
    return str(f)


def test_stages_are_linked(tmp_path):
    from ragtune.config import load_config
    from ragtune.pipeline import PipelineConfig, plan

    out = tmp_path / "run"
    f = _file(
        tmp_path,
        retriever=QUICK,
        reranker=QUICK,
        reindex={},
        eval={"rerank": "cross", "k": 2},
    )
    stages = {s.name: s for s in plan(load_config(PipelineConfig, f))}
    assert list(stages) == ["index", "raft", "retriever", "reranker", "reindex", "eval"]
    assert stages["retriever"].cfg.data == str(out / "raft")
    assert stages["reranker"].cfg.miner == str(out / "retriever")  # the first stage it reranks
    assert stages["reranker"].needs == ["raft", "retriever"]
    assert stages["reindex"].cfg.index == str(out / "index")
    assert stages["reindex"].cfg.embedder == str(out / "retriever")
    assert stages["eval"].cfg.index == str(out / "reindex")
    assert stages["eval"].cfg.rerank == f"cross:{out / 'reranker'}"
    assert {"reindex", "reranker"} <= set(stages["eval"].needs)


def test_missing_stages_are_named(tmp_path):
    from ragtune.config import load_config
    from ragtune.pipeline import PipelineConfig, plan

    with pytest.raises(ConfigError, match="stage 'reindex' needs stage 'retriever'"):
        plan(load_config(PipelineConfig, _file(tmp_path, reindex={})))
    with pytest.raises(ConfigError, match="stage 'eval' needs stage 'reranker'"):
        plan(load_config(PipelineConfig, _file(tmp_path, eval={"rerank": "cross"})))
    with pytest.raises(ConfigError, match=r"retriever: .*unknown key\(s\) epochz"):
        plan(load_config(PipelineConfig, _file(tmp_path, retriever={"epochz": 1})))


def test_corpus_pipeline_tunes_on_the_teachers_questions_and_reembeds(tmp_path):
    """A plain corpus: the offline teacher's RAFT questions train the embedder; reindex writes
    OUT/reindex with it; a second run skips both."""
    import json

    from ragtune.config import load_config
    from ragtune.pipeline import PipelineConfig, run_pipeline
    from ragtune.retrieval.index import Index

    f = _file(tmp_path, retriever=QUICK, reindex={})
    cfg = load_config(PipelineConfig, f)
    status = run_pipeline(cfg)
    assert status == {s: "ran" for s in ("index", "raft", "retriever", "reindex")}
    run = tmp_path / "run"
    s = json.loads((run / "retriever" / "ragtune_train.json").read_text())
    train_q = [json.loads(x)["question"] for x in open(run / "raft" / "raw" / "train.jsonl")]
    assert s["questions"] == len(train_q) > 0
    tuned = Index.load(run / "reindex")
    assert tuned.params["dense"]["embedder"] == str((run / "retriever").resolve())
    assert len(tuned.chunks) == len(Index.load(run / "index").chunks)
    assert tuned.hits(train_q[0], 1, "dense")
    assert set(run_pipeline(cfg).values()) == {"skipped"}
