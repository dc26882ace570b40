"""The real `ragtune` console script in subprocesses, on real files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragtune.examples import GLIMMERDB
from ragtune.testing_server import FakeOpenAIServer
from tests.conftest import write_short_api

BIN = Path(sys.executable).parent / "ragtune"


def run(*args, ok=True, env=None):
    p = subprocess.run(
        [str(BIN), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )
    if ok:
        assert p.returncode == 0, p.stderr + p.stdout
    return p


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("cli") / "idx"
    corpus = tmp_path_factory.mktemp("corpus")
    for f in GLIMMERDB.iterdir():
        (corpus / f.name).write_bytes(f.read_bytes())
    (corpus / "empty.txt").write_text("")
    (corpus / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    p = run("index", corpus, "--out", out, "--tokenizer", tiny_model, "--chunk-size", 96)
    return out, p


def test_index_reports_skips_and_writes_dir(cli_index):
    out, p = cli_index
    assert "empty.txt" in p.stderr and "empty file" in p.stderr
    assert "blob.bin" in p.stderr and "binary" in p.stderr
    assert "2 skipped" in p.stdout
    params = json.loads((out / "params.json").read_text())
    assert params["chunking"]["size"] == 96
    assert len(params["load_report"]["skipped"]) == 2


def test_strict_turns_skips_into_error(tmp_path, tiny_model):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "ok.txt").write_text("fine text.")
    (tmp_path / "c" / "bad.json").write_text("{not json")
    p = run(
        "index",
        tmp_path / "c",
        "--out",
        tmp_path / "i",
        "--tokenizer",
        tiny_model,
        "--strict",
        ok=False,
    )
    assert p.returncode == 2
    assert "bad.json" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "i").exists()


def test_search_json(cli_index):
    out, _ = cli_index
    p = run("search", out, "snapshot compression default", "-k", 2, "--json", "--method", "bm25")
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(rows) == 2 and "zstd" in (rows[0]["text"] + rows[1]["text"])


def test_ask_against_openai_compatible_endpoint(cli_index):
    out, _ = cli_index
    with FakeOpenAIServer(reply=lambda m: "It lasts 30 seconds [1].") as srv:
        p = run(
            "ask", out, "How long is a lease?", "--model", f"openai:fake@{srv.base_url}", "--json"
        )
        sent = srv.requests
    ans = json.loads(p.stdout)
    assert ans["answer"] == "It lasts 30 seconds [1]."
    assert ans["citations"][0]["method"] == "model"
    assert any("<DOCUMENT>" in json.dumps(body) for _, body in sent)


def test_config_file_and_flags(tmp_path, cli_index):
    out, _ = cli_index
    cfg = tmp_path / "s.yaml"
    cfg.write_text(f"index: {out}\nquery: lease seconds\nk: 1\njson: true\nmethod: bm25\n")
    p = run("search", "--config", cfg)
    assert len(p.stdout.splitlines()) == 1
    p = run("search", "--config", cfg, "-k", 3)  # the flag wins over the file
    assert len(p.stdout.splitlines()) == 3
    cfg.write_text("index: x\nquery: y\nkay: 3\n")
    p = run("search", "--config", cfg, ok=False)
    assert p.returncode == 2 and "unknown key(s) kay" in p.stderr and "valid keys" in p.stderr


def test_errors_are_messages_not_tracebacks(tmp_path):
    p = run("search", tmp_path, "q", ok=False)
    assert p.returncode == 2 and "not a ragtune index" in p.stderr and "Traceback" not in p.stderr
    p = run("search", ok=False)
    assert p.returncode == 2 and "missing INDEX" in p.stderr
    p = run("ask", tmp_path, "q", "--model", "no/such/model", ok=False)
    assert "Traceback" not in p.stderr


def test_help_lists_fields():
    p = run("index", "--help")
    for flag in ("--out", "--chunk-size", "--text-field", "--strict", "--config"):
        assert flag in p.stdout


def test_raft_train_eval_merge_commands(tmp_path, tiny_model):
    api = write_short_api(tmp_path / "api.jsonl")  # fits the tiny model's window
    run(
        "raft",
        "build",
        api,
        "--out",
        tmp_path / "raft",
        "--questions",
        1,
        "--distractors",
        2,
        "--test-fraction",
        0.3,
    )
    p = run(
        "train",
        "--data",
        tmp_path / "raft",
        "--out",
        tmp_path / "lora",
        "--model",
        tiny_model,
        "--max-steps",
        2,
        "--threads",
        1,
    )
    assert "trained 2 steps" in p.stdout and (tmp_path / "lora" / "adapter").is_dir()
    p = run(
        "eval",
        "--data",
        tmp_path / "raft",
        "--out",
        tmp_path / "eval",
        "--model",
        tiny_model,
        "--raft-adapter",
        tmp_path / "lora" / "adapter",
        "--configs",
        "base,raft",
        "--sweep",
        "0",
        "--sweep-configs",
        "raft",
        "--limit",
        2,
        "--max-tokens",
        4,
        "--threads",
        1,
    )
    assert "| raft |" in p.stdout and (tmp_path / "eval" / "report.html").exists()
    run("merge", "--adapter", tmp_path / "lora" / "adapter", "--out", tmp_path / "merged")
    assert (tmp_path / "merged" / "config.json").exists()
