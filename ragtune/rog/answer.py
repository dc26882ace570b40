"""Grounded answering: the reasoner may only name entities that end a retrieved path.

answers = grounded_answers(lm, messages, [["Michael Mann", "Heat"], ...])   # one list per question

A local model decodes greedily under a token trie of the candidate names, one name a line
(`name\\n name\\n ... EOS`), so every answer line is an entity of the graph that a retrieved path
reaches (as GCR does for its whole output). Other backends answer freely; their lines are then
kept only when they name a candidate (after RoG's normalisation).
"""

from __future__ import annotations

from ragtune.rog.metrics import normalize
from ragtune.rog.planner import TokenTrie
from ragtune.rog.prompts import parse_answers

_END = -1  # trie key marking "a whole candidate name ends here"


def grounded_answers(
    lm, batch: list[list[dict]], candidates: list[list[str]], max_new_tokens: int = 64
) -> tuple[list[list[str]], list[str]]:
    """(answers, raw replies) per conversation; answers ⊆ that conversation's candidates."""
    if not getattr(lm, "can_constrain", False):
        raw = [c.text for c in lm.generate(batch, max_tokens=max_new_tokens)]
        out = []
        for text, cands in zip(raw, candidates, strict=True):
            by_norm = {normalize(c): c for c in cands}
            out.append([by_norm[n] for a in parse_answers(text) if (n := normalize(a)) in by_norm])
        return out, raw
    return _trie_decode(lm, batch, candidates, max_new_tokens)


def _trie_decode(lm, batch, candidates, max_new_tokens):
    import torch

    tok = lm.tokenizer
    eos = lm.end_of_turn_id
    nl = tok("\n", add_special_tokens=False)["input_ids"]
    if len(nl) != 1:  # a tokenizer without a newline token: fall back to free answers
        return grounded_answers(_Free(lm), batch, candidates, max_new_tokens)
    nl = nl[0]
    tries = []
    for cands in candidates:
        seqs = [tok(c, add_special_tokens=False)["input_ids"] + [_END] for c in cands if c]
        tries.append(TokenTrie(seqs))
    prompts = [lm.render(m) for m in batch]
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    enc = enc.to(lm.model.device)  # the inputs go where the model is (ragtune.llm.device)
    width = enc["input_ids"].shape[1]

    def allowed(batch_id: int, ids) -> list[int]:
        gen = ids[width:].tolist()
        if eos in gen:  # finished rows keep padding
            return [tok.pad_token_id]
        line = gen[len(gen) - gen[::-1].index(nl) :] if nl in gen else gen
        nxt = tries[batch_id].next_tokens(line)
        if not gen and not nxt:
            return [eos]  # nothing to name: an empty answer
        if _END in nxt:  # a whole name: end the line or the answer, or go on (a longer name)
            nxt = [t for t in nxt if t != _END] + [nl, eos]
        if not line and gen:  # at the start of a further line: another name, or stop
            nxt = nxt + [eos]
        return nxt or [eos]

    with torch.inference_mode():
        gen = lm.model.generate(
            **enc,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=eos,
            pad_token_id=tok.pad_token_id,
            prefix_allowed_tokens_fn=allowed,
            temperature=None,
            top_p=None,
            top_k=None,
        )
    raw = tok.batch_decode(gen[:, width:], skip_special_tokens=True)
    out = []
    for text, cands in zip(raw, candidates, strict=True):
        keep = set(cands)
        out.append([a for a in parse_answers(text) if a in keep])
    return out, raw


class _Free:
    """Hide a local model's internals so grounded_answers takes the free-text route."""

    def __init__(self, lm) -> None:
        self._lm = lm

    def generate(self, *a, **kw):
        return self._lm.generate(*a, **kw)
