"""The trainer's speed-ups: padded batches lose nothing, fused LoRA equals peft's, masks are shared."""

import pytest
import torch

from ragtune.train.data import Example, collate
from ragtune.train.fast import speed_up
from ragtune.train.trainer import completion_loss


def _examples(lengths, vocab):
    g = torch.Generator().manual_seed(0)
    out = []
    for n in lengths:
        ids = torch.randint(8, vocab, (n,), generator=g).tolist()
        out.append(Example(ids, [-100] * (n // 2) + ids[n // 2 :]))
    return out


def test_right_padded_batch_loss_equals_unpadded_losses(tiny_fresh):
    # The batch runs without a padding mask (causal kernel); every example's loss must be what
    # it is alone, with no padding at all.
    model = tiny_fresh[0].eval()
    exs = _examples([7, 19, 12], model.config.vocab_size)
    with torch.no_grad():
        ids, att, lab = collate(exs, pad_id=0)
        batch_loss, n = completion_loss(model, ids, att, lab)
        singles = [completion_loss(model, *collate([e], 0)) for e in exs]
        # the same batch under an explicit (non right-padded) mask takes the masked path
        masked = model(input_ids=ids, attention_mask=att).logits
    mean = sum(float(loss) * k for loss, k in singles) / sum(k for _, k in singles)
    assert n == sum(k for _, k in singles)
    assert float(batch_loss) == pytest.approx(mean, rel=1e-5)
    logits = torch.nn.functional.cross_entropy(
        masked[:, :-1][lab[:, 1:] != -100], lab[:, 1:][lab[:, 1:] != -100]
    )
    assert float(batch_loss) == pytest.approx(float(logits), rel=1e-5)


def _lora(model, dropout):
    from peft import LoraConfig, get_peft_model

    pm = get_peft_model(model, LoraConfig(r=4, lora_dropout=dropout, target_modules="all-linear"))
    with torch.no_grad():  # B starts at zero, which would hide A from outputs and gradients
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.normal_(generator=torch.Generator().manual_seed(len(name)))
    return pm


def _loss_and_grads(model, ids):
    model.zero_grad()
    loss = completion_loss(model, ids, torch.ones_like(ids), ids)[0]
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_fused_lora_a_gives_peft_outputs_and_gradients(tiny_fresh):
    model = _lora(tiny_fresh[0], 0.0).eval()  # no dropout: both paths are deterministic
    ids = torch.randint(
        8, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1)
    )
    keys = set(model.state_dict())
    ref_loss, ref = _loss_and_grads(model, ids)
    undo = speed_up(model)
    attn = model.base_model.model.model.layers[0].self_attn
    assert type(attn.q_proj.lora_A["default"]).__name__ == "FusedA"
    assert attn.q_proj.lora_A["default"].weight is attn.k_proj.lora_A["default"]._group.weights[0]
    assert set(model.state_dict()) == keys  # nothing new to save: the adapter format holds
    loss, got = _loss_and_grads(model, ids)
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    assert got.keys() == ref.keys() and len(got) == 2 * 7 * model.config.num_hidden_layers
    for name, g in got.items():
        # summation order only: the tolerance is relative to the tensor's scale
        torch.testing.assert_close(
            g, ref[name], rtol=1e-3, atol=1e-3 * float(ref[name].abs().max())
        )
    group = attn.q_proj.lora_A["default"]._group
    runs = group.runs
    _loss_and_grads(model, ids)
    assert group.runs == runs + 1  # q, k and v took their slices of one matmul
    x = torch.randn(3, model.config.hidden_size)
    before = group.run(x)[0].detach().clone()
    with torch.no_grad():  # an optimiser-style in-place update must not reuse a stale product
        attn.q_proj.lora_A["default"].weight.add_(1.0)
    assert not torch.allclose(group.run(x)[0], before)
    assert attn.q_proj.cast_input_dtype_enabled is False
    undo()
    assert type(attn.q_proj.lora_A["default"]) is torch.nn.Linear
    assert getattr(attn.q_proj, "cast_input_dtype_enabled", True) is True  # peft's is back


def test_shared_dropout_one_mask_per_input(tiny_fresh):
    model = _lora(tiny_fresh[0], 0.5)
    undo = speed_up(model)
    attn = model.base_model.model.model.layers[0].self_attn
    drop = attn.q_proj.lora_dropout["default"]
    assert drop is attn.k_proj.lora_dropout["default"] is attn.v_proj.lora_dropout["default"]
    assert drop is model.base_model.model.model.layers[1].mlp.down_proj.lora_dropout["default"]

    model.train()
    x = torch.ones(3, 8)
    y = drop(x)
    assert drop(x) is y  # same tensor: the same mask (q, k and v read one dropped copy)
    assert 0 < int((y == 0).sum()) < y.numel() and set(y.unique().tolist()) <= {0.0, 2.0}
    assert not torch.equal(drop(torch.ones(3, 8)), y)  # a new tensor draws a new mask
    x2 = torch.ones(3, 8)
    y2 = drop(x2)
    x2.mul_(1)  # modified in place: its version moves on, so the cached copy is stale
    assert drop(x2) is not y2
    model.eval()
    assert drop(x) is x

    # a training step with dropout sends gradients to every LoRA matrix
    model.train()
    ids = torch.randint(8, model.config.vocab_size, (2, 10))
    _, grads = _loss_and_grads(model, ids)
    assert len(grads) == 2 * 7 * model.config.num_hidden_layers
    assert all(g.abs().sum() > 0 for g in grads.values())
    undo()
    assert type(attn.q_proj.lora_dropout["default"]) is torch.nn.Dropout


@pytest.mark.parametrize("bf16", [False, True])
def test_one_mask_per_block_input_also_under_bf16(tiny_fresh, bf16):
    # Under --bf16 the hidden state reaching LoRA is bf16 while A is fp32: peft would cast it
    # once per module (three different tensors for q/k/v); speed_up must still draw one mask
    # for q/k/v, one for gate/up, and one each for o and down: 4 per block.
    from ragtune.train.trainer import _frozen_to

    model = _lora(tiny_fresh[0], 0.1).train()
    undo = speed_up(model)
    kept = _frozen_to(model, torch.bfloat16) if bf16 else {}
    drop = model.base_model.model.model.layers[0].self_attn.q_proj.lora_dropout["default"]
    ids = torch.randint(8, model.config.vocab_size, (2, 10))
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    with amp:
        loss = completion_loss(model, ids, torch.ones_like(ids), ids)[0]
    loss.backward()
    assert drop.draws == 4 * model.config.num_hidden_layers
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    for p, w in kept.items():
        p.data = w
    undo()
