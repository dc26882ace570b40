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
    bf16: bool = field(
        default=False,
        metadata={
            "help": "bfloat16: frozen weights stored in bf16 + autocast; LoRA stays fp32 "
            "(CPUs with AVX512-BF16/AMX)."
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


def load_base(spec: str, threads: int | None = None):
    """(model, tokenizer, base_path) for a local model spec; GGUF converted once and cached."""
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
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model, tok, str(path)


def add_tokens(model, tok, tokens: list[str]) -> list[int]:
    """Add `tokens` as special tokens; grow the embeddings (new rows = mean row). Their ids."""
    if not tokens:
        return []
    tok.add_special_tokens(
        {"additional_special_tokens": list(tokens)}, replace_extra_special_tokens=False
    )
    if model.get_input_embeddings().weight.shape[0] < len(tok):
        model.resize_token_embeddings(len(tok), mean_resizing=True)
    return tok.convert_tokens_to_ids(list(tokens))


def grow_for_adapter(model, tok, adapter: str | Path):
    """Before loading `adapter`: take its tokenizer if it added tokens and grow the model."""
    from transformers import AutoTokenizer

    if not (Path(adapter) / "tokenizer_config.json").exists():
        return tok
    atok = AutoTokenizer.from_pretrained(adapter)
    if len(atok) != len(tok):
        model.resize_token_embeddings(len(atok), mean_resizing=True)
        if atok.pad_token is None:
            atok.pad_token = atok.eos_token
        return atok
    return tok


def completion_loss(model, ids, att, labels):
    """Mean cross-entropy over positions whose next token has a label.

    Runs the transformer body on the whole batch but the LM head only on the N labelled
    positions: hidden (B, T, H) -> selected (N, H) -> logits (N, V). `att` (B, T) is 1 on real
    tokens.
    """
    import torch
    import torch.nn.functional as F

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if att is not None and bool(
        (att.sum(1, keepdim=True) > torch.arange(att.shape[1], device=att.device)).eq(att).all()
    ):
        # Right padding under a causal mask: no real token can see a pad (pads come after
        # it), and pad positions carry no label. Without the padding mask SDPA runs its causal
        # kernel, which skips the upper triangle instead of computing all T x T scores.
        att = None
    hidden = base.model(input_ids=ids, attention_mask=att).last_hidden_state  # (B, T, H)
    tgt = labels[:, 1:]  # token t+1 is predicted at position t
    sel = tgt != -100  # (B, T-1)
    h = hidden[:, :-1][sel]  # (N, H)
    logits = base.lm_head(h).float()  # (N, V)
    n = int(sel.sum())
    if n == 0:
        return torch.zeros((), requires_grad=True), 0
    return F.cross_entropy(logits, tgt[sel]), n


def _checkpoints(out: Path) -> list[Path]:
    recover_all(out)  # put back or sweep what a save killed mid-swap left
    cks = [p for p in out.glob("checkpoint-*") if (p / "state.json").exists()]
    return sorted(cks, key=lambda p: int(p.name.split("-")[1]))


def _save_checkpoint(out: Path, model, opt, sched, step: int, keep: int = 2) -> Path:
    import torch

    target = out / f"checkpoint-{step}"
    # Checkpoints live in the run directory under names ragtune chose: no marker to check.
    with staged_dir(target, marker=None) as tmp:
        model.save_pretrained(tmp / "adapter", save_embedding_layers=False)
        torch.save(
            {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp / "optim.pt"
        )
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

    from ragtune.train import distributed
    from ragtune.train.fast import speed_up

    if cfg.view not in ("chat", "dsf", "text"):
        raise ConfigError(f"--view {cfg.view!r}: use chat, dsf or text")
    distributed.check(cfg, model)
    if distributed.wants_launch(cfg):  # this process only launches and waits for the ranks
        return distributed.launch(cfg, progress)
    # inside a launch: this rank's share of each global batch; None: one process, as always
    dist = distributed.Dist(cpu=True) if distributed.world_size() > 1 else None
    main = dist is None or dist.main  # who logs, saves and reports
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    base_path = cfg.model
    if model is None:
        model, tokenizer, base_path = load_base(cfg.model, cfg.threads)
    elif cfg.threads:
        torch.set_num_threads(cfg.threads)
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
        covered = set(tti if isinstance(tti, list) else tti.get("embed_tokens", []))
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
            task_type="CAUSAL_LM",
            # Only the added tokens' rows of the embedding train (tied to the LM head here),
            # not the whole 49k x 576 matrix.
            trainable_token_indices={"embed_tokens": new_ids} if new_ids else None,
        )
        model = get_peft_model(model, lcfg)
    undo_fast = speed_up(model) if cfg.fast_lora else (lambda: None)
    fp32_weights = _frozen_to_bf16(model) if cfg.bf16 else {}
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
        amp = torch.autocast("cpu", dtype=torch.bfloat16) if cfg.bf16 else _null()
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
                    with amp:
                        loss, n = forward(model, ids, att, lab)
                    # With DDP every backward all-reduces (no no_sync over the accumulation):
                    # LoRA's gradients are a few MB, and the mean over ranks is the same.
                    backward(loss / cfg.grad_accum)
                    loss_sum += float(loss.detach()) * n
                    n_sum += n
                    tokens_seen += int(att.sum())
                if dist is not None:  # the logged loss and tokens/s are the global batch's
                    loss_sum, n_sum, step_tokens = dist.sum(
                        loss_sum, n_sum, tokens_seen - tokens_before
                    )
                    tokens_seen = tokens_before + int(step_tokens)
                if clip is None:
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                else:
                    clip.clip_grad_norm_(params, 1.0)
                opt.step()
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
                            evaluate_loss(model, valid_ex, pad, cfg.batch_tokens), 5
                        )
                log.write(json.dumps(rec) + "\n")
                log.flush()
                if progress and main:
                    progress(step, total_steps, rec)
                if cfg.save_every and step % cfg.save_every == 0 and step < total_steps and main:
                    _save_checkpoint(out, model, opt, sched, step)
        except KeyboardInterrupt:
            interrupted = True
            if main:
                _save_checkpoint(out, model, opt, sched, step)
        loop_s = time.time() - t0  # training only: the final eval below is not in tokens/s
        eval_loss = None
        if valid_ex and not interrupted and main:
            with amp:
                eval_loss = evaluate_loss(model, valid_ex, pad, cfg.batch_tokens)
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
            "base_model": base_path,
            "config": asdict(cfg),
        }
        if dist is not None:
            summary["processes"] = dist.world
    finally:  # hand the caller's model back in its own precision, whatever happened
        for p, w in fp32_weights.items():
            p.data = w
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


def _frozen_to_bf16(model) -> dict:
    """Store the frozen base weights in bf16 for the run; returns {param: fp32 tensor}.

    Under autocast alone they stay fp32 and are re-cast on every forward and backward
    (autocast caches only the casts of weights that require grad). The trained LoRA matrices
    and token rows stay fp32, so AdamW updates keep full precision.
    """
    import torch

    kept = {}
    for p in model.parameters():
        if not p.requires_grad and p.dtype == torch.float32:
            kept[p] = p.data
            p.data = p.data.to(torch.bfloat16)
    return kept


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


def evaluate_loss(model, examples, pad: int, batch_tokens: int) -> float:
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for b in token_batches([len(e.input_ids) for e in examples], batch_tokens, 0, 0):
            ids, att, lab = collate([examples[i] for i in b], pad)
            loss, n = completion_loss(model, ids, att, lab)
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
