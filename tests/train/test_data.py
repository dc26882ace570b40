"""Training reads what `ragtune raft build` writes: every --format, as jsonl or parquet."""

import json

import pytest

from ragtune.raft.build import Builder, RaftConfig, corpus_units, load_records
from ragtune.train.data import conversations, find_split
from ragtune.train.trainer import TrainConfig, train
from tests.conftest import write_short_api


@pytest.mark.parametrize("output_type", ["jsonl", "parquet"])
@pytest.mark.parametrize(
    "fmt, view", [("chat", "chat"), ("completion", "chat"), ("raw", "chat"), ("raw", "dsf")]
)
def test_train_reads_each_format_raft_build_writes(tmp_path, tiny_model, output_type, fmt, view):
    recs = write_short_api(tmp_path / "api.jsonl")
    data = tmp_path / "raft"
    rc = RaftConfig(
        out=str(data), distractors=2, questions=1, format=[fmt], output_type=output_type
    )
    Builder(rc, *corpus_units([str(recs)], rc)).run()
    counts = json.loads((data / "manifest.json").read_text())["counts"]
    run = dict(model=str(tiny_model), view=view, max_steps=1, save_every=0, threads=1)
    got = train(TrainConfig(data=str(data), out=str(tmp_path / "dir"), **run))
    assert got["examples"] == counts["train"] > 0
    # a split file named directly, in either type
    split = data / fmt / f"train.{output_type}"
    got = train(TrainConfig(data=str(split), out=str(tmp_path / "file"), **run))
    assert got["examples"] == counts["train"]
    # the same targets whatever the format: the completion's stop marker is not trained on
    convs = conversations(find_split(data, view, "train"), view)
    target = "answer" if view == "dsf" else "cot_answer"
    raw = [getattr(r, target) for r in load_records(data)]
    assert sorted(c[-1]["content"] for c in convs) == sorted(raw)
