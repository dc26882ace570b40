"""`--engine ray`: RAFT units on Ray Data (a local Ray instance, 2 CPUs) give the local engine's
records, through teacher faults and an interrupted run resumed from the same checkpoint."""

import json

import pytest

from ragtune.errors import ConfigError, LLMError
from ragtune.examples import GLIMMERDB
from ragtune.raft.jobs import RaftBuildConfig, RaftFromQAConfig, build_raft, raft_from_qa
from ragtune.testing import fake_teacher_reply
from ragtune.testing_server import FakeOpenAIServer

ray = pytest.importorskip("ray", reason="the [ray] extra: pip install 'ragtune[ray]'")

API = GLIMMERDB / "api.jsonl"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def rows(out):
    return [
        json.loads(line)
        for s in ("train", "valid", "test")
        for line in (out / "raw" / f"{s}.jsonl").read_text().splitlines()
    ]


def files(out):
    """Every dataset file ragtune writes, by path: the formats as well as the raw records."""
    return {
        p.relative_to(out).as_posix(): p.read_text()
        for fmt in ("chat", "completion", "raw")
        for p in sorted((out / fmt).glob("*.jsonl"))
    }


def test_ray_engine_gives_the_local_records_through_faults_and_a_resume(tmp_path):
    kw = dict(paths=[str(API)], distractors=3, questions=2, workers=3)
    with FakeOpenAIServer(reply=fake_teacher_reply) as srv:
        teacher = f"openai:fake@{srv.base_url}"
        local = build_raft(RaftBuildConfig(out=str(tmp_path / "local"), teacher=teacher, **kw))

    def stop_after_3(done, total, usage):
        if done >= 3:
            raise KeyboardInterrupt

    faults = ["429", "500", "malformed", "ok", "503", "drop", "badjson", "429"]
    with FakeOpenAIServer(reply=fake_teacher_reply, faults=faults) as srv:
        cfg = RaftBuildConfig(
            out=str(tmp_path / "ray"), teacher=f"openai:fake@{srv.base_url}", engine="ray", **kw
        )
        with pytest.raises(KeyboardInterrupt):  # the driver stops midway, as a kill would
            build_raft(cfg, progress=stop_after_3)
        units = (tmp_path / "ray" / ".raft-work" / "units.jsonl").read_text().splitlines()
        assert 3 <= len(units) < local["units"]
        assert not (tmp_path / "ray" / "manifest.json").exists()
        m = build_raft(cfg)  # the same command resumes from the same checkpoint
        log = list(srv.fault_log)
    assert m["units_resumed"] >= 3 and m["units"] == local["units"]
    assert all(f in log for f in ("429", "500", "malformed", "503"))
    keys = [json.loads(x)["key"] for x in (tmp_path / "ray/.raft-work/units.jsonl").open()]
    assert len(keys) == len(set(keys)) == local["units"]  # no unit lost or done twice
    assert rows(tmp_path / "ray") == rows(tmp_path / "local")
    assert files(tmp_path / "ray") == files(tmp_path / "local")
    assert m["counts"] == local["counts"] and m["drops"] == local["drops"]


def test_from_qa_on_ray_counts_teacher_usage_like_local(tmp_path):
    qa = tmp_path / "qa.jsonl"
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"id": f"d{i}", "text": f"Fact {i}: widget {i} is painted color{i}."}) + "\n"
            for i in range(10)
        )
    )
    qa.write_text(
        "".join(
            json.dumps(
                {
                    "question": f"What color is widget {i}?",
                    "answer": f"color{i}",
                    "oracle_ids": [f"d{i}"],
                }
            )
            + "\n"
            for i in range(10)
        )
    )
    got = {}
    with FakeOpenAIServer(reply=fake_teacher_reply) as srv:
        for engine in ("local", "ray"):
            cfg = RaftFromQAConfig(
                reader="generic",
                path=str(qa),
                corpus=str(corpus),
                out=str(tmp_path / engine),
                teacher=f"openai:fake@{srv.base_url}",
                distractors=3,
                engine=engine,
                workers=2,
            )
            got[engine] = raft_from_qa(cfg)
    assert rows(tmp_path / "ray") == rows(tmp_path / "local")
    assert got["ray"]["teacher_usage"] == got["local"]["teacher_usage"]
    assert got["ray"]["teacher_usage"]["requests"] == 10


def test_a_teacher_error_on_ray_is_the_local_error(tmp_path):
    with FakeOpenAIServer(reply=fake_teacher_reply, faults=["401"] * 50) as srv:
        cfg = RaftBuildConfig(
            paths=[str(API)],
            out=str(tmp_path / "o"),
            teacher=f"openai:fake@{srv.base_url}",
            distractors=3,
            questions=2,
            engine="ray",
        )
        with pytest.raises(LLMError, match="401|API key"):
            build_raft(cfg)


def test_engine_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="--engine 'spark'"):
        build_raft(RaftBuildConfig(paths=[str(API)], out=str(tmp_path / "o"), engine="spark"))
    with pytest.raises(ConfigError, match="--ray-address needs --engine ray"):
        build_raft(RaftBuildConfig(paths=[str(API)], out=str(tmp_path / "o"), ray_address="auto"))


def test_vllm_teacher_rounds_give_the_endpoint_records(tmp_path, monkeypatch):
    """`--teacher vllm:MODEL`: the units run in rounds through Ray Data's LLM processor. vLLM
    needs GPUs, so a processor answering with the same fake teacher stands in for it; the
    rounds, the replay and the checkpoint are the real ones."""
    import ragtune.raft.ray_engine as re_

    def fake_processor(cfg):
        assert re_.vllm_model(cfg.teacher) == "my/model"
        return lambda ds: ds.map(
            lambda row: {"key": row["key"], "text": fake_teacher_reply(json.loads(row["messages"]))}
        )

    kw = dict(paths=[str(API)], distractors=3, questions=2)
    with FakeOpenAIServer(reply=fake_teacher_reply) as srv:
        local = build_raft(
            RaftBuildConfig(
                out=str(tmp_path / "local"), teacher=f"openai:fake@{srv.base_url}", **kw
            )
        )
    monkeypatch.setattr(re_, "check_vllm", lambda cfg: None)  # ray.data.llm is not installed here
    monkeypatch.setattr(re_, "vllm_processor", fake_processor)
    m = build_raft(
        RaftBuildConfig(out=str(tmp_path / "vllm"), teacher="vllm:my/model", engine="ray", **kw)
    )
    assert rows(tmp_path / "vllm") == rows(tmp_path / "local")
    assert m["teacher_usage"]["requests"] == local["teacher_usage"]["requests"]


def test_vllm_teacher_settings_are_checked(tmp_path):
    cfg = dict(paths=[str(API)], out=str(tmp_path / "o"), teacher="vllm:my/model")
    with pytest.raises(ConfigError, match="add --engine ray"):
        build_raft(RaftBuildConfig(**cfg))
    with pytest.raises(ConfigError, match="drop --scaffold"):
        build_raft(RaftBuildConfig(**cfg, engine="ray", scaffold=True))
    try:
        import ray.data.llm  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"pip install 'ray\[llm\]'"):
            build_raft(RaftBuildConfig(**cfg, engine="ray"))


@pytest.mark.slow
def test_kill_9_of_a_ray_driver_then_resume(tmp_path):
    """A real `ragtune raft build --engine ray` killed with SIGKILL midway (its own local Ray
    instance goes with it); the same command resumes from units.jsonl: nothing lost or doubled,
    the local engine's records."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    ragtune = str(Path(sys.executable).parent / "ragtune")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    kw = dict(paths=[str(API)], distractors=3, questions=2)
    with FakeOpenAIServer(reply=fake_teacher_reply) as srv:
        build_raft(
            RaftBuildConfig(
                out=str(tmp_path / "local"), teacher=f"openai:fake@{srv.base_url}", **kw
            )
        )
    units = tmp_path / "killed" / ".raft-work" / "units.jsonl"
    with FakeOpenAIServer(reply=fake_teacher_reply, latency=0.5) as srv:
        cmd = [ragtune, "raft", "build", str(API), "--out", str(tmp_path / "killed")]
        cmd += [
            "--teacher",
            f"openai:fake@{srv.base_url}",
            "--questions",
            "2",
            "--distractors",
            "3",
        ]
        cmd += ["--workers", "1", "--engine", "ray"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 180
        while time.time() < deadline:
            if units.exists() and len(units.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = len(units.read_text().splitlines())
        assert 2 <= done_before < 8, "the run must be killed midway"
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    m = json.loads((tmp_path / "killed" / "manifest.json").read_text())
    assert m["units_resumed"] >= done_before and m["units"] == 8
    keys = [json.loads(x)["key"] for x in units.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 8
    assert rows(tmp_path / "killed") == rows(tmp_path / "local")
