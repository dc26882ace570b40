"""Trained tokens/s on the bundled SmolLM2-135M: ragtune's trainer vs a plain HF Trainer.

    python benchmarks/train_throughput.py                       # fictional API docs, 12 steps
    python benchmarks/train_throughput.py --raft runs/out/gorilla/raft --steps 8
    python benchmarks/train_throughput.py --precisions fp32     # skip the bf16 pair
    python benchmarks/train_throughput.py --ablate              # + ragtune without --fast-lora

Same RAFT data (by default fictional API docs, oracle + 3 distractors; `--raft DIR` takes any
RAFT output, e.g. the Gorilla one from runs/raft_gorilla.sh), same LoRA (r=16, all linear
layers), same optimiser and learning rate, same number of optimiser steps, and the same
precision on both sides of each ratio: fp32, then bf16 (HF: `bf16=True`, autocast over fp32
weights; ragtune: `--bf16`, autocast over bf16-stored frozen weights).
The peer is `transformers.Trainer` with a pad-to-longest collator (DataCollatorForSeq2Seq) and
`--batch` examples per step in random order. ragtune gets a token budget of batch x mean length
per step, so both see about the same number of examples per step. Throughput counts real
(non-padding) tokens.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--raft", default=None, help="A RAFT output dir (default: build fictional)")
    ap.add_argument("--precisions", default="fp32,bf16", help="fp32, bf16 or both")
    ap.add_argument(
        "--ablate",
        action="store_true",
        help="Also run ragtune with fast_lora=False (peft's own dropout and LoRA A modules)",
    )
    args = ap.parse_args()

    import numpy as np
    import torch
    from rich.console import Console
    from rich.table import Table

    from ragtune.examples.fictional import write_fictional_api
    from ragtune.raft.build import Builder, RaftConfig, corpus_units
    from ragtune.train.data import conversations, encode_chat, find_split
    from ragtune.train.trainer import load_base

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="train-bench-"))
    raft = Path(args.raft) if args.raft else tmp / "raft"
    if not args.raft:
        api = write_fictional_api(tmp / "api.jsonl", 48)
        rc = RaftConfig(
            out=str(raft), questions=2, distractors=3, valid_fraction=0, test_fraction=0
        )
        Builder(rc, *corpus_units([str(api)], rc)).run()
    _, tok, _ = load_base("smollm2-135m", args.threads)
    examples, _ = encode_chat(tok, conversations(find_split(raft, "chat", "train"), "chat"), 1024)
    lens = np.array([len(e.input_ids) for e in examples])
    mean_len = float(lens.mean())

    table = Table(
        title=f"{args.steps} steps, LoRA r=16 on SmolLM2-135M, {len(examples)} RAFT examples "
        f"(tokens: mean {mean_len:.0f}, min {lens.min()}, max {lens.max()}), "
        f"{args.threads} threads"
    )
    for c in ("trainer", "precision", "trained tokens/s", "wall s (incl. start-up)", "ratio"):
        table.add_column(c)
    for prec in [p.strip() for p in args.precisions.split(",") if p.strip()]:
        bf16 = prec == "bf16"
        hf_tps, hf_s = run_hf(examples, tmp / f"hf-{prec}", args, bf16)
        ours_tps, ours_s, budget = run_ours(raft, tmp / f"ours-{prec}", args, mean_len, bf16)
        table.add_row(
            f"HF Trainer, pad to longest, batch {args.batch}",
            prec,
            f"{hf_tps:.0f}",
            f"{hf_s:.1f}",
            "",
        )
        if args.ablate:
            tps, secs, _ = run_ours(raft, tmp / f"plain-{prec}", args, mean_len, bf16, False)
            table.add_row(
                "ragtune train, --no-fast-lora",
                prec,
                f"{tps:.0f}",
                f"{secs:.1f}",
                f"{tps / hf_tps:.2f}x",
            )
        table.add_row(
            f"ragtune train, length-grouped, {budget}-token budget",
            prec,
            f"{ours_tps:.0f}",
            f"{ours_s:.1f}",
            f"{ours_tps / hf_tps:.2f}x",
        )
    Console(width=160).print(table)


def run_hf(examples, out: Path, args, bf16: bool) -> tuple[float, float]:
    """The peer: transformers.Trainer, pad-to-longest batches in random order."""
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from ragtune.train.trainer import load_base

    model, tok, _ = load_base("smollm2-135m", args.threads)
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    pm = get_peft_model(model, lora)
    ds = [
        {"input_ids": e.input_ids, "attention_mask": [1] * len(e.input_ids), "labels": e.labels}
        for e in examples
    ]
    real_tokens = {"n": 0}

    class Count(DataCollatorForSeq2Seq):
        def __call__(self, feats, return_tensors=None):
            real_tokens["n"] += sum(len(f["input_ids"]) for f in feats)
            return super().__call__(feats, return_tensors)

    targs = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=args.batch,
        max_steps=args.steps,
        learning_rate=2e-4,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, int(0.05 * args.steps)),
        logging_steps=1000,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=bf16,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        seed=0,
    )
    trainer = Trainer(
        model=pm,
        args=targs,
        train_dataset=ds,
        data_collator=Count(tok, padding="longest", label_pad_token_id=-100),
    )
    t = time.perf_counter()
    trainer.train()
    secs = time.perf_counter() - t
    return real_tokens["n"] / secs, secs


def run_ours(raft: Path, out: Path, args, mean_len: float, bf16: bool, fast: bool = True):
    """ragtune's trainer with its defaults, a token budget of batch x mean length."""
    from ragtune.train.trainer import TrainConfig, train

    cfg = TrainConfig(
        data=str(raft),
        out=str(out),
        max_steps=args.steps,
        batch_tokens=int(args.batch * mean_len),
        save_every=0,
        threads=args.threads,
        bf16=bf16,
        fast_lora=fast,
    )
    t = time.perf_counter()
    s = train(cfg)
    return s["tokens_per_s"], time.perf_counter() - t, cfg.batch_tokens


if __name__ == "__main__":
    main()
