"""The trainer on a device in a dtype: the job a user calls, train(TrainConfig(...)), on CPU in
fp32, bf16 and fp16 (the GPU's code paths: placement, autocast, loss scaling), gradient
checkpointing, and the errors 4-bit loading gives where it cannot run."""

import json
import sys

import pytest
import torch

from ragtune.errors import ConfigError
from ragtune.train import trainer
from ragtune.train.trainer import TrainConfig, completion_loss, plain_head, train
from tests.train.test_trainer import make_chat

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _losses(out):
    log = (out / "train_log.jsonl").read_text().splitlines()
    return [json.loads(x)["loss"] for x in log if '"loss"' in x]


def _cfg(tmp_path, data, **kw):
    base = dict(
        data=str(data),
        out=str(tmp_path / "run"),
        lr=1e-2,
        max_steps=16,
        batch_tokens=512,
        save_every=0,
        threads=1,
        device="cpu",
    )
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
def test_train_loads_the_base_in_the_dtype_and_keeps_lora_fp32(
    tmp_path, tiny_model, monkeypatch, dtype
):
    loaded, seen, ckpt = {}, {}, {}
    real = trainer.load_base

    def spy(*a, **k):  # the model train() loads for itself, to look at mid-run
        loaded["args"] = k
        loaded["model"] = real(*a, **k)[0]
        return (loaded["model"], *real(*a, **k)[1:])

    monkeypatch.setattr(trainer, "load_base", spy)

    def look(step, total, rec):
        for n, p in loaded["model"].named_parameters():
            seen.setdefault((p.requires_grad, "lora_" in n), set()).add(p.dtype)
        ck = tmp_path / "run" / "checkpoint-4" / "optim.pt"
        if step == 5 and ck.exists():
            ckpt.update(torch.load(ck, weights_only=False))

    data = make_chat(tmp_path, n=24)
    s = train(_cfg(tmp_path, data, model=str(tiny_model), dtype=dtype, save_every=4), progress=look)
    assert loaded["args"]["dtype"] == DTYPES[dtype] and loaded["args"]["device"].type == "cpu"
    assert seen[(False, False)] == {DTYPES[dtype]}  # the frozen base, as loaded
    assert seen[(True, True)] == {torch.float32}  # LoRA: AdamW updates in full precision
    losses = _losses(tmp_path / "run")
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses
    assert s["dtype"] == dtype and s["device"] == "cpu" and s["peak_memory_mb"] is None
    # fp16 scales the loss (GradScaler) and checkpoints the scale it settled on
    assert ("scaler" in ckpt) == (dtype == "fp16") and "optimizer" in ckpt
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "run" / "adapter" / "adapter_model.safetensors")
    assert {v.dtype for v in saved.values()} == {torch.float32}


def test_the_bf16_flag_is_dtype_bf16(tmp_path, tiny_model):
    data = make_chat(tmp_path, n=8)
    s = train(_cfg(tmp_path, data, model=str(tiny_model), bf16=True, max_steps=2))
    assert s["dtype"] == "bf16"
    assert (
        train(
            _cfg(
                tmp_path,
                data,
                model=str(tiny_model),
                bf16=True,
                dtype="bf16",
                max_steps=2,
                out=str(tmp_path / "r2"),
            )
        )["dtype"]
        == "bf16"
    )
    with pytest.raises(ConfigError, match=r"bf16=True \(--bf16\) and dtype='fp32'.*only one"):
        train(_cfg(tmp_path, data, model=str(tiny_model), bf16=True, dtype="fp32"))
    with pytest.raises(ConfigError, match=r"device='cuda' \(--device\)"):
        train(_cfg(tmp_path, data, model=str(tiny_model), device="cuda"))


def test_4bit_needs_cuda_and_bitsandbytes(tmp_path, tiny_model, monkeypatch):
    data = make_chat(tmp_path, n=8)
    cfg = _cfg(tmp_path, data, model=str(tiny_model), load_in_4bit=True)
    with pytest.raises(ConfigError, match=r"load_in_4bit \(--load-in-4bit\) needs a CUDA GPU"):
        train(cfg)
    # on a CUDA machine without bitsandbytes: the fix is named, before anything loads
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails
    monkeypatch.setattr(trainer, "load_base", lambda *a, **k: pytest.fail("loaded a model"))
    with pytest.raises(ConfigError, match="pip install bitsandbytes"):
        train(TrainConfig(**{**cfg.__dict__, "device": "auto"}))


def test_gradient_checkpointing_recomputes_and_gives_the_same_training(tmp_path, tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = make_chat(tmp_path, n=24)

    def run(ckpt: bool):
        model = AutoModelForCausalLM.from_pretrained(tiny_model)
        tok = AutoTokenizer.from_pretrained(tiny_model)
        calls, active = [], []
        # the block's first module (the block's own forward is rerun without its hooks, and the
        # recomputation stops early once it has what the backward needs)
        first = model.model.layers[0].input_layernorm
        first.register_forward_pre_hook(lambda *a: calls.append(1))

        def look(*a):
            active.append(model.is_activation_checkpointing)  # peft wrapped it in place

        out = tmp_path / f"run-{ckpt}"
        cfg = _cfg(tmp_path, data, out=str(out), gradient_checkpointing=ckpt, lora_dropout=0.1)
        train(cfg, model=model, tokenizer=tok, progress=look)
        assert set(active) == {ckpt}
        assert not model.is_activation_checkpointing  # handed back as it was
        lora = {k: v.clone() for k, v in model.state_dict().items() if "lora_" in k}
        return lora, len(calls), _losses(out)

    (w0, n0, l0), (w1, n1, l1) = run(False), run(True)
    assert n1 > n0  # the first block ran again in each backward
    assert sum(l1[-3:]) / 3 < 0.8 * sum(l1[:3]) / 3  # it trains: the loss falls
    # the same masks are drawn again in the recomputation: the same run, step for step
    assert l1 == pytest.approx(l0, rel=1e-4)
    assert w1.keys() == w0.keys()
    for k in w0:
        torch.testing.assert_close(w1[k], w0[k], rtol=1e-4, atol=1e-5)


def test_a_model_that_transforms_its_logits_trains_on_them(tmp_path):
    """Cohere scales its head's logits in its forward: the loss must see the scaled ones."""
    from transformers import CohereConfig, CohereForCausalLM

    from ragtune.testing import _tiny_tokenizer
    from ragtune.train.data import Example, collate

    tok = _tiny_tokenizer(None, 512)
    path = tmp_path / "cohere"
    tok.save_pretrained(path)
    torch.manual_seed(0)
    cfg = CohereConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        logit_scale=0.25,
        initializer_range=0.5,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = CohereForCausalLM(cfg).eval()
    model.save_pretrained(path)
    ex = Example(list(range(8, 30)), [-100] * 11 + list(range(19, 30)))
    assert not plain_head(model, ex)
    ids, att, lab = collate([ex], 0)
    with torch.no_grad():
        full = completion_loss(model, ids, att, lab, full_logits=True)[0]
        logits = model(input_ids=ids).logits[0, :-1][lab[0, 1:] != -100]
        ref = torch.nn.functional.cross_entropy(logits, lab[0, 1:][lab[0, 1:] != -100])
    assert float(full) == pytest.approx(float(ref), rel=1e-5)
    data = make_chat(tmp_path, n=24)
    with pytest.warns(UserWarning, match="transforms its output head's logits"):
        s = train(_cfg(tmp_path, data, model=str(path)))
    assert s["last_loss"] < s["first_loss"]
