"""Fixtures shared by the training tests."""

import pytest


@pytest.fixture
def tiny_fresh(tiny_model):
    """(model, tokenizer): a fresh copy of the tiny random Llama, free to be trained or wrapped."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(
        tiny_model
    )
