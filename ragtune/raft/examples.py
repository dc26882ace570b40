"""Assemble RAFT examples: oracle(s) + k distractors, oracle kept with probability P, shuffled.

Distractors never repeat within an example and are never the oracle or a near-duplicate of it
(word-set Jaccard ≥ `near_dup`), never hold the answer, and for API records are never another
record of the oracle's `api_name` (`distractor_guards`). When the oracle is dropped, its slot
goes to one more distractor, so every example shows the same number of documents.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path

import numpy as np

from ragtune.errors import DataError
from ragtune.eval.metrics import normalize
from ragtune.raft import prompts as P
from ragtune.raft.types import QAItem, RaftExample

_WORD = re.compile(r"\w+")


def words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def item_rng(seed: int, key: str) -> np.random.Generator:
    """A generator that depends only on (seed, key): results don't depend on worker order."""
    h = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, h])


def instruction(docs: list[str], question: str) -> str:
    """The reference's prompt: each document as <DOCUMENT>…</DOCUMENT> on its own line, then the question."""
    return "".join(f"<DOCUMENT>{d}</DOCUMENT>\n" for d in docs) + question


class TooFewDistractors(DataError):
    """The pool cannot give an example the distractors it needs (after the guards)."""


_LABELS = ("yes", "no", "maybe")  # class labels, not spans: every text "holds" them


def distractor_guards(kind: str, oracles: list[str], answer: str | None) -> list[str]:
    """Texts no distractor may hold: with the oracle dropped, a document that holds the answer,
    or another record of the oracle's API (its `api_name:` line), would answer the question too.

    The answer is skipped when it is a yes/no/maybe label. Matched normalised (the eval's
    normalisation) at word boundaries, so `zz.op1` does not guard `zz.op10`.
    """
    from ragtune.raft.teacher import record_fields

    out = []
    if kind == "api call":
        out += [f"api_name: {v}" for o in oracles for k, v in record_fields(o) if k == "api_name"]
    if answer and normalize(answer) not in _LABELS:
        out.append(answer)
    return [g for g in dict.fromkeys(normalize(x) for x in out) if g]


class DistractorPicker:
    def __init__(self, pool: list[str], mode: str = "random", near_dup: float = 0.8) -> None:
        if mode not in ("random", "hard", "mixed"):
            raise DataError(f"distractor mode {mode!r} is unknown; use 'random', 'hard' or 'mixed'")
        seen: set[str] = set()
        self.pool = [t for t in pool if not (t in seen or seen.add(t))]  # distinct, in order
        self.words = [words(t) for t in self.pool]
        self._norm: list[str | None] = [None] * len(self.pool)  # padded normalised text, lazily
        self.mode, self.near_dup = mode, near_dup
        self._bm25 = None
        self._tmp = None
        if mode in ("hard", "mixed") and self.pool:
            from ragtune.retrieval.bm25 import BM25Index

            self._tmp = tempfile.TemporaryDirectory(prefix="ragtune-raft-")
            self._bm25 = BM25Index.build(self.pool, Path(self._tmp.name) / "bm25")

    def _ok(self, cand_words, oracle_words, picked_words) -> bool:
        return all(jaccard(cand_words, o) < self.near_dup for o in oracle_words) and all(
            jaccard(cand_words, p) < 1.0 for p in picked_words
        )

    def _candidates(self, own: list[str] | None, order):
        """(text, words, padded normalised text or None to compute) for own texts, then the pool."""
        for t in own or ():
            yield t, words(t), None
        for i in order:
            yield self.pool[i], self.words[i], i

    def _guarded(self, text: str, i: int | None, avoid: list[str]) -> bool:
        if not avoid:
            return False
        norm = self._norm[i] if i is not None else None
        if norm is None:
            norm = f" {normalize(text)} "
            if i is not None:
                self._norm[i] = norm
        return any(f" {a} " in norm for a in avoid)

    def available(
        self, oracles: list[str], need: int, own: list[str] | None = None, avoid=None
    ) -> int:
        """How many distractors (up to `need`) `pick` could give: the same rules, no randomness
        (which documents qualify does not depend on the order they are considered in)."""
        ow = [words(o) for o in oracles]
        got: list[str] = []
        gw: list[frozenset[str]] = []
        for text, tw, i in self._candidates(own, range(len(self.pool))):
            if len(got) >= need:
                break
            if text in oracles or text in got or not self._ok(tw, ow, gw):
                continue
            if not self._guarded(text, i, avoid or []):
                got.append(text)
                gw.append(tw)
        return len(got)

    def pick(
        self,
        question: str,
        oracles: list[str],
        k: int,
        rng: np.random.Generator,
        own: list[str] | None = None,
        avoid: list[str] | None = None,
    ) -> list[str]:
        """k distractors: the item's own candidates first (in random order), then the pool.

        `avoid`: normalised texts that disqualify a candidate holding them (`distractor_guards`:
        the answer, the oracle's `api_name` line).
        """
        ow = [words(o) for o in oracles]
        picked: list[str] = []
        pw: list[frozenset[str]] = []

        def consider(text: str, tw: frozenset[str], i: int | None = None) -> bool:
            if text in oracles or text in picked or not self._ok(tw, ow, pw):
                return False
            if self._guarded(text, i, avoid or []):
                return False
            picked.append(text)
            pw.append(tw)
            return len(picked) >= k

        for i in rng.permutation(len(own or [])):
            if consider(own[i], words(own[i])):
                return picked
        order = rng.permutation(len(self.pool))
        if self._bm25 is not None:
            # hard: BM25 hits first; mixed: the first ceil(k/2) picks are BM25 hits, so training
            # sees both what a retriever returns (near misses) and what the sweep adds. Then
            # random, so k is always reachable (a hit seen above is refused again: `consider`
            # only grows stricter as `picked` grows).
            res = self._bm25.search([question], min(len(self.pool), 4 * k + 16))
            n_hard = k if self.mode == "hard" else (k + 1) // 2
            for i in res.ids[0]:
                if i < 0 or len(picked) >= n_hard:
                    break
                if consider(self.pool[i], self.words[i], int(i)):
                    return picked
        for i in order:
            if consider(self.pool[i], self.words[i], int(i)):
                return picked
        raise TooFewDistractors(
            f"only {len(picked)} distinct distractors (not the oracle, a near-duplicate of it or "
            f"a document holding its answer) are available for the question {question!r}, which "
            f"needs {k}; add documents to the corpus or lower --distractors"
        )


def assemble(
    item: QAItem,
    cot: str,
    answer: str,
    *,
    k: int,
    p: float,
    picker: DistractorPicker,
    seed: int,
    refusal_rate: float = 0.0,
    no_cot: bool = False,
) -> RaftExample:
    rng = item_rng(seed, item.id)
    keep = bool(rng.random() < p)
    n_docs = k + len(item.oracle)  # the same count whether or not the oracle is kept
    distractors = picker.pick(
        item.question,
        item.oracle,
        n_docs - (len(item.oracle) if keep else 0),
        rng,
        item.distractors,
        distractor_guards(item.type, item.oracle, answer),
    )
    docs = (list(item.oracle) if keep else []) + distractors
    perm = rng.permutation(len(docs))
    docs = [docs[i] for i in perm]
    oracle_idx = (
        sorted(int(np.where(perm == j)[0][0]) for j in range(len(item.oracle))) if keep else []
    )
    refuse = (not keep) and refusal_rate > 0 and bool(rng.random() < refusal_rate)
    if refuse:
        # the refusal is a training target only: `answer` stays the gold answer, so test rows
        # are scored against the truth and the DSF view (question -> answer) never learns to
        # say "I don't know" to a question it was shown no documents for anyway
        cot = P.REFUSAL
    elif no_cot:
        cot = f"{P.ANSWER_TAG} {answer}"
    return RaftExample(
        id=item.id,
        type=item.type,
        question=item.question,
        documents=docs,
        oracle_present=keep,
        oracle_index=oracle_idx[0] if oracle_idx else -1,
        oracle_indices=oracle_idx,
        oracle=list(item.oracle),
        cot_answer=cot,
        answer=answer,
        instruction=instruction(docs, item.question),
        group=item.group,
        meta={**item.meta, "refusal": refuse},
    )


def split_of(group: str, seed: int, valid: float, test: float) -> str:
    """train / valid / test by a hash of the group, so a group never straddles splits."""
    u = item_rng(seed, "split:" + group).random()
    return "test" if u < test else ("valid" if u < test + valid else "train")
