"""kill -9 a real `ragtune raft build` mid-run; the same command resumes with nothing lost or doubled."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ragtune.examples import GLIMMERDB
from ragtune.testing import fake_teacher_reply
from ragtune.testing_server import FakeOpenAIServer

BIN = Path(sys.executable).parent / "ragtune"


def cmd(out, url):
    return [
        str(BIN),
        "raft",
        "build",
        str(GLIMMERDB / "api.jsonl"),
        "--out",
        str(out),
        "--teacher",
        f"openai:fake@{url}",
        "--questions",
        "2",
        "--distractors",
        "3",
        "--workers",
        "1",
    ]


def rows(out):
    return [
        json.loads(line)
        for s in ("train", "valid", "test")
        for line in (out / "raw" / f"{s}.jsonl").read_text().splitlines()
    ]


def test_kill_9_then_resume(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with FakeOpenAIServer(reply=fake_teacher_reply) as srv:
        subprocess.run(
            cmd(tmp_path / "clean", srv.base_url), check=True, env=env, capture_output=True
        )
    units = tmp_path / "killed" / ".raft-work" / "units.jsonl"
    with FakeOpenAIServer(reply=fake_teacher_reply, latency=0.3) as srv:
        proc = subprocess.Popen(
            cmd(tmp_path / "killed", srv.base_url),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if units.exists() and len(units.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = len(units.read_text().splitlines())
        assert 2 <= done_before < 8, "the run must be killed midway"
        assert not (tmp_path / "killed" / "manifest.json").exists()
        res = subprocess.run(
            cmd(tmp_path / "killed", srv.base_url), env=env, capture_output=True, text=True
        )
    assert res.returncode == 0, res.stderr
    m = json.loads((tmp_path / "killed" / "manifest.json").read_text())
    assert m["units_resumed"] >= done_before and m["units"] == 8
    got, want = rows(tmp_path / "killed"), rows(tmp_path / "clean")
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids))  # 0 duplicates
    assert got == want  # 0 lost, identical records
