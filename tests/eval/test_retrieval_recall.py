import numpy as np
import pytest

from ragtune.eval.retrieval import hotpot_paragraphs, recall_at_k
from tests.conftest import SHARED_DATA

HOTPOT = SHARED_DATA / "raft" / "hotpotqa" / "dev_300.jsonl"


def test_recall_at_k_definition():
    ids = np.array([[1, 2, 3], [9, 8, 7]])
    r = recall_at_k(ids, [{1, 3}, {5}], ks=[1, 3])
    assert r[1] == pytest.approx((0.5 + 0) / 2)
    assert r[3] == pytest.approx((1.0 + 0) / 2)


@pytest.mark.slow  # ~3 min of embedding 2,964 paragraphs: run by .ci/run, not the default run
@pytest.mark.skipif(not HOTPOT.exists(), reason="shared HotpotQA data absent")
def test_hybrid_recall_on_hotpotqa(tmp_path):
    from ragtune.retrieval import Index

    chunks, qs, gold = hotpot_paragraphs(HOTPOT)
    assert len(qs) == 300 and all(len(g) == 2 for g in gold)
    idx = Index.build(chunks, tmp_path / "idx")
    r = {
        m: recall_at_k(idx.search(qs, 10, m).ids, gold, [2, 5, 10])
        for m in ("bm25", "dense", "hybrid")
    }
    best_single = max(r["bm25"][10], r["dense"][10])
    assert r["hybrid"][10] >= best_single - 0.02, r
    assert r["bm25"][10] > 0.5 and r["dense"][10] > 0.5, r  # both retrievers actually work
