"""Batched decoding for the local transformers backend: many requests, one forward pass a token.

    from ragtune.llm.base import GenerationConfig, Row
    from ragtune.llm.local import TransformersLM
    from ragtune.testing import make_tiny_llama
    lm = TransformersLM(make_tiny_llama("tiny"))          # or any model directory
    msgs = [{"role": "user", "content": "Hi"}]
    rows = [Row(msgs, GenerationConfig(max_tokens=8), done=print, emit=print) for _ in range(3)]
    lm.run_rows(rows, more=lambda n: [], max_batch=8)   # more(n): rows that join mid-way

Each row keeps its own max tokens, stop strings, temperature / top-p / seed and streams its own
text. The decoding loop is ours rather than `model.generate` because a server's batch changes
while it runs:

- a new request joins between two tokens: its prompt is prefilled alone (no padding, so no
  wasted compute on pad tokens; identical prompts are prefilled once), then its KV cache is
  left-padded to the batch's length and stacked onto it;
- a finished row, or one whose client left, stops being sampled at once and is cut out of the
  KV cache once enough rows have ended (cutting copies the cache, so it is not done per row);
- per-row sampling (greedy rows take the argmax; sampled rows their own seeded generator) and
  per-row stopping (max tokens, end of turn, stop strings on the decoded text).

Prefill is compute-bound on a CPU, so batching does not make it cheaper; what a batch shares is
the decode step: one pass over the weights gives a token to every row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ragtune.llm.base import Completion, Row, RowDropped, truncate_at_stop

# Cut ended rows out of the KV cache when at least this share of the batch has ended (a cut
# copies every layer's cache; until then ended rows ride along, unsampled).
PRUNE_SHARE = 0.25


@dataclass
class _Slot:
    row: Row
    n_prompt: int
    tokens: list[int] = field(default_factory=list)
    sent: int = 0  # characters of the (stripped) text already emitted
    ended: bool = False
    generator: Any = None  # torch.Generator for a sampled row
    started: float = field(default_factory=time.perf_counter)


class BatchDecoder:
    """Runs `LM.run_rows` for a TransformersLM (`lm.model`, `lm.tokenizer`, `lm.render`)."""

    def __init__(self, lm: Any) -> None:
        self.lm = lm
        self.model = lm.model
        tok = lm.tokenizer
        self.tokenizer = tok
        ends = {tok.eos_token_id, lm.end_of_turn_id}
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ends.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        self.end_ids = {int(t) for t in ends if t is not None}
        self.skip_ids = self.end_ids | {tok.pad_token_id}

    # -- the loop ---------------------------------------------------------------------------
    def run(self, rows: list[Row], more: Callable[[int], list[Row]] | None, max_batch: int) -> None:
        import torch

        self.slots: list[_Slot] = []
        self.cache = None  # DynamicCache: per layer (B, H, T, D) keys and values
        self.mask = None  # (B, T) 1 where a cached position is real, 0 for left padding
        self.pos = None  # (B, 1) position of the token fed next
        self.pending = None  # (B, 1) the token fed next (sampled, not yet in the cache)
        waiting = list(rows)
        try:
            with torch.inference_mode():
                while True:
                    room = max_batch - self._live()
                    if room > 0 and more is not None and len(waiting) < room:
                        waiting.extend(more(room - len(waiting)))
                    if waiting and room > 0:
                        self._admit(waiting[:room])
                        waiting = waiting[room:]
                    self._prune()
                    if not self._live():
                        if waiting or (more is not None and (waiting := more(max_batch))):
                            continue
                        return
                    self._step()
        except Exception as e:  # the batch failed as a whole: every unfinished row says so
            for s in self.slots:
                if not s.ended:
                    s.ended = True
                    s.row.done(e)
            for r in waiting:
                r.done(e)

    def _live(self) -> int:
        return sum(not s.ended for s in self.slots)

    # -- joining ----------------------------------------------------------------------------
    def _admit(self, rows: list[Row]) -> None:
        import torch
        from transformers import DynamicCache

        lm = self.lm
        prefilled: dict[tuple[int, ...], tuple[list, Any]] = {}  # prompt ids -> (kv, logits)
        new: list[tuple[_Slot, list]] = []
        for row in rows:
            try:
                if row.gone is not None and row.gone():
                    raise RowDropped("the client disconnected before its turn")
                text = lm.render(row.messages)
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                lm._check_window(len(ids), row.cfg.max_tokens)
                key = tuple(ids)
                if key not in prefilled:
                    cache = DynamicCache()
                    out = self.model(
                        input_ids=torch.tensor([ids]), cache=cache, use_cache=True, logits_to_keep=1
                    )
                    prefilled[key] = (_kv(cache), out.logits[:, -1].float())
            except Exception as e:  # this row only (a prompt too long, its client gone)
                row.done(e)
                continue
            slot = _Slot(row, len(ids))
            if row.cfg.temperature > 0:
                g = torch.Generator()
                g.manual_seed(row.cfg.seed if row.cfg.seed is not None else torch.seed())
                slot.generator = g
            new.append((slot, key))
        if not new:
            return
        lengths = [len(k) for _, k in new]
        width = max(lengths + ([self.mask.shape[1]] if self.mask is not None else []))
        kvs, masks, firsts = [], [], []
        for (slot, key), n in zip(new, lengths, strict=True):
            kv, logits = prefilled[key]
            pad = width - n
            kvs.append([(_left_pad(k, pad), _left_pad(v, pad)) for k, v in kv])
            masks.append(
                torch.cat(
                    [torch.zeros(1, pad, dtype=torch.long), torch.ones(1, n, dtype=torch.long)], 1
                )
            )
            firsts.append(self._sample(logits, [slot])[0])
        if self.cache is not None:  # the running batch, padded to the new width
            pad = width - self.mask.shape[1]
            kvs.insert(0, [(_left_pad(k, pad), _left_pad(v, pad)) for k, v in _kv(self.cache)])
            masks.insert(0, _left_pad(self.mask, pad))
        layers = len(kvs[0])
        self.cache = DynamicCache(
            [
                (torch.cat([kv[i][0] for kv in kvs], 0), torch.cat([kv[i][1] for kv in kvs], 0))
                for i in range(layers)
            ]
        )
        self.mask = torch.cat(masks, 0)
        firsts_t = torch.tensor(firsts, dtype=torch.long)[:, None]
        pos_t = torch.tensor(lengths, dtype=torch.long)[:, None]
        self.pending = firsts_t if self.pending is None else torch.cat([self.pending, firsts_t])
        self.pos = pos_t if self.pos is None else torch.cat([self.pos, pos_t])
        for (slot, _), tok in zip(new, firsts, strict=True):
            self.slots.append(slot)
            self._advance(slot, tok)

    # -- leaving ----------------------------------------------------------------------------
    def _prune(self) -> None:
        import torch
        from transformers import DynamicCache

        ended = sum(s.ended for s in self.slots)
        if not ended or (self._live() and ended < PRUNE_SHARE * len(self.slots)):
            return
        keep = [i for i, s in enumerate(self.slots) if not s.ended]
        if not keep:
            self.slots, self.cache, self.mask, self.pos, self.pending = [], None, None, None, None
            return
        idx = torch.tensor(keep)
        mask = self.mask.index_select(0, idx)
        # columns that are padding in every remaining row (the longest prompt left) go too
        first = int(mask.any(0).long().argmax())
        self.mask = mask[:, first:]
        self.cache = DynamicCache(
            [
                (k.index_select(0, idx)[:, :, first:], v.index_select(0, idx)[:, :, first:])
                for k, v in _kv(self.cache)
            ]
        )
        self.pos, self.pending = self.pos.index_select(0, idx), self.pending.index_select(0, idx)
        self.slots = [self.slots[i] for i in keep]

    # -- one token for every row ------------------------------------------------------------
    def _step(self) -> None:
        import torch

        b = len(self.slots)
        self.mask = torch.cat([self.mask, torch.ones(b, 1, dtype=torch.long)], 1)
        out = self.model(
            input_ids=self.pending,
            attention_mask=self.mask,
            position_ids=self.pos,
            cache=self.cache,
            use_cache=True,
        )
        self.pos = self.pos + 1
        toks = self._sample(out.logits[:, -1].float(), self.slots)
        self.pending = torch.tensor(toks, dtype=torch.long)[:, None]
        for slot, tok in zip(self.slots, toks, strict=True):
            if not slot.ended:
                self._advance(slot, tok)

    def _sample(self, logits: Any, slots: list[_Slot]) -> list[int]:
        import torch

        greedy = logits.argmax(-1).tolist()
        out = []
        for i, slot in enumerate(slots):
            cfg = slot.row.cfg
            if slot.ended or cfg.temperature <= 0:
                out.append(int(greedy[i]))
                continue
            probs = torch.softmax(logits[i] / cfg.temperature, -1)
            if cfg.top_p < 1.0:  # nucleus: the smallest set of tokens holding top_p of the mass
                p, order = probs.sort(descending=True)
                cut = (p.cumsum(0) - p) >= cfg.top_p
                p[cut] = 0.0
                probs = torch.zeros_like(probs).scatter_(0, order, p)
            out.append(int(torch.multinomial(probs, 1, generator=slot.generator)))
        return out

    def _advance(self, slot: _Slot, tok: int) -> None:
        """Take the row's new token: stream what is now certain, end the row when it is done."""
        row, cfg = slot.row, slot.row.cfg
        if row.gone is not None and row.gone():
            return self._end(slot, RowDropped("the client disconnected mid-generation"))
        finished = tok in self.end_ids
        if not finished:
            slot.tokens.append(tok)
        raw = self.tokenizer.decode(
            [t for t in slot.tokens if t not in self.skip_ids], skip_special_tokens=True
        )
        raw, cut = truncate_at_stop(raw, cfg.stop)  # as `generate` does: before stripping
        long = len(slot.tokens) >= cfg.max_tokens
        done = finished or cut or long
        safe = len(raw)
        if not done:
            # hold back an unfinished character, and text that may be the start of a stop string
            safe = len(raw.rstrip("\ufffd"))
            held = raw[:safe]
            safe -= max(
                (
                    k
                    for s in cfg.stop
                    for k in range(min(len(s) - 1, safe), 0, -1)
                    if held.endswith(s[:k])
                ),
                default=0,
            )
        text = raw[:safe].lstrip()
        if done:
            text = text.rstrip()
        if row.emit is not None and len(text) > slot.sent:
            try:
                row.emit(text[slot.sent :])
            except Exception as e:  # the stream's reader is gone
                return self._end(slot, e)
            slot.sent = len(text)
        if done:
            finish = "length" if long and not cut and not finished else "stop"
            n = len(slot.tokens)
            c = Completion(text, slot.n_prompt, n, finish)
            self.lm.usage.add(c)
            self._end(slot, c)

    def _end(self, slot: _Slot, result: Any) -> None:
        slot.ended = True
        slot.row.done(result)


def _kv(cache: Any) -> list[tuple[Any, Any]]:
    return [(layer.keys, layer.values) for layer in cache.layers]


def _left_pad(t: Any, n: int) -> Any:
    """`t` with `n` zero positions before its sequence dimension (dim 2 of (B, H, T, D) caches,
    dim 1 of (B, T) masks)."""
    if n <= 0:
        return t
    import torch

    dim = 2 if t.dim() == 4 else 1
    shape = list(t.shape)
    shape[dim] = n
    return torch.cat([torch.zeros(shape, dtype=t.dtype), t], dim)
