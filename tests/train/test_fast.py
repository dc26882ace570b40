"""The trainer's speed-ups change no result: the loss of a padded batch and the adapter format."""

import pytest
import torch

from ragtune.train.data import Example, collate
from ragtune.train.fast import release, share_lora_dropout
from ragtune.train.trainer import completion_loss


@pytest.fixture
def tiny_fresh(tiny_model):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model)


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
    model = tiny_fresh.eval()
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


def test_shared_dropout_one_mask_per_input(tiny_fresh):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        tiny_fresh, LoraConfig(r=4, lora_dropout=0.5, target_modules="all-linear")
    )
    keys = set(model.state_dict())
    n = share_lora_dropout(model)
    layers = model.config.num_hidden_layers
    assert n == 7 * layers  # q k v o gate up down in each block
    attn = model.base_model.model.model.layers[0].self_attn
    drop = attn.q_proj.lora_dropout["default"]
    assert drop is attn.k_proj.lora_dropout["default"] is attn.v_proj.lora_dropout["default"]
    assert set(model.state_dict()) == keys  # nothing new to save: the adapter format holds

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
    release(model)
    assert drop._last is None

    # a training step runs and sends gradients to every LoRA A through the shared dropout
    # (B starts at zero, which would zero A's gradient: give it values first)
    model.train()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_()
    ids = torch.randint(8, model.config.vocab_size, (2, 10))
    completion_loss(model, ids, torch.ones_like(ids), ids)[0].backward()
    grads = [p.grad for name, p in model.named_parameters() if "lora_A" in name]
    assert len(grads) == 7 * layers and all(g.abs().sum() > 0 for g in grads)
