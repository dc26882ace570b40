"""`ragtune retriever eval|reembed|train`, `ragtune reranker train` and `--rerank` from the console
script (the training itself is tested on the library job: tests/retrieval/test_train.py)."""

import json

from tests.cli.test_cli import run
from tests.retrieval import toy


def test_retriever_eval_prints_the_table_and_writes_results(tmp_path):
    raft = toy.write_toy_raft(tmp_path / "raft")
    out = tmp_path / "eval"
    p = run(
        "retriever", "eval", "--data", raft, "--ks", "1,5", "--candidates", "10",
        "--rerank", "dense", "--out", out, "--threads", "1",
    )  # fmt: skip
    assert "12 test questions, 40 documents" in p.stdout
    assert "| hybrid (bundled) + dense |" in p.stdout and "recall@10" in p.stdout
    res = json.loads((out / "results.json").read_text())
    assert set(res["rows"]) == {
        "bm25",
        "dense (bundled)",
        "hybrid (bundled)",
        "hybrid (bundled) + dense",
    }
    assert (out / "results.md").read_text().startswith("| retriever |")


def test_reembed_in_place_then_search(tmp_path):
    raft = toy.write_toy_raft(tmp_path / "raft")
    docs = tmp_path / "docs.jsonl"
    rows = [json.loads(x) for x in open(raft / "raw" / "train.jsonl")]
    texts = dict.fromkeys(r["oracle"][0] for r in rows)
    docs.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    idx = tmp_path / "idx"
    run("index", docs, "--out", idx, "--text-field", "text", "--chunk-mode", "record")
    p = run("retriever", "reembed", idx)  # the bundled embedder again: same neighbours
    assert "re-embedded" in p.stdout and "bundled:all-MiniLM-L6-v2" in p.stdout
    assert json.loads((idx / "params.json").read_text())["dense"]["reembedded"]
    p = run("search", idx, "How do I compress a vault?", "--method", "dense", "--json", "-k", "1")
    assert "compress_vault" in p.stdout


def test_errors_name_the_field_and_the_fix(tmp_path):
    p = run("retriever", "train", "--data", tmp_path, ok=False)
    assert p.returncode == 2 and "missing OUT" in p.stderr
    p = run(
        "reranker",
        "train",
        "--data",
        tmp_path,
        "--out",
        tmp_path / "o",
        "--neg-ranks",
        "9,2",
        ok=False,
    )
    assert p.returncode == 2 and "--neg-ranks 9,2" in p.stderr
    p = run("ask", tmp_path, "q", "--rerank", "colbert", ok=False)
    assert p.returncode == 2 and "none | dense | cross:DIR | lm" in p.stderr
    p = run("retriever", "reembed", tmp_path, "--embedder", tmp_path, ok=False)
    assert p.returncode == 2 and "not a sentence-transformers directory" in p.stderr
