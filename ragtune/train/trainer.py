"""LoRA fine-tuning of a local causal LM: one loop for DSF, RAFT and (later) RoG data.

    ragtune train --data out/raft --out out/raft-lora                  # RAFT chat data
    ragtune train --data out/raft --view dsf --out out/dsf-lora        # DSF: question -> answer
    ragtune merge --adapter out/raft-lora/adapter --out out/raft-merged

Why a thin loop rather than Trainer: batches are length-grouped under a token budget (little
padding), and the LM head runs only on the positions that carry loss (the completion), which
on RAFT data — long documents, short answers — skips most of the 49k-way vocabulary projection.
Checkpoints hold the adapter, optimiser, scheduler and step; a re-run of the same command
resumes from the newest one. Ctrl-C saves a checkpoint before exiting.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError, DataError
from ragtune.llm.device import device_field, dtype_field
from ragtune.store import recover_all, recover_dir, remove_dir, staged_dir
from ragtune.train.data import (
    collate,
    conversations,
    encode_chat,
    encode_text,
    find_split,
    token_batches,
)


@dataclass
class TrainConfig:
    """LoRA fine-tuning on chat (RAFT), DSF (question -> answer) or raw domain text."""

    data: str = field(
        default="",
        metadata={
            "help": "RAFT output dir, a chat jsonl, or text files (view=text).",
            "required": True,
        },
    )
    out: str = field(
        default="",
        metadata={
            "help": "Output directory (adapter/, checkpoints, train_log.jsonl).",
            "required": True,
        },
    )
    model: str = field(
        default="smollm2-135m", metadata={"help": "Base model spec (a local model)."}
    )
    view: str = field(
        default="chat", metadata={"help": "chat | dsf | text (see ragtune.train.data)."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    target_modules: str = field(default="all-linear", metadata={"help": "Modules LoRA adapts."})
    lr: float = field(default=2e-4, metadata={"help": "Peak learning rate."})
    epochs: float = field(
        default=1.0, metadata={"help": "Passes over the data (fractions allowed)."}
    )
    max_steps: int = field(
        default=0, metadata={"help": "Stop after this many optimiser steps (0: epochs decide)."}
    )
    batch_tokens: int = field(
        default=2048, metadata={"help": "Token budget per micro-batch (batch x longest)."}
    )
    grad_accum: int = field(default=1, metadata={"help": "Micro-batches per optimiser step."})
    max_length: int = field(
        default=1024, metadata={"help": "Drop examples longer than this (tokens)."}
    )
    warmup_ratio: float = field(
        default=0.05, metadata={"help": "Share of steps warming up linearly."}
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    eval_every: int = field(
        default=0, metadata={"help": "Eval loss on the valid split every N steps (0: at the end)."}
    )
    save_every: int = field(default=50, metadata={"help": "Checkpoint every N steps."})
    seed: int = field(default=0, metadata={"help": "Seed for init, data order and dropout."})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads."})
    # dtype bf16/fp16: the frozen base weights are stored in it and matmuls run under autocast;
    # the trained LoRA matrices (and added-token rows) stay fp32, so AdamW keeps full precision
    device: str = device_field()
    dtype: str = dtype_field()
    bf16: bool = field(
        default=False,
        metadata={
            "help": "The older spelling of --dtype bf16 (kept for existing configs): frozen "
            "weights in bf16 + autocast, LoRA in fp32 (GPUs, CPUs with AVX512-BF16/AMX)."
        },
    )
    gradient_checkpointing: bool = field(
        default=False,
        metadata={
            "help": "Recompute each block's activations in the backward pass instead of "
            "keeping them: less memory for longer batches, ~30% more compute."
        },
    )
    load_in_4bit: bool = field(
        default=False,
        metadata={
            "help": "QLoRA: the frozen base quantised to 4-bit NF4 by bitsandbytes as it loads "
            "(CUDA only; pip install bitsandbytes); LoRA trains in fp32 on top."
        },
    )
    fast_lora: bool = field(
        default=True,
        metadata={
            "help": "Modules that read one input (q/k/v, gate/up) share a LoRA dropout mask "
            "and run their A matrices as one matmul (ragtune.train.fast); the adapter format "
            "is unchanged. Off: peft's modules as they are."
        },
    )
    resume: bool = field(
        default=True, metadata={"help": "Resume from the newest checkpoint in --out."}
    )
    adapter: str | None = field(
        default=None, metadata={"help": "Start from this adapter instead of a new one."}
    )
    added_token_lr: float = field(
        default=5e-3, metadata={"help": "Learning rate of the added tokens' embedding rows."}
    )
    add_tokens: list[str] = field(
        default_factory=list,
        metadata={
            "help": "New tokens for the tokenizer (e.g. RoG's <PATH>,<SEP>,</PATH>); their "
            "embedding rows start at the mean embedding and are trained with the adapter."
        },
    )
    # data-parallel training (ragtune.train.distributed); inside `accelerate launch` the
    # launcher decides the number of processes and these stay at their defaults
    processes: int = field(
        default=1,
        metadata={
            "help": "Data-parallel processes (devices, or CPU shares): the job re-launches "
            "itself through `accelerate launch`. The global batch is processes x grad-accum "
            "micro-batches."
        },
    )
    accelerate_config: str | None = field(
        default=None,
        metadata={
            "help": "An accelerate config file passed to `accelerate launch` (FSDP, DeepSpeed "
            "ZeRO, several machines); see docs/design.md."
        },
    )


def load_base(
    spec: str,
    threads: int | None = None,
    *,
    device=None,
    dtype=None,
    load_in_4bit: bool = False,
):
    """(model, tokenizer, base_path) for a local model spec; GGUF converted once and cached.

    The model is loaded in `dtype` (a torch dtype; default fp32) and placed on `device` (a
    torch.device; default CPU); `load_in_4bit` quantises it to NF4 on that (CUDA) device.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ragtune.llm.bundled import converted_gguf_dir, smollm2_gguf

    transformers.utils.logging.disable_progress_bar()
    if threads:
        torch.set_num_threads(threads)
    if spec.startswith("openai:"):
        raise ConfigError("training needs a local model: use smollm2-135m or a model directory")
    if spec in ("smollm2-135m", "smollm2", "default"):
        path = converted_gguf_dir(smollm2_gguf())
    else:
        p = Path(spec.removeprefix("gguf:"))
        path = converted_gguf_dir(p) if p.suffix == ".gguf" else p
    if not (Path(path) / "config.json").exists():
        raise ConfigError(f"{path} is not a model directory (no config.json)")
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    # loaded straight in the training dtype: a bf16 base never exists in fp32 (half the memory)
    kw: dict[str, Any] = {"dtype": dtype or torch.float32}
    if load_in_4bit:
        from transformers import BitsAndBytesConfig

        kw["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=kw["dtype"],
        )
        # bitsandbytes quantises the weights as they are placed on the GPU; a 4-bit model
        # cannot be moved afterwards
        idx = device.index if device.index is not None else torch.cuda.current_device()
        kw["device_map"] = {"": idx}
    model = AutoModelForCausalLM.from_pretrained(path, **kw)
    if device is not None and not load_in_4bit:
        model = model.to(device)
    return model, tok, str(path)


def add_tokens(model, tok, tokens: list[str]) -> list[int]:
    """Add `tokens` as special tokens; grow the embeddings (new rows = mean row). Their ids."""
    if not tokens:
        return []
    tok.add_special_tokens(
        {"additional_special_tokens": list(tokens)}, replace_extra_special_tokens=False
    )
    if model.get_input_embeddings().weight.shape[0] < len(tok):
        _grow(model, len(tok))
    return tok.convert_tokens_to_ids(list(tokens))


def _grow(model, n: int) -> None:
    """Resize the embeddings to `n` rows, the new ones at the mean row. transformers announces
    that init on every call (a paragraph and a link); it is the behaviour asked for, so the
    announcement is silenced for the call."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model.resize_token_embeddings(n, mean_resizing=True)
    finally:
        hf_logging.set_verbosity(was)


def grow_for_adapter(model, tok, adapter: str | Path):
    """Before loading `adapter`: take its tokenizer if it added tokens and grow the model."""
    from transformers import AutoTokenizer

    if not (Path(adapter) / "tokenizer_config.json").exists():
        return tok
    atok = AutoTokenizer.from_pretrained(adapter)
    if len(atok) != len(tok):
        _grow(model, len(atok))
        if atok.pad_token is None:
            atok.pad_token = atok.eos_token
        return atok
    return tok


def lm_parts(model):
    """(decoder, output head) of a causal LM, or of the one inside a peft model.

    Found through transformers' own accessors (`get_decoder`, `base_model`,
    `get_output_embeddings`), not attribute names: Llama keeps them as `model`/`lm_head`, GPT-2
    as `transformer`/`lm_head`, GPT-NeoX as `gpt_neox`/`embed_out`.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = base.get_output_embeddings()
    get = getattr(base, "get_decoder", None)
    dec = get() if get is not None else None
    if dec is None or dec is base:  # older transformers: get_decoder only on encoder-decoders
        dec = getattr(base, "base_model", None)
    if head is None or dec is None or dec is base:
        raise ConfigError(
            f"{type(base).__name__} is not a causal LM with a separate decoder and output "
            "head (get_decoder / get_output_embeddings); train a model AutoModelForCausalLM "
            "loads as one"
        )
    return dec, head


def completion_loss(model, ids, att, labels, full_logits: bool = False):
    """Mean cross-entropy over positions whose next token has a label.

    Runs the transformer body on the whole batch but the LM head only on the N labelled
    positions: hidden (B, T, H) -> selected (N, H) -> logits (N, V). `att` (B, T) is 1 on real
    tokens. `full_logits`: take the logits from the model's own forward instead (for models
    whose forward transforms the head's output; see `plain_head`).
    """
    import torch
    import torch.nn.functional as F

    if att is not None and bool(
        (att.sum(1, keepdim=True) > torch.arange(att.shape[1], device=att.device)).eq(att).all()
    ):
        # Right padding under a causal mask: no real token can see a pad (pads come after
        # it), and pad positions carry no label. Without the padding mask SDPA runs its causal
        # kernel, which skips the upper triangle instead of computing all T x T scores.
        att = None
    tgt = labels[:, 1:]  # token t+1 is predicted at position t
    sel = tgt != -100  # (B, T-1)
    if full_logits:
        logits = model(input_ids=ids, attention_mask=att, use_cache=False).logits
        logits = logits[:, :-1][sel].float()  # (N, V)
    else:
        dec, head = lm_parts(model)
        # use_cache=False: no key/value cache is built for a training forward
        hidden = dec(input_ids=ids, attention_mask=att, use_cache=False).last_hidden_state
        h = hidden[:, :-1][sel]  # (B, T, H) -> (N, H)
        logits = head(h).float()  # (N, V)
    n = int(sel.sum())
    if n == 0:
        return torch.zeros((), device=ids.device, requires_grad=True), 0
    return F.cross_entropy(logits, tgt[sel]), n


def plain_head(model, example) -> bool:
    """Whether the model's logits are its output head applied to its decoder's last hidden
    state, checked on one example. Most families are; some transform them in their forward
    (Gemma 2's soft-capping, Cohere's logit scale, Granite's logit divisor), and for those the
    loss must take the model's own logits."""
    import torch

    ids = torch.tensor([example.input_ids[:64]], device=next(model.parameters()).device)
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            dec, head = lm_parts(model)
            mine = head(dec(input_ids=ids, use_cache=False).last_hidden_state).float()
            theirs = model(input_ids=ids, use_cache=False).logits.float()
    finally:
        model.train(was)
    tol = 1e-3 * float(theirs.abs().max().clamp_min(1.0))
    return mine.shape == theirs.shape and bool((mine - theirs).abs().max() <= tol)


def _checkpoints(out: Path) -> list[Path]:
    recover_all(out)  # put back or sweep what a save killed mid-swap left
    cks = [p for p in out.glob("checkpoint-*") if (p / "state.json").exists()]
    return sorted(cks, key=lambda p: int(p.name.split("-")[1]))


def _save_checkpoint(out: Path, model, opt, sched, step: int, keep: int = 2, scaler=None) -> Path:
    import torch

    target = out / f"checkpoint-{step}"
    # Checkpoints live in the run directory under names ragtune chose: no marker to check.
    with staged_dir(target, marker=None) as tmp:
        model.save_pretrained(tmp / "adapter", save_embedding_layers=False)
        state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
        if scaler is not None:  # fp16: the loss scale it has settled on
            state["scaler"] = scaler.state_dict()
        torch.save(state, tmp / "optim.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step}))
    for old in _checkpoints(out)[:-keep]:
        remove_dir(old)
    return target


def train(
    cfg: TrainConfig,
    *,
    progress: Callable[[int, int, dict], None] | None = None,
    model=None,
    tokenizer=None,
) -> dict[str, Any]:
    """Train; returns a summary (steps, losses, tokens/s). `model`/`tokenizer` skip loading."""
    import torch

    from ragtune.extras import require

    require("peft", "training")
    from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict
    from transformers import get_cosine_schedule_with_warmup

    from ragtune.llm.device import short_name
    from ragtune.train import distributed
    from ragtune.train.fast import speed_up

    if cfg.view not in ("chat", "dsf", "text"):
        raise ConfigError(f"--view {cfg.view!r}: use chat, dsf or text")
    distributed.check(cfg, model)
    if distributed.wants_launch(cfg):  # this process only launches and waits for the ranks
        return distributed.launch(cfg, progress)
    device, dtype = _precision(cfg)  # before any loading: a wrong setting fails at once
    # inside a launch: this rank's share of each global batch; None: one process, as always
    dist = distributed.Dist(cpu=device.type == "cpu") if distributed.world_size() > 1 else None
    main = dist is None or dist.main  # who logs, saves and reports
    if dist is not None:
        device = dist.device  # accelerate's choice for this rank (cuda:LOCAL_RANK, or cpu)
    if cfg.load_in_4bit and model is not None:
        raise ConfigError(
            "load_in_4bit quantises the base model as it loads: pass its spec as "
            "TrainConfig.model instead of model=, or drop load_in_4bit"
        )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    base_path = cfg.model
    if model is None:
        model, tokenizer, base_path = load_base(
            cfg.model, cfg.threads, device=device, dtype=dtype, load_in_4bit=cfg.load_in_4bit
        )
    else:
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        model.to(device)  # a caller's model trains where cfg.device says (and stays there)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # the summary reports this run's peak
    tok = tokenizer
    new_ids = add_tokens(model, tok, cfg.add_tokens)

    # -- data ---------------------------------------------------------------------------
    dropped = 0
    if cfg.view == "text":
        from ragtune.corpus.loaders import load_corpus

        docs, _ = load_corpus([cfg.data])
        train_ex = encode_text(tok, [d.text for d in docs], cfg.max_length)
        valid_ex = []
    else:
        tpath = find_split(cfg.data, cfg.view, "train")
        if tpath is None:
            raise DataError(
                f"no training split found under {cfg.data} (expected {cfg.view} data: "
                "a RAFT output dir or a jsonl file)"
            )
        train_ex, dropped = encode_chat(tok, conversations(tpath, cfg.view), cfg.max_length)
        vpath = find_split(cfg.data, cfg.view, "valid")
        valid_ex = (
            encode_chat(tok, conversations(vpath, cfg.view), cfg.max_length)[0] if vpath else []
        )
    if not train_ex:
        raise DataError(
            f"no training examples in {cfg.data} (dropped {dropped} longer than "
            f"--max-length {cfg.max_length})"
        )
    if dropped:
        # silent loss of data would bias training toward short examples: say so up front
        warnings.warn(
            f"{dropped} of {dropped + len(train_ex)} training examples in {cfg.data} are longer "
            f"than --max-length {cfg.max_length} tokens and are left out; raise --max-length "
            "to train on them",
            stacklevel=2,
        )
    lengths = [len(e.input_ids) for e in train_ex]
    per_epoch = len(token_batches(lengths, cfg.batch_tokens, cfg.seed, 0))
    total_micro = math.ceil(per_epoch * cfg.epochs)
    world = 1 if dist is None else dist.world  # a step takes grad_accum micro-batches per rank
    total_steps = cfg.max_steps or max(1, total_micro // (cfg.grad_accum * world))

    # -- model --------------------------------------------------------------------------
    if cfg.adapter:
        tok = grow_for_adapter(model, tok, cfg.adapter)
        acfg = json.loads((Path(cfg.adapter) / "adapter_config.json").read_text())
        tti = acfg.get("trainable_token_indices") or {}
        # a list (this version) or {embedding module name: ids} (older adapters)
        covered = set(tti) if isinstance(tti, list) else {i for v in tti.values() for i in v}
        if new_ids and not set(new_ids) <= covered:
            raise ConfigError(
                f"--adapter {cfg.adapter} was trained without the added tokens "
                f"{cfg.add_tokens}: their rows would stay untrained; start a new adapter "
                "(no --adapter) or continue one trained with the same --add-tokens"
            )
        model = PeftModel.from_pretrained(model, cfg.adapter, is_trainable=True)
    else:
        lcfg = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=cfg.target_modules,
            # GPT-2-style Conv1D layers store their weight transposed; peft would warn and
            # flip this itself on the first one
            fan_in_fan_out=_has_conv1d(model),
            task_type="CAUSAL_LM",
            # Only the added tokens' rows of the embedding train (tied to the LM head when
            # the model ties them), not the whole 49k x 576 matrix. A list: peft finds the
            # input embedding itself (embed_tokens, wte, embed_in, ... by family).
            trainable_token_indices=list(new_ids) if new_ids else None,
        )
        model = get_peft_model(model, lcfg)
    if cfg.load_in_4bit:
        # norms and embeddings in fp32 for a stable backward through the 4-bit layers
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    undo_fast = speed_up(model) if cfg.fast_lora else (lambda: None)
    # a 4-bit base is already low precision (prepare_model_for_kbit_training keeps the rest fp32)
    fp32_weights = {} if cfg.load_in_4bit else _frozen_to(model, dtype)
    _trainable_to_fp32(model)
    undo_ckpt = _checkpointing(model) if cfg.gradient_checkpointing else (lambda: None)
    try:
        params = [p for p in model.parameters() if p.requires_grad]
        # Added tokens start from the mean embedding and must travel far (their rows are also
        # their output logits, tied): at the LoRA learning rate they barely move in a short run.
        tok_params = [
            p for n, p in model.named_parameters() if p.requires_grad and "token_adapter" in n
        ]
        groups = [{"params": [p for p in params if all(p is not q for q in tok_params)]}]
        if tok_params:
            groups.append({"params": tok_params, "lr": cfg.added_token_lr, "weight_decay": 0.0})
        opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = get_cosine_schedule_with_warmup(
            opt, int(cfg.warmup_ratio * total_steps), total_steps
        )
        step = 0
        if dist is not None and not main:
            dist.barrier()  # rank 0 first: it puts back what a killed save left aside
        cks = _checkpoints(out) if cfg.resume else []
        if dist is not None and main:
            dist.barrier()
        if cks:
            from safetensors.torch import load_file

            ck = cks[-1]
            set_peft_model_state_dict(
                model, load_file(str(ck / "adapter" / "adapter_model.safetensors"))
            )
            st = torch.load(ck / "optim.pt", weights_only=False)
            opt.load_state_dict(st["optimizer"])
            sched.load_state_dict(st["scheduler"])
            step = json.loads((ck / "state.json").read_text())["step"]
        resumed_from = step
        if dist is not None:  # wrapped after resuming: the saved state loads into the bare one
            opt = dist.prepare(model, opt)
            dist.write_total(out, total_steps)

        # -- loop ---------------------------------------------------------------------------
        log_path = out / "train_log.jsonl"
        if step == 0 and log_path.exists() and main:
            log_path.unlink()
        # only rank 0 writes the log; the others' records (the same numbers) go nowhere
        log = open(log_path if main else os.devnull, "a", encoding="utf-8")
        low = dtype != torch.float32
        amp = torch.autocast(device.type, dtype=dtype) if low else _null()
        # fp16's range is narrow: small gradients underflow to zero unless the loss is scaled
        # up first (bf16 has fp32's range and needs none)
        scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
        if scaler is not None and cks and "scaler" in st:
            scaler.load_state_dict(st["scaler"])
        with amp:
            full_logits = not plain_head(model, train_ex[0])
        if full_logits:
            warnings.warn(
                f"{type(model.get_base_model()).__name__}'s forward transforms its output "
                "head's logits: the loss takes the logits of every position (slower, same loss)",
                stacklevel=2,
            )
        pad = tok.pad_token_id
        model.train()
        t0 = time.time()
        tokens_seen = 0  # real (unpadded) tokens through the model this run
        first_loss = last_loss = None
        micro_done = step * cfg.grad_accum * world  # micro-batches consumed before this run

        def micro_batches():
            epoch = 0
            while True:
                yield from token_batches(lengths, cfg.batch_tokens, cfg.seed, epoch)
                epoch += 1

        it = micro_batches()
        for _ in range(micro_done):  # skip what earlier runs consumed: same order, no repeats
            next(it)
        if dist is None:
            forward, backward, clip = completion_loss, (lambda t: t.backward()), None
        else:  # through the wrapper (DDP's gradient hooks), accelerate's backward and clipping
            forward, backward, clip = dist.completion_loss, dist.acc.backward, dist.acc
        interrupted = False
        try:
            while step < total_steps:
                opt.zero_grad(set_to_none=True)
                loss_sum, n_sum = 0.0, 0
                tokens_before = tokens_seen
                for _ in range(cfg.grad_accum):
                    batch = [train_ex[i] for i in (next(it) if dist is None else dist.mine(it))]
                    ids, att, lab = collate(batch, pad)
                    tokens_seen += int(att.sum())  # counted on the host, before the copy
                    ids, att, lab = ids.to(device), att.to(device), lab.to(device)
                    with amp:
                        loss, n = forward(model, ids, att, lab, full_logits)
                    part = loss / cfg.grad_accum
                    # With DDP every backward all-reduces (no no_sync over the accumulation):
                    # LoRA's gradients are a few MB, and the mean over ranks is the same.
                    backward(scaler.scale(part) if scaler is not None else part)
                    loss_sum += float(loss.detach()) * n
                    n_sum += n
                if dist is not None:  # the logged loss and tokens/s are the global batch's
                    loss_sum, n_sum, step_tokens = dist.sum(
                        loss_sum, n_sum, tokens_seen - tokens_before
                    )
                    tokens_seen = tokens_before + int(step_tokens)
                if scaler is not None:
                    scaler.unscale_(opt)  # clip the true gradients, not the scaled ones
                if clip is None:
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                else:
                    clip.clip_grad_norm_(params, 1.0)
                if scaler is not None:
                    scaler.step(opt)  # skipped when a gradient overflowed; the scale drops
                    scaler.update()
                else:
                    opt.step()
                with warnings.catch_warnings():
                    # the scaler skips the first steps while it finds its scale; torch then
                    # mistakes the schedule for being stepped before the optimiser
                    warnings.filterwarnings(
                        "ignore", "Detected call of `lr_scheduler.step", UserWarning
                    )
                    sched.step()
                step += 1
                loss_v = loss_sum / max(1, n_sum)
                first_loss = loss_v if first_loss is None else first_loss
                last_loss = loss_v
                rec = {
                    "step": step,
                    "loss": round(loss_v, 5),
                    "lr": sched.get_last_lr()[0],
                    "tokens_per_s": round(tokens_seen / max(1e-9, time.time() - t0), 1),
                    "elapsed_s": round(time.time() - t0, 2),
                }
                if cfg.eval_every and step % cfg.eval_every == 0 and valid_ex and main:
                    with amp:  # the same precision as training
                        rec["eval_loss"] = round(
                            evaluate_loss(model, valid_ex, pad, cfg.batch_tokens, full_logits), 5
                        )
                log.write(json.dumps(rec) + "\n")
                log.flush()
                if progress and main:
                    progress(step, total_steps, rec)
                if cfg.save_every and step % cfg.save_every == 0 and step < total_steps and main:
                    _save_checkpoint(out, model, opt, sched, step, scaler=scaler)
        except KeyboardInterrupt:
            interrupted = True
            if main:
                _save_checkpoint(out, model, opt, sched, step, scaler=scaler)
        loop_s = time.time() - t0  # training only: the final eval below is not in tokens/s
        eval_loss = None
        if valid_ex and not interrupted and main:
            with amp:
                eval_loss = evaluate_loss(model, valid_ex, pad, cfg.batch_tokens, full_logits)
        if eval_loss is not None:
            log.write(json.dumps({"step": step, "eval_loss": round(eval_loss, 5)}) + "\n")
        log.close()
        summary = {
            "steps": step,
            "resumed_from": resumed_from,
            "interrupted": interrupted,
            "examples": len(train_ex),
            "dropped_too_long": dropped,
            "first_loss": first_loss,
            "last_loss": last_loss,
            "eval_loss": eval_loss,
            "tokens_per_s": round(tokens_seen / max(1e-9, loop_s), 1),
            "seconds": round(time.time() - t0, 1),
            "device": str(device),
            "dtype": short_name(dtype),
            # what this run's tensors took on the GPU at most (None on CPU)
            "peak_memory_mb": (
                round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
                if device.type == "cuda"
                else None
            ),
            "base_model": base_path,
            "config": asdict(cfg),
        }
        if dist is not None:
            summary["processes"] = dist.world
    finally:  # hand the caller's model back in its own precision, whatever happened
        for p, w in fp32_weights.items():
            p.data = w
        undo_ckpt()
        undo_fast()
    if not interrupted and main:
        _save_adapter(model, tok, out / "adapter", adapter_info(cfg, base_path))
        for ck in _checkpoints(out):
            remove_dir(ck)  # a half-deleted checkpoint would be resumed from next time
    if main:
        (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    if dist is not None:
        dist.barrier()  # no rank exits (ending the launch) before rank 0 has saved
    if interrupted:
        raise KeyboardInterrupt
    return summary


def _has_conv1d(model) -> bool:
    from transformers.pytorch_utils import Conv1D

    return any(isinstance(m, Conv1D) for m in model.modules())


def _precision(cfg: TrainConfig):
    """(torch.device, torch.dtype) of a run: cfg.device and cfg.dtype, with the older `bf16`
    flag read as dtype bf16; 4-bit loading checked where it can run."""
    from ragtune.llm.device import DTYPES, resolve

    dtype = cfg.dtype
    if cfg.bf16:
        if DTYPES.get(dtype.strip().lower(), dtype) not in ("bfloat16", "auto"):
            raise ConfigError(
                f"bf16=True (--bf16) and dtype={cfg.dtype!r} (--dtype) disagree: --bf16 is the "
                "older spelling of --dtype bf16; pass only one of them"
            )
        dtype = "bf16"
    device, tdtype = resolve(cfg.device, dtype)
    if cfg.load_in_4bit:
        if device.type != "cuda":
            raise ConfigError(
                f"load_in_4bit (--load-in-4bit) needs a CUDA GPU (bitsandbytes' 4-bit kernels), "
                f"but this run is on {device} (device={cfg.device!r}); drop --load-in-4bit to "
                "train LoRA on the unquantised model, or run on a machine with a CUDA GPU"
            )
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise ConfigError(
                "load_in_4bit (--load-in-4bit) needs bitsandbytes: pip install bitsandbytes "
                "(or drop --load-in-4bit)"
            ) from None
    return device, tdtype


def _frozen_to(model, dtype) -> dict:
    """Store the frozen fp32 base weights in `dtype` (bf16, fp16) for the run; returns {param:
    fp32 tensor} to put back. A no-op for fp32, and for a base already loaded in `dtype`.

    Under autocast alone they stay fp32 and are re-cast on every forward and backward
    (autocast caches only the casts of weights that require grad). The trained LoRA matrices
    and token rows stay fp32, so AdamW updates keep full precision.
    """
    import torch

    kept = {}
    if dtype == torch.float32:
        return kept
    for p in model.parameters():
        if not p.requires_grad and p.dtype == torch.float32:
            kept[p] = p.data
            p.data = p.data.to(dtype)
    return kept


def _trainable_to_fp32(model) -> None:
    """Trained parameters in fp32 whatever the base's dtype: peft makes LoRA matrices fp32 on a
    bf16/fp16 base itself, but added-token rows are copied from the embedding in its dtype, and
    AdamW's small updates vanish in bf16."""
    import torch

    for p in model.parameters():
        if p.requires_grad and p.dtype in (torch.bfloat16, torch.float16):
            p.data = p.data.float()


def _checkpointing(model) -> Callable[[], None]:
    """Turn on activation (gradient) checkpointing in the transformers model inside `model`;
    returns the function that turns it off again."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise ConfigError(
            f"gradient_checkpointing (--gradient-checkpointing): {type(base).__name__} does not "
            "support it; drop the flag"
        )
    # non-reentrant: torch's recommended kind; it also restores the RNG state for the
    # recomputation, so LoRA dropout (ragtune.train.fast's shared masks too) draws the same
    # masks again and the gradients equal those without checkpointing
    kw = {"use_reentrant": False}
    enable = getattr(base, "activation_checkpointing_enable", None)  # transformers >= 5.x
    if enable is not None:
        enable(activation_checkpointing_kwargs=kw)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kw)
    # LoRA freezes the embeddings, so the first block's input needs no grad; a model whose
    # checkpointing is reentrant regardless would then skip the backward through its blocks
    base.enable_input_require_grads()

    def undo() -> None:
        base.disable_input_require_grads()
        disable = getattr(base, "activation_checkpointing_disable", None)
        (disable or base.gradient_checkpointing_disable)()

    return undo


def adapter_info(cfg: TrainConfig, base_path: str) -> dict:
    """What an adapter was trained on, saved beside it (ragtune.rag.formats.ADAPTER_INFO): the
    prompt format its training examples used (so ask/serve/eval ask it the same way), the base
    model, and the data manifest's hash (which build of the data it learned)."""
    import hashlib

    data = Path(cfg.data)
    manifest = data / "manifest.json" if data.is_dir() else None
    meta: dict = {}
    digest = None
    if manifest is not None and manifest.exists():
        raw = manifest.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        meta = json.loads(raw)
    settings = meta.get("settings") or {}  # a RAFT build keeps its config under "settings"
    if cfg.view == "dsf":
        fmt = "dsf"
    elif cfg.view == "text":
        fmt = None  # continued pre-training: no prompt of its own, asked like the base model
    elif "distractors" in settings:  # a RAFT build: its instruction is the `raft` format
        fmt = "raft"
    elif "max_hops" in meta:  # a `rog build-data` directory (its config at the top level)
        fmt = "rog"
    else:
        fmt = "chat"  # chat data from elsewhere: its own prompts, not a RAG format
    return {
        "prompt_format": fmt,
        "system_prompt": settings.get("system_prompt") if fmt == "raft" else None,
        "view": cfg.view,
        "base_model": cfg.model,
        "base_path": base_path,
        "data": str(cfg.data),
        "data_manifest_sha256": digest,
    }


def _save_adapter(model, tok, path: Path, info: dict | None = None) -> None:
    from ragtune.rag.formats import ADAPTER_INFO

    with staged_dir(path, marker="adapter_config.json", what="adapter") as tmp:
        # Added tokens train as peft "trainable tokens" (their rows are saved); the resized
        # embedding matrix itself need not be (peft would save all of it: ~110 MB here).
        model.save_pretrained(tmp, save_embedding_layers=False)
        tok.save_pretrained(tmp)
        if info is not None:
            (tmp / ADAPTER_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def evaluate_loss(model, examples, pad: int, batch_tokens: int, full_logits: bool = False) -> float:
    import torch

    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.inference_mode():
        for b in token_batches([len(e.input_ids) for e in examples], batch_tokens, 0, 0):
            ids, att, lab = (t.to(device) for t in collate([examples[i] for i in b], pad))
            loss, n = completion_loss(model, ids, att, lab, full_logits)
            total += float(loss) * n
            count += n
    model.train()
    return total / max(1, count)


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def merge(adapter: str | Path, out: str | Path) -> Path:
    """Fold a LoRA adapter into its base model and save a full model directory."""
    from ragtune.extras import require

    PeftModel = require("peft", "merging").PeftModel

    adapter, out = Path(adapter), Path(out)
    recover_dir(adapter)  # a save killed mid-swap may have left the adapter moved aside
    cfgf = adapter / "adapter_config.json"
    if not cfgf.exists():
        raise ConfigError(f"{adapter} is not a PEFT adapter (no adapter_config.json)")
    base_path = json.loads(cfgf.read_text())["base_model_name_or_path"]
    model, tok, _ = load_base(base_path)
    tok = grow_for_adapter(model, tok, adapter)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.hf_quantizer = None  # a model converted from GGUF carries none, but be safe
    with staged_dir(out, marker="config.json", what="model directory") as tmp:
        merged.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return out
