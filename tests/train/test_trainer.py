"""Training on a tiny random-initialised Llama: seconds, real loss curves and real weights."""

import json

import pytest
import torch

from ragtune.examples.fictional import write_fictional_api
from ragtune.raft.build import Builder, RaftConfig, corpus_units
from ragtune.train.data import IGNORE, encode_chat, token_batches
from ragtune.train.trainer import TrainConfig, merge, train


def make_raft(tmp_path, n=24):
    recs = write_fictional_api(tmp_path / "api.jsonl", n)
    cfg = RaftConfig(
        out=str(tmp_path / "raft"),
        distractors=1,
        questions=2,
        valid_fraction=0.2,
        test_fraction=0.0,
    )
    Builder(cfg, *corpus_units([str(recs)], cfg)).run()
    return tmp_path / "raft"


def test_labels_cover_only_the_completion(tiny_tokenizer):
    conv = [[{"role": "user", "content": "question?"}, {"role": "assistant", "content": "answer"}]]
    [ex], dropped = encode_chat(tiny_tokenizer, conv, 512)
    n_target = sum(label != IGNORE for label in ex.labels)
    target = tiny_tokenizer("answer" + tiny_tokenizer.eos_token, add_special_tokens=False)[
        "input_ids"
    ]
    assert n_target == len(target) and ex.input_ids[-n_target:] == target and dropped == 0
    assert encode_chat(tiny_tokenizer, conv, 3) == ([], 1)


def test_token_batches_group_lengths_under_budget():
    lengths = [5, 50, 6, 48, 7, 52, 5, 49] * 10
    batches = token_batches(lengths, 120, seed=0, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(80))
    for b in batches:
        ls = [lengths[i] for i in b]
        assert max(ls) * len(b) <= 120 or len(b) == 1
        assert max(ls) - min(ls) <= 10  # neighbours have similar lengths
    assert token_batches(lengths, 120, 0, 0) == batches
    assert token_batches(lengths, 120, 0, 1) != batches


def make_chat(tmp_path, n=40):
    """Chat data with a learnable target: the answer names the prompt's class (4 classes)."""
    d = tmp_path / "chat"
    d.mkdir()
    for split, rng in (("train", range(n)), ("valid", range(n, n + 8))):
        with open(d / f"{split}.jsonl", "w") as f:
            for i in rng:
                msgs = [
                    {"role": "user", "content": f"Item {i} belongs to class {i % 4}. Which class?"},
                    {"role": "assistant", "content": f"The answer is class {i % 4}."},
                ]
                f.write(json.dumps({"messages": msgs}) + "\n")
    return tmp_path


@pytest.mark.parametrize("bf16", [False, True])
def test_lora_training_lowers_loss_and_changes_weights(tmp_path, tiny_fresh, bf16):
    data = make_chat(tmp_path)
    model, tok = tiny_fresh
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = {}

    def look(step, total, rec):  # dtypes mid-run, by (trained?, LoRA?)
        for n, p in model.named_parameters():
            seen.setdefault((p.requires_grad, "lora_" in n), set()).add(p.dtype)

    s = train(
        TrainConfig(
            data=str(data),
            out=str(tmp_path / "run"),
            lr=1e-2,
            epochs=40,
            batch_tokens=1024,
            save_every=0,
            threads=1,
            bf16=bf16,
        ),
        model=model,
        tokenizer=tok,
        progress=look,
    )
    # --bf16 keeps the frozen base in bf16 during the run, the trained LoRA in fp32
    assert seen[(False, False)] == {torch.bfloat16 if bf16 else torch.float32}
    assert seen[(True, True)] == {torch.float32}
    log = [
        json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    ]
    losses = [r["loss"] for r in log if "loss" in r]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert s["steps"] > 10 and last < 0.6 * first, (first, last)
    assert s["eval_loss"] is not None
    lora = {k: v for k, v in model.state_dict().items() if "lora_B" in k}
    assert lora and any(v.abs().sum() > 0 for v in lora.values())  # B starts at zero
    base_same = all(
        torch.equal(before[k.replace("base_model.model.", "").replace(".base_layer", "")], v)
        for k, v in model.state_dict().items()
        if "lora_" not in k and "base_layer" in k
    )
    assert base_same  # LoRA leaves the base weights alone (and --bf16 hands them back in fp32)
    assert all(v.dtype == torch.float32 for v in model.state_dict().values())
    assert log[0]["step"] == 1 and "eval_loss" in log[-1]
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").exists()


def test_adapter_loads_in_backend_and_merges(tmp_path, tiny_model):
    from ragtune.llm.local import TransformersLM

    data = make_raft(tmp_path)
    train(
        TrainConfig(
            data=str(data),
            out=str(tmp_path / "run"),
            model=str(tiny_model),
            lr=3e-3,
            max_steps=8,
            batch_tokens=1024,
            save_every=0,
            threads=1,
        )
    )
    adapter = tmp_path / "run" / "adapter"
    msgs = [[{"role": "user", "content": "Which API call should I use?"}]]
    with_adapter = TransformersLM(tiny_model, adapter=adapter, threads=1).generate(
        msgs, max_tokens=8
    )[0]
    merged = merge(adapter, tmp_path / "merged")
    from_merged = TransformersLM(merged, threads=1).generate(msgs, max_tokens=8)[0]
    assert with_adapter.text == from_merged.text


def test_interrupt_then_resume(tmp_path, tiny_model):
    data = make_raft(tmp_path)
    cfg = TrainConfig(
        data=str(data),
        out=str(tmp_path / "run"),
        model=str(tiny_model),
        max_steps=6,
        save_every=2,
        batch_tokens=512,
        threads=1,
    )

    def stop_at_4(step, total, rec):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=stop_at_4)
    assert (tmp_path / "run" / "checkpoint-4" / "state.json").exists()
    s = train(cfg)
    assert s["resumed_from"] == 4 and s["steps"] == 6
    log = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4, 5, 6]  # continues, no repeats
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def test_dsf_view_trains_on_answers_without_documents(tmp_path, tiny_fresh):
    data = make_raft(tmp_path)
    model, tok = tiny_fresh
    s = train(
        TrainConfig(
            data=str(data),
            out=str(tmp_path / "dsf"),
            view="dsf",
            max_steps=3,
            save_every=0,
            threads=1,
        ),
        model=model,
        tokenizer=tok,
    )
    assert s["steps"] == 3 and s["examples"] > 0


def test_examples_longer_than_max_length_are_announced(tmp_path, tiny_fresh):
    """Left-out examples are not silent: a warning names the count and the flag to raise."""
    data = make_raft(tmp_path)
    model, tok = tiny_fresh
    convs = [json.loads(x) for x in (data / "chat" / "train.jsonl").read_text().splitlines()]
    ex, _ = encode_chat(tok, [c["messages"] for c in convs], 10_000)
    lengths = sorted(len(e.input_ids) for e in ex)
    cut = lengths[len(lengths) // 2]  # about half are longer
    with pytest.warns(UserWarning, match=r"of \d+ training examples .* --max-length"):
        s = train(
            TrainConfig(
                data=str(data),
                out=str(tmp_path / "run"),
                max_length=cut,
                max_steps=1,
                save_every=0,
                threads=1,
            ),
            model=model,
            tokenizer=tok,
        )
    assert s["dropped_too_long"] == sum(n > cut for n in lengths) > 0
    assert s["examples"] == sum(n <= cut for n in lengths)


def test_empty_valid_split_is_fine(tiny_tokenizer):
    assert encode_chat(tiny_tokenizer, [], 64) == ([], 0)


def test_text_view_continues_pretraining_on_raw_files(tmp_path, tiny_fresh):
    """Continued training on domain text (real files: a .md and a .txt folder), loss everywhere."""
    docs = tmp_path / "docs"
    docs.mkdir()
    line = "GlimmerDB seals a ledger before it rotates the shard. "
    (docs / "guide.md").write_text("# Guide\n\n" + line * 30)
    (docs / "notes.txt").write_text("Leases last thirty seconds. " * 30)
    model, tok = tiny_fresh
    before = {k: v.clone() for k, v in model.state_dict().items()}
    s = train(
        TrainConfig(
            data=str(docs),
            out=str(tmp_path / "cpt"),
            view="text",
            max_length=64,
            lr=1e-2,
            epochs=6,
            batch_tokens=256,
            save_every=0,
            threads=1,
        ),
        model=model,
        tokenizer=tok,
    )
    assert s["examples"] >= 4  # both files cut into 64-token windows
    assert s["last_loss"] < 0.6 * s["first_loss"]
    lora_b = [v for k, v in model.state_dict().items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # B starts at zero
    assert not any("lora_B" in k for k in before)  # the adapter was new
    assert (tmp_path / "cpt" / "adapter" / "adapter_config.json").exists()


# Saves an adapter, changes its weights, and saves again, killed (os._exit: no cleanup runs)
# when the new adapter is about to be renamed onto the path.
KILL_SAVE = """
import os, sys
from pathlib import Path
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from ragtune.train.trainer import _save_adapter

base, path = sys.argv[1], Path(sys.argv[2])
tok = AutoTokenizer.from_pretrained(base)
model = get_peft_model(
    AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=2, target_modules=["q_proj"])
)
with torch.no_grad():
    for n, p in model.named_parameters():
        if "lora_B" in n:
            p.fill_(0.25)
_save_adapter(model, tok, path)
with torch.no_grad():
    for n, p in model.named_parameters():
        if "lora_B" in n:
            p.fill_(0.5)
real = os.rename
def rename(src, dst, *a, **k):
    if Path(dst) == path:
        os._exit(9)
    return real(src, dst, *a, **k)
os.rename = rename
_save_adapter(model, tok, path)
"""


def test_kill_while_saving_adapter_keeps_a_loadable_adapter(tmp_path, tiny_model):
    import subprocess
    import sys

    from safetensors.torch import load_file

    adapter = tmp_path / "run" / "adapter"
    adapter.parent.mkdir()
    r = subprocess.run(
        [sys.executable, "-c", KILL_SAVE, str(tiny_model), str(adapter)],
        capture_output=True,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 9, r.stderr.decode()[-2000:]
    # A reader (merge) finds the first adapter, whole: its config, its weights, its values.
    merged = merge(adapter, tmp_path / "merged")
    assert (merged / "config.json").exists()
    assert (adapter / "adapter_config.json").exists()
    weights = load_file(adapter / "adapter_model.safetensors")
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and all(torch.all(v == 0.25) for v in lora_b)
    assert sorted(p.name for p in adapter.parent.iterdir()) == ["adapter"]


def test_training_twice_leaves_one_adapter_and_no_litter(tmp_path, tiny_model):
    data = make_chat(tmp_path, n=8)
    out = tmp_path / "run"
    cfg = TrainConfig(
        data=str(data),
        out=str(out),
        model=str(tiny_model),
        max_steps=2,
        save_every=1,
        batch_tokens=256,
        threads=1,
    )
    for _ in range(2):
        train(cfg)
        dirs = sorted(p.name for p in out.iterdir() if p.is_dir())
        assert dirs == ["adapter"]
        assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")]
        assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
        assert (out / "adapter" / "adapter_config.json").exists()
        assert (out / "adapter" / "adapter_model.safetensors").exists()
