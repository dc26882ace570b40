import math

import pytest

from ragtune.errors import ConfigError, ContextTooLong, LLMError
from ragtune.llm import load_lm
from ragtune.llm.base import truncate_at_stop
from ragtune.llm.local import TransformersLM
from ragtune.testing import DummyLM, make_tiny_llama


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_llama(tmp_path_factory.mktemp("tiny"))


def test_generate_batch_counts_tokens(tiny):
    lm = TransformersLM(tiny, threads=1)
    msgs = [[{"role": "user", "content": "hello fox"}], [{"role": "user", "content": "a b c d e"}]]
    out = lm.generate(msgs, max_tokens=5)
    assert len(out) == 2
    for c in out:
        assert 0 < c.completion_tokens <= 5
        assert c.prompt_tokens > 0
    # left padding must not change a prompt's own result: batch == one at a time (greedy)
    solo = lm.generate([msgs[1]], max_tokens=5)[0]
    assert solo.text == out[1].text
    assert lm.usage.requests == 3
    assert (
        lm.usage.completion_tokens == sum(c.completion_tokens for c in out) + solo.completion_tokens
    )


def test_score_ranks_the_argmax_token_first(tiny):
    import torch

    lm = TransformersLM(tiny, threads=1)
    prompt = [{"role": "user", "content": "The quick brown"}]
    ids = lm.tokenizer.encode(lm.render(prompt), add_special_tokens=False)
    with torch.no_grad():
        logits = lm.model(torch.tensor([ids])).logits[0, -1].clone()
    logits[lm.tokenizer.all_special_ids] = -1e9  # ignore special tokens
    order = logits.argsort(descending=True).tolist()
    best, worst = (lm.tokenizer.decode([t]) for t in (order[0], order[-1]))
    s_best, s_worst = lm.score(prompt, [best, worst])
    assert s_best < 0 and math.isfinite(s_worst)
    assert s_best > s_worst
    with torch.no_grad():
        expected = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0, -1], -1)[order[0]]
    assert s_best == pytest.approx(float(expected), abs=1e-4)


def test_context_too_long(tiny):
    lm = TransformersLM(tiny, threads=1)
    with pytest.raises(ContextTooLong, match="max_tokens"):
        lm.generate([[{"role": "user", "content": "fox " * 1200}]], max_tokens=4)


def test_spec_errors(tmp_path):
    with pytest.raises(ConfigError, match="openai:MODEL@BASE_URL"):
        load_lm(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="config.json"):
        load_lm(str(tmp_path / "empty"))


def test_stop_and_dummy():
    assert truncate_at_stop("abc<END>def", ["<END>", "d"]) == ("abc", True)
    assert truncate_at_stop("abc", ["x"]) == ("abc", False)
    lm = DummyLM(["one two three", "four"])
    assert lm.complete("q") == "one two three"
    assert lm.complete("q", max_tokens=1) == "four"
    assert lm.complete("q", stop=["two"]) == "one "
    assert len(lm.calls) == 3
    with pytest.raises(LLMError, match="batch"):
        lm.generate([{"role": "user", "content": "x"}])


def test_trailing_assistant_message_is_a_prefill(tiny):
    lm = TransformersLM(tiny, threads=1)
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure: ##begin"}]
    assert lm.render(msgs).endswith("<|assistant|>Sure: ##begin")
    assert lm.render(msgs[:1]).endswith("<|assistant|>")


def test_scaffolded_teacher_answers_have_the_raft_shape(tiny):
    from ragtune.raft.prompts import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE
    from ragtune.raft.teacher import LLMTeacher

    t = LLMTeacher(TransformersLM(tiny, threads=1), scaffold=True)
    ctx = "Intro words here. The fox is quick and brown. Dogs are lazy animals."
    qs = t.questions(ctx, 2)  # gibberish from a random model, but one question per sentence
    assert len(qs) <= 2 and all(q.endswith("?") for q in qs)
    [cot] = t.answers([("How quick is the fox?", ctx, None)])
    # the quote is chosen by ragtune (best matching sentence), verbatim; the model fills the answer
    assert cot.startswith(f"The context states {BEGIN_QUOTE}The fox is quick and brown.{END_QUOTE}")
    assert cot.count(END_QUOTE) == 1 and f"{END_QUOTE}.\n{ANSWER_TAG}" in cot
