"""Test doubles that ship with ragtune: a scripted LM and a tiny random-initialised model.

lm = DummyLM(["first reply", "second reply"])      # replies consumed in order, then cycled
lm = DummyLM(lambda messages: "echo " + messages[-1]["content"])
path = make_tiny_llama(tmp_path / "tiny")           # ~0.1M params, loads in a blink
path = make_tiny_causal_lm(tmp_path / "g", "gpt2")  # the same for Qwen2, Mistral, Phi-3, GPT-2, ...
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


def _tiny_tokenizer(texts: Sequence[str] | None, vocab_size: int, chat: bool = True):
    """The tiny models' byte-level BPE tokenizer. `chat=False`: like GPT-2's and GPT-NeoX's own,
    no chat template and no pad token (only EOS)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

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
        pad_token="<|pad|>" if chat else None,
        bos_token="<|bos|>",
        eos_token="<|end|>",
        additional_special_tokens=specials[3:],
    )
    if chat:
        fast.chat_template = TINY_CHAT_TEMPLATE
    return fast


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
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fast = _tiny_tokenizer(texts, vocab_size)
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


# decoder families make_tiny_causal_lm writes: their module names differ (q_proj/k_proj/v_proj,
# Phi-3's qkv_proj and gate_up_proj, GPT-2's Conv1D c_attn, GPT-NeoX's query_key_value), as do
# the names of their decoder and output head
FAMILIES = ("llama", "qwen2", "mistral", "phi3", "gpt2", "gpt_neox")


def make_tiny_causal_lm(
    path: str | Path,
    family: str,
    *,
    texts: Sequence[str] | None = None,
    vocab_size: int = 512,
    hidden: int = 64,
    layers: int = 2,
    seed: int = 0,
) -> Path:
    """Write a tiny random causal LM of `family` (one of FAMILIES) + tokenizer to `path`.

    The tiny Llama's tokenizer; GPT-2 and GPT-NeoX get it as theirs come: no chat template, no
    pad token. Initialised with std 0.5 like the tiny Llama (see make_tiny_llama).
    """
    import torch
    import transformers as tf

    if family == "llama":
        return make_tiny_llama(
            path, texts=texts, vocab_size=vocab_size, hidden=hidden, layers=layers, seed=seed
        )
    if family not in FAMILIES:
        raise ValueError(f"family {family!r}: use one of {', '.join(FAMILIES)}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fast = _tiny_tokenizer(texts, vocab_size, chat=family not in ("gpt2", "gpt_neox"))
    fast.save_pretrained(path)
    # the families' default special-token ids (GPT-2's 50256, Phi-3's 32000) lie outside a
    # 512-token vocabulary: point them at the tokenizer's
    ids = dict(
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id if fast.pad_token_id is not None else fast.eos_token_id,
    )
    common = dict(vocab_size=len(fast), initializer_range=0.5, **ids)
    llama_like = dict(
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        **common,
    )
    if family == "qwen2":
        cfg, cls = tf.Qwen2Config(tie_word_embeddings=True, **llama_like), tf.Qwen2ForCausalLM
    elif family == "mistral":
        cfg, cls = tf.MistralConfig(tie_word_embeddings=False, **llama_like), tf.MistralForCausalLM
    elif family == "phi3":
        cfg = tf.Phi3Config(
            tie_word_embeddings=False, original_max_position_embeddings=1024, **llama_like
        )
        cls = tf.Phi3ForCausalLM
    elif family == "gpt2":
        cfg = tf.GPT2Config(
            n_embd=hidden,
            n_layer=layers,
            n_head=4,
            n_positions=1024,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **common,
        )
        cls = tf.GPT2LMHeadModel
    else:  # gpt_neox
        cfg = tf.GPTNeoXConfig(
            hidden_size=hidden,
            intermediate_size=hidden * 2,
            num_hidden_layers=layers,
            num_attention_heads=4,
            max_position_embeddings=1024,
            hidden_dropout=0.0,
            attention_dropout=0.0,
            tie_word_embeddings=False,
            **common,
        )
        cls = tf.GPTNeoXForCausalLM
    torch.manual_seed(seed)
    cls(cfg).save_pretrained(path)
    return path


def make_tiny_gguf(path: str | Path, *, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny random Llama as a GGUF file (Q8_0 weights, the tiny tokenizer) to `path`.

    For tests of the GGUF path (conversion, its cache, loading in a dtype) without the bundled
    135M model. Random weights: the outputs are gibberish by design.
    """
    import json

    import gguf
    import numpy as np

    tok = _tiny_tokenizer(None, 512)
    tokens = [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])]
    merges = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    merges = [" ".join(m) if isinstance(m, list) else m for m in merges]
    special = set(tok.all_special_tokens)
    heads, kv_heads, ffn = 4, 2, hidden * 2
    kv = hidden // heads * kv_heads
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(layers)
    w.add_context_length(1024)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(hidden // heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")  # byte-level BPE, as SmolLM2's GGUF has
    w.add_token_list(tokens)
    w.add_token_merges(merges)
    w.add_token_types([3 if t in special else 1 for t in tokens])  # 3: control
    w.add_bos_token_id(tok.bos_token_id)
    w.add_eos_token_id(tok.eos_token_id)
    w.add_pad_token_id(tok.pad_token_id)
    w.add_add_bos_token(False)
    w.add_chat_template(tok.chat_template)
    rng = np.random.default_rng(seed)
    q8 = gguf.GGMLQuantizationType.Q8_0

    def matrix(name: str, rows: int, cols: int) -> None:  # std 0.5, as make_tiny_llama
        a = (rng.standard_normal((rows, cols)) * 0.5).astype(np.float32)
        w.add_tensor(name, gguf.quants.quantize(a, q8), raw_dtype=q8)

    matrix("token_embd.weight", len(tokens), hidden)
    w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    for i in range(layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, np.float32))
        matrix(f"blk.{i}.attn_q.weight", hidden, hidden)
        matrix(f"blk.{i}.attn_k.weight", kv, hidden)
        matrix(f"blk.{i}.attn_v.weight", kv, hidden)
        matrix(f"blk.{i}.attn_output.weight", hidden, hidden)
        matrix(f"blk.{i}.ffn_gate.weight", ffn, hidden)
        matrix(f"blk.{i}.ffn_up.weight", ffn, hidden)
        matrix(f"blk.{i}.ffn_down.weight", hidden, ffn)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(path)


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
