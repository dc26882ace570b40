"""Test doubles that ship with ragtune: a scripted LM and a tiny random-initialised model.

lm = DummyLM(["first reply", "second reply"])      # replies consumed in order, then cycled
lm = DummyLM(lambda messages: "echo " + messages[-1]["content"])
path = make_tiny_llama(tmp_path / "tiny")           # ~0.1M params, loads in a blink
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from ragtune.llm.base import LM, Completion, GenerationConfig, Messages, truncate_at_stop

Reply = str | Callable[[Messages], str]


class DummyLM(LM):
    """Scripted replies; records every conversation it saw in `.calls`."""

    name = "dummy"
    local = True
    can_prefill = True

    def __init__(self, replies: Sequence[str] | Callable[[Messages], str] | None = None) -> None:
        super().__init__()
        self._fn: Callable[[Messages], str] | None = None
        self._it = None
        if callable(replies):
            self._fn = replies
        elif replies is None:
            self._fn = lambda m: "echo: " + m[-1]["content"]
        else:
            if not replies:
                raise ValueError("DummyLM needs at least one reply")
            self._it = itertools.cycle(list(replies))
        self.calls: list[Messages] = []
        self._lock = threading.Lock()

    def _generate(self, batch: list[Messages], cfg: GenerationConfig) -> list[Completion]:
        out = []
        for messages in batch:
            with self._lock:
                self.calls.append(messages)
                text = self._fn(messages) if self._fn else next(self._it)
            words = text.split(" ")
            finish = "stop"
            if len(words) > cfg.max_tokens:  # one "token" per word, like the fake server
                text, finish = " ".join(words[: cfg.max_tokens]), "length"
            text, _ = truncate_at_stop(text, cfg.stop)
            prompt = " ".join(m["content"] for m in messages)
            out.append(Completion(text, self.count_tokens(prompt), len(text.split()), finish))
        return out

    def count_tokens(self, text: str) -> int:
        return len(text.split())


TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def make_tiny_llama(
    path: str | Path,
    *,
    texts: Sequence[str] | None = None,
    vocab_size: int = 512,
    hidden: int = 64,
    layers: int = 2,
    seed: int = 0,
) -> Path:
    """Write a tiny random-initialised Llama + byte-level BPE tokenizer to `path` (seconds on CPU).

    For tests of loading, generation, scoring and training: the outputs are gibberish by design.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    specials = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
    corpus = (
        list(texts or [])
        + [
            "The quick brown fox jumps over the lazy dog.",
            "Question: what is the answer? <ANSWER>: 42",
            "##begin_quote## a quoted span ##end_quote##",
            "<DOCUMENT>retrieved text</DOCUMENT> [1] [2] [3]",
        ]
        * 4
    )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        bos_token="<|bos|>",
        eos_token="<|end|>",
        additional_special_tokens=specials[3:],
    )
    fast.chat_template = TINY_CHAT_TEMPLATE
    fast.save_pretrained(path)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=fast.pad_token_id,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        tie_word_embeddings=True,
        # Large init: with small embeddings the tied output layer cannot produce confident
        # logits, and LoRA (which leaves embeddings and norms frozen) could not lower the loss.
        initializer_range=0.5,
    )
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


def fake_teacher_reply(messages: Messages) -> str:
    """A deterministic stand-in for a RAFT teacher (for FakeOpenAIServer and DummyLM).

    Question prompts get one question per line about the passage's sentences; answer prompts get
    a chain of thought that quotes the context's first sentence verbatim and ends with
    <ANSWER>: the gold answer when the prompt gives one (as a teacher told it would), else the
    first five words of that sentence.
    """
    import re

    from ragtune.corpus.chunking import sentence_spans

    user = messages[-1]["content"]
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    if "questions" in system or "requests" in system:
        n = int(m.group(1)) if (m := re.search(r"write (\d+)", system, re.I)) else 3
        passage = user.split("Passage:", 1)[-1]
        sents = [passage[s:e] for s, e in sentence_spans(passage)] or [passage]
        qs = []
        for i in range(n):
            words = re.findall(r"\w+", sents[i % len(sents)])[:4]
            qs.append(f"{i + 1}. What does the text say about {' '.join(words)} (part {i})?")
        return "\n".join(qs)
    m = re.search(r"(?:Context|API documentation): (.*?)\n\n(?:Answer|Write)", user, re.S)
    ctx = m.group(1) if m else user
    spans = sentence_spans(ctx)
    first = ctx[spans[0][0] : spans[0][1]] if spans else ctx
    gold = re.search(r"The correct final answer is: (.*)\. Explain", user, re.S)
    answer = gold.group(1) if gold else " ".join(first.split()[:5])
    return f"The context says ##begin_quote##{first}##end_quote##.\n<ANSWER>: {answer}"
