"""Training data → token ids with labels (loss on the completion only) → length-grouped batches.

Sources (`TrainConfig.view`):
    chat  RAFT's chat format (DIR/chat/{split}.jsonl|parquet, `messages`), else its completion
          (`prompt`, `completion`) or raw (`instruction`, `cot_answer`) format — loss on the last
          (assistant) message only
    dsf   RAFT raw records (DIR/raw/{split}.jsonl|parquet): question → answer, no documents (DSF)
    text  raw domain text (files/folders; continued pre-training) — loss on every token

`read_split` reads a built split in either --output-type; training and evaluation both use it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ragtune.errors import DataError

IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE on prompt tokens


SPLIT_TYPES = ("jsonl", "parquet")  # what `raft build --output-type` writes
# the RAFT output folders each view can read, best first: the chat format is what the local
# backend renders at inference; completion and raw hold the same prompt and target
VIEW_DIRS = {"chat": ("chat", "completion", "raw"), "dsf": ("raw",), "raw": ("raw",)}


def read_split(path: str | Path) -> list[dict]:
    """The rows of a built split file (`.jsonl` or `.parquet`): the one reader of RAFT outputs."""
    p = Path(path)
    if not p.is_file():
        raise DataError(
            "no such file; build the dataset with `ragtune raft build` first", path=str(p)
        )
    if p.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(p).to_pylist()
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"not a readable parquet file ({e}); rebuild it", path=str(p)) from None
    rows = []
    with open(p, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(f"malformed JSON ({e.msg})", path=str(p), line=ln) from None
    return rows


def _types_first(data: Path) -> tuple[str, ...]:
    """The output types, the one the dataset's manifest names first (when a folder holds both,
    the last build's wins)."""
    try:
        first = json.loads((data / "manifest.json").read_text())["settings"]["output_type"]
    except (OSError, ValueError, KeyError, TypeError):
        return SPLIT_TYPES
    return (first, *(t for t in SPLIT_TYPES if t != first))


def find_split(data: str | Path, view: str, split: str) -> Path | None:
    """The file of `split` for `view` under a RAFT output dir (any format folder the view can
    read, jsonl or parquet), or `data` itself if it is a file."""
    p = Path(data)
    if p.is_file():
        return p if split == "train" else None
    types = _types_first(p)
    for sub in (*VIEW_DIRS.get(view, ()), ""):
        for t in types:
            cand = p / sub / f"{split}.{t}"
            if cand.is_file():
                return cand
    return None


def _completion_stop(path: Path) -> str:
    """The stop marker `raft build` appended to the completion targets of `path`, if it is a
    split of a RAFT output's completion folder ('' otherwise): the target ends with EOS instead,
    or the model would learn to write the marker into its answers."""
    if path.parent.name != "completion":
        return ""
    try:
        m = json.loads((path.parent.parent / "manifest.json").read_text())
        return str(m["settings"]["completion_stop"] or "")
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def conversations(path: Path, view: str) -> list[list[dict]]:
    """Chat conversations of a split: the last message is the target."""
    rows = read_split(path)
    stop = _completion_stop(path)
    out = []
    for i, r in enumerate(rows, 1):
        if view == "dsf":
            if "question" not in r or "answer" not in r:
                raise DataError(
                    "a DSF record needs 'question' and 'answer' (RAFT raw format)",
                    path=str(path),
                    line=i,
                )
            out.append(
                [
                    {"role": "user", "content": r["question"]},
                    {"role": "assistant", "content": r["answer"]},
                ]
            )
        elif "messages" in r:
            msgs = r["messages"]
            if not msgs or msgs[-1].get("role") != "assistant":
                raise DataError(
                    "the last message must be the assistant's (the target)", path=str(path), line=i
                )
            out.append(msgs)
        elif "prompt" in r and "completion" in r:
            target = r["completion"]
            if stop and target.endswith(stop):
                target = target[: -len(stop)]
            out.append(
                [
                    {"role": "user", "content": r["prompt"]},
                    {"role": "assistant", "content": target},
                ]
            )
        elif "instruction" in r and "cot_answer" in r:  # RAFT raw records
            out.append(
                [
                    {"role": "user", "content": r["instruction"]},
                    {"role": "assistant", "content": r["cot_answer"]},
                ]
            )
        else:
            raise DataError(
                "expected 'messages', 'prompt' and 'completion', or 'instruction' and "
                "'cot_answer' (RAFT's chat, completion or raw format)",
                path=str(path),
                line=i,
            )
    return out


def encode_chat(tok, convs: list[list[dict]], max_length: int) -> tuple[list[Example], int]:
    """Tokenise conversations as the local backend renders them at inference; returns
    (examples, number dropped for being longer than max_length)."""
    if not convs:
        return [], 0
    prompts, targets = [], []
    for msgs in convs:
        if tok.chat_template:
            prompts.append(
                tok.apply_chat_template(msgs[:-1], tokenize=False, add_generation_prompt=True)
            )
        else:
            prompts.append("\n\n".join(m["content"] for m in msgs[:-1]) + "\n")
        targets.append(msgs[-1]["content"] + (tok.eos_token or ""))
    p_ids = tok(prompts, add_special_tokens=False)["input_ids"]
    t_ids = tok(targets, add_special_tokens=False)["input_ids"]
    out, dropped = [], 0
    for p, t in zip(p_ids, t_ids, strict=True):
        if len(p) + len(t) > max_length:
            dropped += 1
            continue
        out.append(Example(p + t, [IGNORE] * len(p) + t))
    return out, dropped


def encode_text(tok, texts: list[str], max_length: int) -> list[Example]:
    """Continued pre-training: each text cut into windows of max_length tokens, loss everywhere."""
    out = []
    eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
    for ids in tok(texts, add_special_tokens=False)["input_ids"]:
        ids = ids + eos
        for i in range(0, len(ids), max_length):
            w = ids[i : i + max_length]
            if len(w) > 1:
                out.append(Example(w, list(w)))
    return out


def token_batches(
    lengths: list[int], batch_tokens: int, seed: int, epoch: int, max_batch: int = 64
) -> list[list[int]]:
    """Length-grouped batches: indices sorted by length within shuffled pools, cut so that
    batch_size x longest <= batch_tokens; batch order shuffled. Deterministic in (seed, epoch).

    Padding then costs little (neighbours have similar lengths) while the order stays random
    enough for SGD.
    """
    rng = np.random.default_rng([seed, epoch])
    idx = rng.permutation(len(lengths))
    pool = max(1, 50 * max(1, batch_tokens // max(1, int(np.mean(lengths)))))
    batches: list[list[int]] = []
    for s in range(0, len(idx), pool):
        chunk = sorted(idx[s : s + pool].tolist(), key=lambda i: lengths[i])
        cur: list[int] = []
        longest = 0
        for i in chunk:
            longest_new = max(longest, lengths[i])
            if cur and (longest_new * (len(cur) + 1) > batch_tokens or len(cur) >= max_batch):
                batches.append(cur)
                cur, longest_new = [], lengths[i]
            cur.append(i)
            longest = longest_new
        if cur:
            batches.append(cur)
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def collate(examples: list[Example], pad_id: int):
    """Right-padded tensors: input_ids, attention_mask, labels, each (B, T)."""
    import torch

    T = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    lab = torch.full((len(examples), T), IGNORE, dtype=torch.long)
    att = torch.zeros((len(examples), T), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        lab[i, :n] = torch.tensor(e.labels)
        att[i, :n] = 1
    return ids, att, lab
