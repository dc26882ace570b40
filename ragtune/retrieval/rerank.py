"""Rerankers: reorder a first stage's candidates for a question, best first.

One module for every caller (`ask`, `serve`, `eval`, `ragtune retriever eval`, the pipeline),
named by one spec string:

    none        keep the first stage's order
    dense       cosine similarity under an embedder (the index's own, else the bundled MiniLM)
    cross:DIR   a cross-encoder that reads question and document together (`ragtune reranker
                train` writes one; any sentence-transformers CrossEncoder directory works)
    lm          the generator itself, pointwise: log p("Yes") - log p("No") as its reply to "Does
                this document answer the question?" (RankRAG's idea; a local model that scores)

    from ragtune.retrieval.rerank import load_reranker
    rr = load_reranker("dense")                  # or "cross:out/reranker", or "lm" with lm=...
    rr.order("which call opens a vault?", ["Snapshots use zstd.", "open_vault(path) opens it."])

Heavy imports (torch, sentence-transformers) happen when a reranker is built, not on import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.errors import ConfigError

KINDS = ("none", "dense", "cross", "lm")
SPEC_HELP = "none | dense | cross:DIR | lm"
# The question the LM reranker answers for each document; its score is log p(Yes) - log p(No).
LM_PROMPT = (
    "Document:\n{document}\n\nQuestion: {question}\n\n"
    "Does this document answer the question? Answer Yes or No."
)
# a longer document is cut: whether it answers is usually clear early, and prompts stay short
LM_DOC_CHARS = 2000


def parse_spec(spec: str | None, field_name: str = "rerank") -> tuple[str, str | None]:
    """`spec` → (kind, directory or None), checked; the error names the field and the forms."""
    spec = (spec or "none").strip()
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise ConfigError(f"--{field_name.replace('_', '-')} {spec!r}: use {SPEC_HELP}")
    if kind == "cross":
        if not arg.strip():
            raise ConfigError(
                f"--{field_name.replace('_', '-')} {spec!r}: name the cross-encoder directory, "
                "e.g. cross:out/reranker (train one with `ragtune reranker train`)"
            )
        return kind, arg.strip()
    if arg:
        raise ConfigError(
            f"--{field_name.replace('_', '-')} {spec!r}: only cross takes a directory ({SPEC_HELP})"
        )
    return kind, None


class Reranker:
    """Scores candidate texts for a question; higher is better."""

    name = "none"

    def scores(self, question: str, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def scores_batch(
        self, questions: Sequence[str], docs: Sequence[Sequence[str]]
    ) -> list[np.ndarray]:
        """Scores for several questions at once (subclasses batch across questions)."""
        return [self.scores(q, ds) for q, ds in zip(questions, docs, strict=True)]

    def order(self, question: str, texts: Sequence[str]) -> list[int]:
        return self.order_batch([question], [texts])[0]

    def order_batch(
        self, questions: Sequence[str], docs: Sequence[Sequence[str]]
    ) -> list[list[int]]:
        """Per question, the indices of its texts best first; the sort is stable, so equal
        scores keep the first stage's order."""
        return [
            [int(i) for i in np.argsort(-np.asarray(s, np.float64), kind="stable")]
            for s in self.scores_batch(questions, docs)
        ]


class DenseReranker(Reranker):
    """Cosine similarity under an embedder (`ragtune.retrieval.dense.Embedder`)."""

    name = "dense"

    def __init__(self, embedder=None) -> None:
        if embedder is None:
            from ragtune.retrieval.dense import Embedder

            embedder = Embedder()
        self.embedder = embedder

    def scores_batch(self, questions, docs):
        # each distinct text embedded once, sorted so the batches do not depend on the input order
        texts = sorted({d for ds in docs for d in ds})
        vec = dict(zip(texts, self.embedder.encode(texts), strict=True)) if texts else {}
        qv = self.embedder.encode(list(questions))
        return [
            np.array([float(vec[d] @ v) for d in ds], np.float32)
            for ds, v in zip(docs, qv, strict=True)
        ]

    def scores(self, question, texts):
        return self.scores_batch([question], [texts])[0]


class CrossReranker(Reranker):
    """A sentence-transformers CrossEncoder directory: one relevance logit per (question, text)."""

    name = "cross"

    def __init__(self, path: str | Path, batch_size: int = 32, device: str | None = None) -> None:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"--rerank cross:{path}: {path} is not a cross-encoder directory (no config.json); "
                "train one with `ragtune reranker train --data RAFT_DIR --out DIR`"
            )
        self.path = str(path)
        self.model = load_cross_encoder(self.path, device=device)
        self.batch_size = batch_size

    def scores_batch(self, questions, docs):
        pairs = [(q, d) for q, ds in zip(questions, docs, strict=True) for d in ds]
        if not pairs:
            return [np.zeros(0, np.float32) for _ in docs]
        flat = np.asarray(
            self.model.predict(
                pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
            ),
            np.float32,
        ).reshape(-1)
        out, i = [], 0
        for ds in docs:
            out.append(flat[i : i + len(ds)])
            i += len(ds)
        return out

    def scores(self, question, texts):
        return self.scores_batch([question], [texts])[0]


class LMReranker(Reranker):
    """The generator as a pointwise reranker: log p("Yes") - log p("No") for each document.

    On a local model (`can_constrain`: model and tokenizer in reach) one padded forward pass per
    batch of documents reads both answers' first-token log-probabilities; other scoring backends
    go through `LM.score` (one pass per answer and document).
    """

    name = "lm"

    def __init__(self, lm, batch_size: int = 8, doc_chars: int = LM_DOC_CHARS) -> None:
        if not getattr(lm, "can_score", False):
            raise ConfigError(
                f"--rerank lm needs a model that scores continuations (a local model such as "
                f"smollm2-135m or a model directory); {type(lm).__name__} cannot: use "
                "--rerank cross:DIR or --rerank dense"
            )
        self.lm, self.batch_size, self.doc_chars = lm, batch_size, doc_chars
        self._ids = self._answer_ids() if getattr(lm, "can_constrain", False) else None

    def messages(self, question: str, text: str) -> list[dict[str, str]]:
        doc = text if len(text) <= self.doc_chars else text[: self.doc_chars] + "..."
        return [{"role": "user", "content": LM_PROMPT.format(document=doc, question=question)}]

    def _answer_ids(self) -> tuple[int, int] | None:
        """First token ids of the replies "Yes" and "No" after the chat prompt, or None when the
        tokenizer does not give each its own single token (then `LM.score` is used)."""
        tok = self.lm.tokenizer
        ids = []
        for word in ("Yes", "No"):
            t = tok.encode(word, add_special_tokens=False)
            if len(t) != 1:
                return None
            ids.append(t[0])
        return ids[0], ids[1]

    def scores(self, question, texts):
        if not texts:
            return np.zeros(0, np.float32)
        if self._ids is None:
            return np.array(
                [
                    a - b
                    for a, b in (
                        self.lm.score(self.messages(question, t), ["Yes", "No"]) for t in texts
                    )
                ],
                np.float32,
            )
        import torch

        lm, yes, no = self.lm, *self._ids
        prompts = [lm.render(self.messages(question, t)) for t in texts]
        out = []
        side = lm.tokenizer.padding_side
        lm.tokenizer.padding_side = "left"  # the next-token logits sit at the last position
        try:
            for i in range(0, len(prompts), self.batch_size):
                enc = lm.tokenizer(
                    prompts[i : i + self.batch_size],
                    return_tensors="pt",
                    padding=True,
                    add_special_tokens=False,
                ).to(lm.model.device)
                # positions count from each prompt's first real token, as unpadded (models with
                # absolute position embeddings, GPT-2's, would shift otherwise)
                pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
                with torch.inference_mode():
                    logits = lm.model(**enc, position_ids=pos).logits[:, -1].float()  # (b, V)
                logp = torch.log_softmax(logits, dim=-1)
                out.append((logp[:, yes] - logp[:, no]).cpu().numpy())
        finally:
            lm.tokenizer.padding_side = side
        return np.concatenate(out).astype(np.float32)


def load_cross_encoder(path: str, device: str | None = None, **kw: Any):
    """A CrossEncoder from a local directory, without transformers' load report on stdout (a
    MiniLM sentence-transformers directory has no classifier head: the report lists it)."""
    try:
        from sentence_transformers.cross_encoder import CrossEncoder
    except ImportError:
        raise ConfigError(
            "cross-encoders need sentence-transformers >= 4 (pip install -U "
            "'sentence-transformers>=4')"
        ) from None
    import logging

    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    st_log = logging.getLogger("sentence_transformers")  # "Converting SentenceTransformer ..."
    st_level = st_log.level
    st_log.setLevel(logging.ERROR)
    try:
        return CrossEncoder(path, local_files_only=True, device=device or "cpu", **kw)
    finally:
        hf_logging.set_verbosity(level)
        st_log.setLevel(st_level)


def load_reranker(
    spec: str | Reranker | None, *, lm=None, embedder=None, field_name: str = "rerank"
) -> Reranker | None:
    """The reranker `spec` names, or None for none. `lm`: the generator (for lm); `embedder`: the
    embedder dense uses (default: the bundled MiniLM)."""
    if isinstance(spec, Reranker):
        return spec
    kind, arg = parse_spec(spec, field_name)
    if kind == "none":
        return None
    if kind == "dense":
        return DenseReranker(embedder)
    if kind == "cross":
        return CrossReranker(arg)
    if lm is None:
        raise ConfigError(f"--{field_name.replace('_', '-')} lm needs a generator to score with")
    return LMReranker(lm)


def rerank_hits(
    reranker: Reranker, question: str, hits: list[tuple[Any, float]], k: int
) -> list[tuple[Any, float]]:
    """(chunk, score) hits reordered by `reranker`, the top k, each with its reranker score."""
    return rerank_hits_batch(reranker, [question], [hits], k)[0]


def rerank_hits_batch(
    reranker: Reranker, questions: Sequence[str], hits: Sequence[list[tuple[Any, float]]], k: int
) -> list[list[tuple[Any, float]]]:
    """`rerank_hits` for several questions, scored in one batch (a cross-encoder's pairs of
    all of them go through the model together)."""
    scores = reranker.scores_batch(questions, [[c.text for c, _ in hs] for hs in hits])
    out = []
    for hs, s in zip(hits, scores, strict=True):
        order = np.argsort(-np.asarray(s, np.float64), kind="stable")[:k]
        out.append([(hs[i][0], float(s[i])) for i in order])
    return out
