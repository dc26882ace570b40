"""Trained tokens/s on the bundled SmolLM2-135M: ragtune's trainer vs a plain HF Trainer.

    python benchmarks/train_throughput.py              # 12 steps each, 2 threads
    python benchmarks/train_throughput.py --steps 20 --batch 4

Same RAFT data (fictional API docs, oracle + 3 distractors), same LoRA (r=16, all linear
layers), same optimiser and learning rate, same number of optimiser steps, fp32 on both sides.
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
    args = ap.parse_args()

    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from rich.console import Console
    from rich.table import Table
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from ragtune.examples.fictional import write_fictional_api
    from ragtune.raft.build import Builder, RaftConfig, corpus_units
    from ragtune.train.data import conversations, encode_chat, find_split
    from ragtune.train.trainer import TrainConfig, load_base, train

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="train-bench-"))
    api = write_fictional_api(tmp / "api.jsonl", 48)
    rc = RaftConfig(
        out=str(tmp / "raft"), questions=2, distractors=3, valid_fraction=0, test_fraction=0
    )
    Builder(rc, *corpus_units([str(api)], rc)).run()

    # (a) plain HF Trainer, pad to longest
    model, tok, _ = load_base("smollm2-135m", args.threads)
    examples, _ = encode_chat(
        tok, conversations(find_split(tmp / "raft", "chat", "train"), "chat"), 1024
    )
    mean_len = float(np.mean([len(e.input_ids) for e in examples]))
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
        output_dir=str(tmp / "hf"),
        per_device_train_batch_size=args.batch,
        max_steps=args.steps,
        learning_rate=2e-4,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, int(0.05 * args.steps)),
        logging_steps=1000,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
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
    hf_s = time.perf_counter() - t
    hf_tps = real_tokens["n"] / hf_s
    del trainer, pm, model

    # (b) ragtune's trainer
    cfg = TrainConfig(
        data=str(tmp / "raft"),
        out=str(tmp / "ours"),
        max_steps=args.steps,
        batch_tokens=int(args.batch * mean_len),
        save_every=0,
        threads=args.threads,
    )
    t = time.perf_counter()
    s = train(cfg)
    ours_s = time.perf_counter() - t
    ours_tps = s["tokens_per_s"]

    table = Table(
        title=f"{args.steps} steps, LoRA r=16 on SmolLM2-135M, {len(examples)} RAFT examples "
        f"(mean {mean_len:.0f} tokens), {args.threads} threads, fp32"
    )
    for c in ("", "trained tokens/s", "wall s (incl. start-up)", "tokens"):
        table.add_column(c)
    table.add_row(
        f"HF Trainer, pad to longest, batch {args.batch}",
        f"{hf_tps:.0f}",
        f"{hf_s:.1f}",
        str(real_tokens["n"]),
    )
    table.add_row(
        f"ragtune train, length-grouped, {cfg.batch_tokens}-token budget",
        f"{ours_tps:.0f}",
        f"{ours_s:.1f}",
        "",
    )
    table.add_row("ratio", f"{ours_tps / hf_tps:.2f}x", "", "")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
