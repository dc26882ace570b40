"""`ragtune export`: the GGUF a tuned tiny Llama becomes, read back with gguf.GGUFReader and
reloaded through transformers' GGUF loader; the peft copy for vLLM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragtune.errors import ConfigError


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory):
    """A LoRA adapter on the tiny Llama with non-zero B matrices (merging changes the model)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets))
    torch.manual_seed(1)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.2)
    out = tmp_path_factory.mktemp("export") / "adapter"
    peft_model.save_pretrained(out)
    return out


def _field(reader, key):
    return reader.fields[key].contents()


def test_gguf_export_reads_back_as_the_merged_model(adapter, tmp_path, capsys):
    import gguf
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ragtune.cli import main
    from ragtune.train.export import merged_model

    out = tmp_path / "tiny.gguf"
    main(["export", "--adapter", str(adapter), "--out", str(out), "--quant", "f32"])
    printed = capsys.readouterr().out
    assert "wrote" in printed and "llama-server -m" in printed and "ollama create" in printed

    merged, tok, _ = merged_model(adapter)
    cfg = merged.config
    r = gguf.GGUFReader(str(out))
    assert _field(r, "general.architecture") == "llama"
    assert _field(r, "llama.block_count") == cfg.num_hidden_layers
    assert _field(r, "llama.attention.head_count_kv") == cfg.num_key_value_heads
    assert _field(r, "llama.embedding_length") == cfg.hidden_size
    # token_embd, output_norm, and 9 per block (the output layer is tied to the embedding)
    assert len(r.tensors) == 2 + 9 * cfg.num_hidden_layers
    shapes = {t.name: list(t.shape) for t in r.tensors}
    assert shapes["token_embd.weight"] == [cfg.hidden_size, cfg.vocab_size]  # GGUF: ne0 first
    assert shapes["blk.0.attn_k.weight"] == [
        cfg.hidden_size,
        cfg.num_key_value_heads * cfg.hidden_size // cfg.num_attention_heads,
    ]
    assert shapes["blk.1.ffn_down.weight"] == [cfg.intermediate_size, cfg.hidden_size]
    # the tokenizer, as llama.cpp's gpt2 BPE
    assert _field(r, "tokenizer.ggml.model") == "gpt2"
    tokens = _field(r, "tokenizer.ggml.tokens")
    assert len(tokens) == cfg.vocab_size
    assert tokens[tok.eos_token_id] == tok.eos_token == "<|end|>"
    assert _field(r, "tokenizer.ggml.eos_token_id") == tok.eos_token_id
    assert _field(r, "tokenizer.ggml.bos_token_id") == tok.bos_token_id
    types = _field(r, "tokenizer.ggml.token_type")
    assert types[tok.eos_token_id] == gguf.TokenType.CONTROL and types[300] == gguf.TokenType.NORMAL
    merges = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    assert len(_field(r, "tokenizer.ggml.merges")) == len(merges)
    assert _field(r, "tokenizer.chat_template") == tok.chat_template

    # transformers' own GGUF loader (which undoes llama.cpp's q/k order) gives the same model
    reloaded = AutoModelForCausalLM.from_pretrained(
        tmp_path, gguf_file=out.name, dtype=torch.float32
    )
    gtok = AutoTokenizer.from_pretrained(tmp_path, gguf_file=out.name)
    text = "The quick brown fox jumps over the lazy dog. <ANSWER>: 42"
    assert gtok(text)["input_ids"] == tok(text)["input_ids"]
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        want, got = merged(ids).logits, reloaded(ids).logits
    assert torch.allclose(want, got, atol=1e-4)

    modelfile = (tmp_path / "Modelfile").read_text()
    assert "FROM ./tiny.gguf" in modelfile and 'eq .Role "user" }}<|user|>' in modelfile
    assert 'PARAMETER stop "<|end|>"' in modelfile


def test_q8_0_export_quantises_the_matrices(adapter, tmp_path):
    import gguf

    from ragtune.train.export import ExportConfig, export, merged_model, permute_qk

    res = export(ExportConfig(adapter=str(adapter), out=str(tmp_path / "q8.gguf"), quant="q8_0"))
    r = gguf.GGUFReader(str(res.path))
    kinds = {t.name: t.tensor_type for t in r.tensors}
    assert kinds["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert kinds["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32  # norms stay f32
    assert _field(r, "general.file_type") == 7  # LLAMA_FTYPE_MOSTLY_Q8_0
    merged, _, _ = merged_model(adapter)
    cfg = merged.config
    want = permute_qk(
        merged.state_dict()["model.layers.0.self_attn.k_proj.weight"].numpy(),
        cfg.num_key_value_heads,
    )
    t = next(t for t in r.tensors if t.name == "blk.0.attn_k.weight")
    got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(want.shape)
    # Q8_0: blocks of 32 with one scale each: the error is half a step of the block, plus the
    # scale's own rounding to f16 (at most 127 x 2^-11 of a step)
    step = np.abs(want).reshape(-1, 32).max(1) / 127
    assert (np.abs(got - want).reshape(-1, 32).max(1) <= step * 0.6 + 1e-6).all()


def test_k_quants_point_to_llama_quantize(adapter, tmp_path):
    from ragtune.train.export import ExportConfig, export

    with pytest.raises(ConfigError, match="llama-quantize .*Q4_K_M"):
        export(ExportConfig(adapter=str(adapter), out=str(tmp_path / "x.gguf"), quant="q4_k_m"))
    with pytest.raises(ConfigError, match="name it NAME.gguf"):
        export(ExportConfig(adapter=str(adapter), out=str(tmp_path / "x.bin")))
    with pytest.raises(ConfigError, match="not a PEFT adapter"):
        export(ExportConfig(adapter=str(tmp_path), out=str(tmp_path / "x.gguf")))


def test_peft_export_is_the_adapter_for_vllm(adapter, tmp_path):
    from ragtune.train.export import ExportConfig, export

    out = tmp_path / "vllm-lora"
    res = export(ExportConfig(adapter=str(adapter), format="peft", out=str(out), name="glimmer"))
    assert (out / "adapter_config.json").read_bytes() == (
        adapter / "adapter_config.json"
    ).read_bytes()
    assert (out / "adapter_model.safetensors").exists()
    cmd = res.run[0]
    base = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert cmd.startswith(f"vllm serve {base} --enable-lora --lora-modules glimmer=")
    assert str(Path(out).resolve()) in cmd and "--max-lora-rank 8" in cmd
