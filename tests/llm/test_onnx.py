"""The onnx: backend (onnxruntime-genai) against the transformers backend on the tiny Llama."""

from __future__ import annotations

import pytest

from ragtune.errors import ConfigError

pytest.importorskip("onnxruntime_genai", reason="the onnx extra: pip install 'ragtune[onnx]'")

MSGS = [{"role": "user", "content": "Say something."}]


@pytest.fixture(scope="module")
def onnx_lm(tiny_model, tmp_path_factory):
    import os

    from ragtune.llm import load_lm

    old = os.environ.get("RAGTUNE_CACHE")
    os.environ["RAGTUNE_CACHE"] = str(tmp_path_factory.mktemp("cache"))  # the export goes here
    try:
        yield load_lm(f"onnx:{tiny_model}", threads=1)
    finally:
        if old is None:
            os.environ.pop("RAGTUNE_CACHE")
        else:
            os.environ["RAGTUNE_CACHE"] = old


def test_onnx_generates_what_transformers_generates(onnx_lm, tiny_model):
    import re

    from ragtune.llm.local import TransformersLM

    tf = TransformersLM(tiny_model)
    assert onnx_lm.local and onnx_lm.can_stream and not onnx_lm.can_score
    [want] = tf.generate([MSGS], max_tokens=12)
    [got] = onnx_lm.generate([MSGS], max_tokens=12)
    assert got.text == want.text and got.completion_tokens == want.completion_tokens
    assert got.finish_reason == want.finish_reason == "length"
    pieces = list(onnx_lm.stream(MSGS, max_tokens=12))
    assert len(pieces) > 1 and "".join(pieces).strip() == want.text
    stop = re.search(r"[A-Za-z]{3,}", want.text[1:]).group()
    [cut] = onnx_lm.generate([MSGS], max_tokens=12, stop=[stop])
    assert cut.text == tf.generate([MSGS], max_tokens=12, stop=[stop])[0].text
    assert onnx_lm.usage.requests == 3
    # the export is cached: a second load finds it
    assert (onnx_lm.path / "genai_config.json").exists()


def test_onnx_refuses_adapters_and_unknown_paths(tiny_model, tmp_path):
    from ragtune.llm import load_lm

    with pytest.raises(ConfigError, match="ragtune merge"):
        load_lm(f"onnx:{tiny_model}", adapter=str(tmp_path))
    with pytest.raises(ConfigError, match="not a model directory"):
        load_lm(f"onnx:{tmp_path / 'nothing'}")
