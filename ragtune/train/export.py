"""`ragtune export`: a tuned model for other runtimes (`ragtune.train.export.export`).

    export(ExportConfig(adapter="out/raft-lora/adapter", out="out/raft.gguf"))            # q8_0
    export(ExportConfig(adapter="out/raft-lora/adapter", out="out/raft.gguf", quant="f16"))
    export(ExportConfig(adapter="out/raft-lora/adapter", format="peft", out="out/vllm-lora"))

`--format gguf` folds the adapter into its base model and writes one GGUF file that llama.cpp
(`llama-cli -m`, `llama-server -m`), Ollama (`ollama create NAME -f Modelfile`) and LM Studio
load, with an Ollama `Modelfile` beside it. Llama-family models only (the bundled SmolLM2 is
one): tensor names come from the `gguf` package's own map (`gguf.TensorNameMap`), and the q/k
projections are permuted as llama.cpp's convert_hf_to_gguf.py does (HF stores rotary pairs as
halves, llama.cpp interleaved). The tokenizer goes in as llama.cpp's `gpt2` BPE (tokens, merges,
token types, special ids) with the chat template. Quantisation is the `gguf` package's:
f32, f16, q8_0 (the default), q4_0; q4_k_m is not implemented there (it can only read K-quants),
so that one is llama.cpp's `llama-quantize` on an f16 export.

`--format peft` copies the adapter as it is, for vLLM's LoRA serving (`vllm serve BASE
--enable-lora --lora-modules NAME=DIR`), and says the command.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError

FORMATS = ("gguf", "peft")
QUANTS = ("f32", "f16", "q8_0", "q4_0", "q4_k_m")
# llama.cpp's LLAMA_FTYPE for general.file_type
FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7}


@dataclass
class ExportConfig:
    """Export a tuned model: a GGUF file (llama.cpp, Ollama, LM Studio) or the adapter (vLLM)."""

    adapter: str = field(default="", metadata={"help": "PEFT adapter directory.", "required": True})
    out: str = field(
        default="",
        metadata={"help": "Output: a .gguf file (gguf) or a directory (peft).", "required": True},
    )
    format: str = field(default="gguf", metadata={"help": "gguf | peft."})
    quant: str = field(
        default="q8_0",
        metadata={"help": "GGUF weights: f32 | f16 | q8_0 | q4_0 (q4_k_m: llama-quantize)."},
    )
    name: str | None = field(
        default=None, metadata={"help": "Model name in the file and the Modelfile (default: out)."}
    )


@dataclass
class Exported:
    """What `export` wrote, and how to run it."""

    path: Path
    files: list[Path]
    run: list[str]  # commands that load it


def export(cfg: ExportConfig, progress=None) -> Exported:
    if cfg.format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {cfg.format!r})")
    if not cfg.out:
        raise ConfigError("--out is required: the .gguf file (or, with --format peft, a directory)")
    from ragtune.store import recover_dir

    adapter = recover_dir(cfg.adapter)
    if not (adapter / "adapter_config.json").exists():
        raise ConfigError(
            f"{adapter} is not a PEFT adapter (no adapter_config.json); pass the adapter/ "
            "directory `ragtune train` wrote"
        )
    if cfg.format == "peft":
        return _export_peft(adapter, Path(cfg.out), cfg.name)
    quant = cfg.quant.lower()
    if quant not in QUANTS:
        raise ConfigError(f"--quant must be one of {', '.join(QUANTS)} (got {cfg.quant!r})")
    if quant == "q4_k_m":
        raise ConfigError(
            "--quant q4_k_m: the gguf Python package cannot write K-quants (it only reads "
            "them). Export --quant f16, then quantise with llama.cpp: `llama-quantize "
            f"{Path(cfg.out).with_suffix('.f16.gguf')} {cfg.out} Q4_K_M`"
        )
    out = Path(cfg.out)
    if out.suffix != ".gguf":
        raise ConfigError(f"--out {out}: a GGUF export is one file; name it NAME.gguf")
    return _export_gguf(adapter, out, quant, cfg.name or out.stem)


# -- peft -----------------------------------------------------------------------------------------


def _export_peft(adapter: Path, out: Path, name: str | None) -> Exported:
    from ragtune.store import staged_dir

    acfg = json.loads((adapter / "adapter_config.json").read_text())
    with staged_dir(out, marker="adapter_config.json", what="adapter") as tmp:
        for f in adapter.iterdir():
            if f.is_file():
                shutil.copy2(f, tmp / f.name)
    base = acfg.get("base_model_name_or_path") or "BASE_MODEL_DIR"
    name = name or out.name
    cmd = (
        f"vllm serve {base} --enable-lora --lora-modules {name}={out.resolve()} "
        f"--max-lora-rank {max(8, int(acfg.get('r') or 8))}"
    )
    notes = [
        cmd,
        f"# then ask model {name!r} at http://127.0.0.1:8000/v1 (ragtune --model "
        f"openai:{name}@http://127.0.0.1:8000/v1)",
    ]
    if acfg.get("modules_to_save") or (adapter / "tokenizer_config.json").exists():
        notes.append(
            "# this adapter also trains embeddings or added tokens, which vLLM's LoRA does not "
            "load: serve a merged model instead (ragtune merge, or --format gguf)"
        )
    return Exported(out, sorted(out.iterdir()), notes)


# -- gguf -----------------------------------------------------------------------------------------


def merged_model(adapter: Path):
    """(model, tokenizer, base path) with the adapter folded in, fp32 on CPU."""
    from ragtune.extras import require
    from ragtune.train.trainer import grow_for_adapter, load_base

    peft = require("peft", "exporting an adapter")
    base = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    model, tok, path = load_base(base)
    tok = grow_for_adapter(model, tok, adapter)
    merged = peft.PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    return merged.eval(), tok, path


def permute_qk(w: Any, n_head: int) -> Any:
    """HF's rotary layout (each head's halves) -> llama.cpp's (interleaved pairs), as
    convert_hf_to_gguf.py's LlamaModel.permute; `n_head` is the kv head count for k."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def _export_gguf(adapter: Path, out: Path, quant: str, name: str) -> Exported:
    import gguf
    import numpy as np
    import torch

    model, tok, base_path = merged_model(adapter)
    c = model.config
    if getattr(c, "model_type", None) != "llama":
        raise ConfigError(
            f"GGUF export covers Llama-family models; this one is {c.model_type!r}. Write a "
            "model directory with `ragtune merge`, then llama.cpp's convert_hf_to_gguf.py on it"
        )
    rope = getattr(c, "rope_parameters", None) or getattr(c, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise ConfigError(
            f"the model uses rope scaling {rope}, which this exporter does not write; use "
            "`ragtune merge` and llama.cpp's convert_hf_to_gguf.py"
        )
    arch = gguf.MODEL_ARCH.LLAMA
    n_head, n_kv = c.num_attention_heads, c.num_key_value_heads or c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // n_head
    names = gguf.get_tensor_name_map(arch, c.num_hidden_layers)
    tmp = out.with_name(f".{out.name}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(tmp), gguf.MODEL_ARCH_NAMES[arch])
    w.add_name(name)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_context_length(int(c.max_position_embeddings))
    w.add_embedding_length(int(c.hidden_size))
    w.add_block_count(int(c.num_hidden_layers))
    w.add_feed_forward_length(int(c.intermediate_size))
    w.add_head_count(int(n_head))
    w.add_head_count_kv(int(n_kv))
    w.add_rope_freq_base(float(rope.get("rope_theta") or getattr(c, "rope_theta", 10000.0)))
    w.add_layer_norm_rms_eps(float(c.rms_norm_eps))
    w.add_rope_dimension_count(int(head_dim))
    vocab = int(model.get_input_embeddings().weight.shape[0])
    w.add_vocab_size(vocab)
    w.add_file_type(FILE_TYPE[quant])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _add_tokenizer(w, tok, vocab, base_path)

    state = {k: v.detach().to(torch.float32).numpy() for k, v in model.state_dict().items()}
    tied = bool(getattr(c, "tie_word_embeddings", False))
    count = 0
    for hf_name, data in state.items():
        if hf_name.endswith("rotary_emb.inv_freq") or (tied and hf_name == "lm_head.weight"):
            continue  # recomputed by llama.cpp / the output layer is the embedding (tied)
        gg = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gg is None:
            raise ConfigError(f"no GGUF name for tensor {hf_name!r}; this model is not plain Llama")
        if hf_name.endswith(("q_proj.weight", "q_proj.bias")):
            data = permute_qk(data, n_head)
        elif hf_name.endswith(("k_proj.weight", "k_proj.bias")):
            data = permute_qk(data, n_kv)
        data, qtype = _encode(data, quant, gguf, np)
        w.add_tensor(gg, data, raw_dtype=qtype)
        count += 1
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(out)  # whole or absent: a reader never sees a half-written file
    modelfile = out.with_name("Modelfile")
    modelfile.write_text(ollama_modelfile(out.name, tok), encoding="utf-8")
    run = [
        f"llama-cli -m {out} -cnv",
        f"llama-server -m {out} --port 8080   # then ragtune --model openai:{name}@http://127.0.0.1:8080/v1",
        f"cd {out.parent} && ollama create {name} -f Modelfile && ollama run {name}",
        f"lms import {out}   # LM Studio",
    ]
    return Exported(out, [out, modelfile], run)


def _encode(data, quant: str, gguf, np):
    """(array, GGML type or None) for one tensor: vectors stay f32 (llama.cpp wants norms in
    f32); matrices take the export's type where their rows fit its blocks, else f16."""
    T = gguf.GGMLQuantizationType
    if data.ndim < 2 or quant == "f32":
        return data.astype(np.float32), None
    if quant == "f16":
        return data.astype(np.float16), None
    qtype = {"q8_0": T.Q8_0, "q4_0": T.Q4_0}[quant]
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    if data.shape[-1] % block:
        return data.astype(np.float16), None
    return gguf.quants.quantize(data, qtype), qtype


def _add_tokenizer(w, tok, vocab: int, base_path) -> None:
    """llama.cpp's `gpt2` BPE tokenizer: every id's token text and type, the merges, the
    special ids and the chat template."""
    import gguf

    backend = getattr(tok, "backend_tokenizer", None) or getattr(tok, "_tokenizer", None)
    if backend is None:
        raise ConfigError("GGUF export needs a fast (tokenizers) BPE tokenizer")
    spec = json.loads(backend.to_str())
    model = spec.get("model", {})
    if model.get("type") != "BPE":
        raise ConfigError(f"GGUF export writes BPE tokenizers; this one is {model.get('type')}")
    by_id = {i: t for t, i in tok.get_vocab().items()}
    added = {a["id"]: a for a in spec.get("added_tokens", [])}
    T = gguf.TokenType
    tokens, types = [], []
    for i in range(vocab):
        t = by_id.get(i)
        if t is None:  # rows past the tokenizer (a padded embedding): llama.cpp's filler
            tokens.append(f"[PAD{i}]")
            types.append(T.UNUSED)
            continue
        tokens.append(t)
        a = added.get(i)
        types.append(T.NORMAL if a is None else (T.CONTROL if a.get("special") else T.USER_DEFINED))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(_pre_tokenizer(base_path))
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    for add, tid in (
        (w.add_bos_token_id, tok.bos_token_id),
        (w.add_eos_token_id, tok.eos_token_id),
        (w.add_unk_token_id, tok.unk_token_id),
        (w.add_pad_token_id, pad),
    ):
        if tid is not None:
            add(int(tid))
    w.add_add_bos_token(bool(getattr(tok, "add_bos_token", False)))
    w.add_add_space_prefix(False)
    if tok.chat_template:
        w.add_chat_template(tok.chat_template)


def _pre_tokenizer(base_path) -> str:
    """llama.cpp's name for the pre-tokenizer (its regex split before BPE). A base converted
    from a GGUF (the bundled SmolLM2) keeps the one its file names; otherwise "default" (GPT-2's
    split), which llama.cpp loads with a warning."""
    import gguf

    src = _source_gguf(base_path)
    if src is not None:
        field = gguf.GGUFReader(str(src)).fields.get("tokenizer.ggml.pre")
        if field is not None:
            return str(field.contents())
    return "default"


def _source_gguf(base_path) -> Path | None:
    """The GGUF file a converted base came from (ragtune.llm.bundled's cache), if any."""
    from ragtune.llm.bundled import smollm2_gguf

    try:
        src = smollm2_gguf()
    except ConfigError:
        return None
    if Path(base_path).name.startswith(src.stem + "-"):
        return src
    return None


OLLAMA_CHATML = """TEMPLATE \"\"\"{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
\"\"\"
PARAMETER stop "<|im_end|>"
"""


def ollama_modelfile(gguf_name: str, tok) -> str:
    """An Ollama Modelfile for the GGUF beside it. Ollama's TEMPLATE is a Go template, not the
    tokenizer's Jinja: ChatML templates get Ollama's ChatML; others the per-message wrapping
    their Jinja template renders for each role (role markers around the content)."""
    head = f"# written by ragtune export; ollama create NAME -f Modelfile\nFROM ./{gguf_name}\n"
    tmpl = tok.chat_template or ""
    if "<|im_start|>" in tmpl:
        return head + OLLAMA_CHATML
    if not tmpl:
        return head
    mark = "\x00CONTENT\x00"
    wrap = {}
    for role in ("system", "user", "assistant"):
        text = tok.apply_chat_template(
            [{"role": role, "content": mark}], tokenize=False, add_generation_prompt=False
        )
        if mark not in text:
            return head  # a template that drops the message: let the runtime use the file's
        pre, post = text.split(mark, 1)
        wrap[role] = (pre, post)
    gen = tok.apply_chat_template(
        [{"role": "user", "content": mark}], tokenize=False, add_generation_prompt=True
    ).split(mark, 1)[1]
    gen = gen[len(wrap["user"][1]) :]
    go = ['TEMPLATE """{{- range .Messages }}']
    for i, role in enumerate(("system", "user", "assistant")):
        pre, post = wrap[role]
        kw = "if" if i == 0 else "else if"
        go.append(f'{{{{- {kw} eq .Role "{role}" }}}}{pre}{{{{ .Content }}}}{post}')
    go.append("{{- end }}{{- end }}" + gen + '"""')
    stop = tok.eos_token
    return head + "\n".join(go) + "\n" + (f'PARAMETER stop "{stop}"\n' if stop else "")
