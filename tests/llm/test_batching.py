"""LM.run_rows: the local backend's batched decoder against one-at-a-time generate()."""

from __future__ import annotations

import pytest

from ragtune.errors import ContextTooLong
from ragtune.llm.base import GenerationConfig, Row, RowDropped
from ragtune.testing import DummyLM

PROMPTS = [
    [{"role": "user", "content": "Say something."}],
    [{"role": "user", "content": "The quick brown fox jumps over the lazy dog. What next?"}],
    [{"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "Say something."}],  # the same prompt as the first: one prefill
]


@pytest.fixture(scope="module")
def lm(tiny_model):
    from ragtune.llm.local import TransformersLM

    return TransformersLM(tiny_model)


def _rows(cfgs, results, pieces=None):
    rows = []
    for i, (msgs, cfg) in enumerate(zip(PROMPTS, cfgs, strict=True)):
        emit = None
        if pieces is not None:
            pieces[i] = []
            emit = pieces[i].append
        rows.append(Row(msgs, cfg, lambda r, i=i: results.__setitem__(i, r), emit))
    return rows


def test_batched_rows_match_generate_each_with_its_own_settings(lm):
    import re

    [probe] = lm.generate([PROMPTS[0]], max_tokens=16)
    stop = re.search(r"[A-Za-z]{3,}", probe.text[1:]).group()  # a stop string it will meet
    cfgs = [
        GenerationConfig(max_tokens=16, stop=[stop]),
        GenerationConfig(max_tokens=9),
        GenerationConfig(max_tokens=12),
        GenerationConfig(max_tokens=5),
    ]
    ref = [
        lm.generate([m], max_tokens=c.max_tokens, stop=c.stop)[0]
        for m, c in zip(PROMPTS, cfgs, strict=True)
    ]
    results, pieces = {}, {}
    rows = _rows(cfgs, results, pieces)
    late = [rows.pop()]  # joins the running batch between two tokens
    lm.run_rows(rows, more=lambda n: [late.pop()] if late else [], max_batch=8)
    for i in range(4):
        assert results[i].text == ref[i].text, i
        assert results[i].finish_reason == ref[i].finish_reason
        assert results[i].completion_tokens == ref[i].completion_tokens
        assert "".join(pieces[i]).strip() == ref[i].text  # each row streamed its own text
    assert stop not in results[0].text and results[0].finish_reason == "stop"


def test_max_batch_bounds_the_rows_at_once(lm, monkeypatch):
    from ragtune.llm import batching

    widths = []
    step = batching.BatchDecoder._step

    def spy(self):
        widths.append(sum(not s.ended for s in self.slots))
        step(self)

    monkeypatch.setattr(batching.BatchDecoder, "_step", spy)
    results = {}
    rows = _rows([GenerationConfig(max_tokens=6)] * 4, results)
    lm.run_rows(rows, max_batch=2)
    assert len(results) == 4 and max(widths) == 2


def test_seeded_sampling_is_per_row_and_reproducible(lm):
    cfg = GenerationConfig(max_tokens=12, temperature=1.0, top_p=0.9, seed=7)
    a, b = {}, {}
    other = GenerationConfig(max_tokens=12)
    lm.run_rows(_rows([cfg, other, other, cfg], a))  # rows 0 and 3: the same prompt
    lm.run_rows(_rows([cfg, GenerationConfig(max_tokens=3), other, other], b))
    assert a[0].text == a[3].text == b[0].text  # same seed, same prompt: same sample
    assert a[0].text != a[1].text


def test_a_failing_or_departed_row_ends_alone(lm):
    long = [{"role": "user", "content": "fox " * 2000}]
    results = {}
    rows = _rows([GenerationConfig(max_tokens=8)] * 4, results)
    rows[1] = Row(long, GenerationConfig(max_tokens=8), lambda r: results.__setitem__(1, r))
    seen = []

    def gone():
        return len(seen) >= 2

    rows[2] = Row(
        PROMPTS[2],
        GenerationConfig(max_tokens=200),
        lambda r: results.__setitem__(2, r),
        emit=seen.append,
        gone=gone,
    )
    lm.run_rows(rows)
    assert isinstance(results[1], ContextTooLong)
    assert isinstance(results[2], RowDropped) and len(seen) <= 3
    assert results[0].completion_tokens > 0 and results[3].completion_tokens > 0


def test_default_run_rows_streams_row_by_row():
    lm = DummyLM(["one two three", "four five"])
    results, pieces = {}, []
    rows = [
        Row(
            PROMPTS[0],
            GenerationConfig(max_tokens=2),
            lambda r: results.__setitem__(0, r),
            emit=pieces.append,
        ),
        Row(PROMPTS[1], GenerationConfig(max_tokens=8), lambda r: results.__setitem__(1, r)),
    ]
    lm.run_rows(rows)
    assert results[0].text == "one two" and pieces == ["one two"]
    assert results[1].text == "four five"
