"""Any causal LM: training, generation, scoring and merging on tiny random models of the decoder
families transformers ships (their module, decoder and head names differ), not only Llama."""

import json

import pytest
import torch

from ragtune.testing import FAMILIES, make_tiny_causal_lm
from ragtune.train.trainer import TrainConfig, completion_loss, lm_parts, merge, train
from tests.train.test_trainer import make_chat

# what LoRA's "all-linear" must find in each family (a projection of every kind it has)
EXPECTED_TARGETS = {
    "llama": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
    "qwen2": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
    "mistral": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
    "phi3": {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"},
    "gpt2": {"c_attn", "c_proj", "c_fc"},  # Conv1D, not nn.Linear
    "gpt_neox": {"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"},
}
# families whose q/k/v and gate/up are separate modules: ragtune.train.fast fuses their A's
FUSED = {"llama", "qwen2", "mistral"}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {f: make_tiny_causal_lm(root / f, f) for f in FAMILIES}


@pytest.mark.parametrize("family", FAMILIES)
def test_family_trains_generates_scores_and_merges(tmp_path, tiny_models, family):
    from safetensors.torch import load_file

    from ragtune.llm.local import TransformersLM

    base = tiny_models[family]
    data = make_chat(tmp_path, n=24)
    s = train(
        TrainConfig(
            data=str(data),
            out=str(tmp_path / "run"),
            model=str(base),
            device="cpu",
            dtype="fp32",
            lr=1e-2,
            max_steps=14,
            batch_tokens=512,
            save_every=0,
            threads=1,
        )
    )
    losses = [
        json.loads(x)["loss"]
        for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
        if '"loss"' in x
    ]
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert s["steps"] == 14 and last < 0.8 * first, (family, first, last)
    assert s["device"] == "cpu" and s["dtype"] == "fp32" and s["peak_memory_mb"] is None
    adapter = tmp_path / "run" / "adapter"
    acfg = json.loads((adapter / "adapter_config.json").read_text())
    assert {t.rsplit(".", 1)[-1] for t in acfg["target_modules"]} == EXPECTED_TARGETS[family]
    weights = load_file(adapter / "adapter_model.safetensors")
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: all trained

    # the adapter in the local backend answers as the merged model does, token for token
    msgs = [
        [{"role": "user", "content": "Item 3 belongs to class 3. Which class?"}],
        [{"role": "user", "content": "Which class?"}],
    ]
    with_adapter = TransformersLM(base, adapter=adapter, device="cpu", dtype="fp32")
    merged = TransformersLM(merge(adapter, tmp_path / "merged"), device="cpu", dtype="fp32")
    a = with_adapter.generate(msgs, max_tokens=8)
    m = merged.generate(msgs, max_tokens=8)
    assert [c.text for c in a] == [c.text for c in m]
    assert [c.completion_tokens for c in a] == [c.completion_tokens for c in m]
    assert any(c.completion_tokens for c in a)
    conts = ["The answer is class 3.", "The answer is class 1."]
    sa, sm = with_adapter.score(msgs[0], conts), merged.score(msgs[0], conts)
    assert sa == pytest.approx(sm, rel=1e-4, abs=1e-4)
    # trained on replies of this shape: far likelier under the adapter than under the base
    plain = TransformersLM(base, device="cpu", dtype="fp32").score(msgs[0], conts)
    assert sa[0] > plain[0] + 1.0, (sa, plain)
    # no chat template (GPT-2, GPT-NeoX): the prompt is the messages joined, as training saw it
    if not with_adapter.tokenizer.chat_template:
        assert with_adapter.render(msgs[0]) == msgs[0][0]["content"] + "\n"


@pytest.mark.parametrize("family", FAMILIES)
def test_fast_lora_fuses_where_it_can_and_changes_nothing(tiny_models, family):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ragtune.train.fast import speed_up

    base = AutoModelForCausalLM.from_pretrained(tiny_models[family])
    lcfg = LoraConfig(
        r=4, lora_dropout=0.0, target_modules="all-linear", fan_in_fan_out=family == "gpt2"
    )
    model = get_peft_model(base, lcfg).eval()
    with torch.no_grad():  # B starts at zero, which would hide A from outputs and gradients
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(generator=torch.Generator().manual_seed(len(name)))
    dec, head = lm_parts(model)
    assert dec is not model.get_base_model() and head is not None
    ids = torch.randint(
        8, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1)
    )

    def loss_and_grads():
        model.zero_grad()
        loss = completion_loss(model, ids, torch.ones_like(ids), ids)[0]
        loss.backward()
        return loss.item(), {
            n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
        }

    ref_loss, ref = loss_and_grads()
    undo = speed_up(model)
    fused = sum(type(m).__name__ == "FusedA" for m in model.modules())
    loss, got = loss_and_grads()
    undo()
    assert (fused > 0) == (family in FUSED)  # elsewhere: nothing swapped, no error
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    assert got.keys() == ref.keys() and got
    for name, g in got.items():
        torch.testing.assert_close(
            g, ref[name], rtol=1e-3, atol=1e-3 * float(ref[name].abs().max())
        )
