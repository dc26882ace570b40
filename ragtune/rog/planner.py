"""RoG planning: the LM writes relation paths `<PATH>r1<SEP>r2</PATH>`, by beam search.

planner = Planner(lm)                                    # a TransformersLM (beam search)
plans = planner.plan(["who directed Heat"], allowed=[[("directed_by",), ...]])
plans[0] -> [Plan(relations=["directed_by"], score=-0.01), ...]   (3 beams by default)

Constrained decoding: given the relation paths that exist from each question's entities,
generation is restricted by a prefix trie of their token ids (transformers'
`prefix_allowed_tokens_fn`), so every plan it returns exists in the graph. Without `allowed`
decoding is free, as in the reference. A backend that is not local (an endpoint, DummyLM) plans
by one greedy reply parsed for `<PATH>` blocks; it cannot be constrained.
"""

from __future__ import annotations

from dataclasses import dataclass

from ragtune.rog.prompts import format_plan, parse_plans, plan_messages


@dataclass
class Plan:
    relations: list[str]
    score: float  # sequence log-probability per token (beam score); 0.0 when unknown
    valid: bool | None = None  # filled by retrieval: did it reach any entity?

    def to_dict(self) -> dict:
        return {"relations": self.relations, "score": self.score, "valid": self.valid}


class TokenTrie:
    """Allowed continuations of token-id prefixes: dict-of-dicts, one per question.

    Built from the token ids of every allowed plan string (ending with EOS), so the decoder
    can only spell plans that exist. Size ~ total tokens of the allowed plans.
    """

    def __init__(self, sequences: list[list[int]]) -> None:
        self.root: dict = {}
        for seq in sequences:
            node = self.root
            for t in seq:
                node = node.setdefault(t, {})

    def next_tokens(self, prefix: list[int]) -> list[int]:
        node = self.root
        for t in prefix:
            node = node.get(t)
            if node is None:
                return []
        return list(node)


class Planner:
    def __init__(
        self,
        lm,
        num_beams: int = 3,
        num_plans: int = 3,
        max_new_tokens: int = 100,
        batch_size: int = 8,
    ) -> None:
        self.lm = lm
        self.num_beams = num_beams
        self.num_plans = min(num_plans, num_beams)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    @property
    def local(self) -> bool:
        return bool(getattr(self.lm, "can_constrain", False))

    def plan(
        self,
        questions: list[str],
        allowed: list[list[tuple[str, ...]]] | None = None,
    ) -> list[list[Plan]]:
        """Up to `num_plans` plans per question, best first. `allowed`: constrain to these."""
        if not self.local:
            if allowed is not None:
                from ragtune.errors import ConfigError

                raise ConfigError(
                    "constrained planning needs a local model (beam search with a token trie); "
                    "use a local planner or turn constraints off"
                )
            replies = [
                c.text
                for c in self.lm.generate([plan_messages(q) for q in questions], max_tokens=64)
            ]
            return [[Plan(p, 0.0) for p in parse_plans(r)][: self.num_plans] or [] for r in replies]
        out: list[list[Plan]] = []
        for i in range(0, len(questions), self.batch_size):
            qs = questions[i : i + self.batch_size]
            al = allowed[i : i + self.batch_size] if allowed is not None else None
            out.extend(self._beam(qs, al))
        return out

    def _beam(self, questions: list[str], allowed) -> list[list[Plan]]:
        import torch

        lm, tok = self.lm, self.lm.tokenizer
        prompts = [lm.render(plan_messages(q)) for q in questions]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(lm.model.device)  # the inputs go where the model is (ragtune.llm.device)
        width = enc["input_ids"].shape[1]  # left padding: generation starts here for all rows
        eos = lm.end_of_turn_id
        kw = {}
        if allowed is not None:
            tries = []
            for plans in allowed:
                seqs = [
                    tok(format_plan(list(p)), add_special_tokens=False)["input_ids"] + [eos]
                    for p in plans
                ]
                tries.append(TokenTrie(seqs))

            def allowed_fn(batch_id: int, ids) -> list[int]:
                # batch_id is the question's index (transformers calls this once per beam).
                trie = tries[batch_id]
                nxt = trie.next_tokens(ids[width:].tolist())
                # A question with no path in the graph: only EOS, i.e. an empty plan.
                return nxt or [eos]

            kw["prefix_allowed_tokens_fn"] = allowed_fn
        with torch.inference_mode():
            gen = lm.model.generate(
                **enc,
                num_beams=self.num_beams,
                num_return_sequences=self.num_plans,
                do_sample=False,
                max_new_tokens=self.max_new_tokens,
                eos_token_id=eos,
                pad_token_id=tok.pad_token_id,
                output_scores=True,
                return_dict_in_generate=True,
                # Not True: when a question has fewer valid plans than beams, beams that ran
                # out of trie finish at -inf and would stop the search before longer valid
                # plans end. False stops only when no running beam can beat a finished one.
                early_stopping=False,
                **kw,
            )
        seqs = gen.sequences[:, width:]
        scores = (
            gen.sequences_scores.tolist()
            if getattr(gen, "sequences_scores", None) is not None
            else [0.0] * len(seqs)
        )
        texts = tok.batch_decode(seqs, skip_special_tokens=False)
        out: list[list[Plan]] = []
        for qi in range(len(questions)):
            plans: list[Plan] = []
            seen: set[tuple[str, ...]] = set()
            # A beam cut off by max_new_tokens can end mid-plan; constrained, keep only plans
            # that are whole members of the allowed set.
            ok = {tuple(p) for p in allowed[qi]} if allowed is not None else None
            for j in range(self.num_plans):
                k = qi * self.num_plans + j
                for rels in parse_plans(texts[k]):
                    if ok is not None and tuple(rels) not in ok:
                        continue
                    if tuple(rels) not in seen:
                        seen.add(tuple(rels))
                        plans.append(Plan(rels, float(scores[k])))
            out.append(plans)
        return out
