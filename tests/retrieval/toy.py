"""A toy RAFT directory where the bundled embedder is weak: questions speak a made-up language.

Each document is one call of a fictional API, `rotate_vault: Rotates a vault ...`; each question
names the same verb and object in invented words ("How do I blorf a zint?"). The words carry no
meaning the base embedder knows, so it ranks near chance; the mapping (blorf = rotate, zint =
vault) is consistent, so an embedder trained on some combinations can find unseen ones. The
split is by document, as `raft from-qa` splits by API: valid and test documents never train.
"""

from __future__ import annotations

import json
from pathlib import Path

VERBS = {
    "rotate": "blorf",
    "compress": "snerk",
    "encrypt": "quavle",
    "merge": "drimp",
    "export": "flonx",
    "audit": "gwent",
}
OBJECTS = {
    "vault": "zint",
    "ledger": "plork",
    "segment": "vusk",
    "snapshot": "trell",
    "cluster": "mobe",
    "keyring": "yark",
}
TEMPLATES = ("How do I {v} a {o}?", "Which call will {v} my {o}?")
# documents no question asks about: verbs and objects the invented language has no word for
EXTRA = [("delete", "index"), ("resize", "buffer"), ("ping", "node"), ("clone", "table")]


def doc(verb: str, obj: str) -> str:
    return (
        f"api_name: {verb}_{obj}\napi_call: glimmer.{verb}_{obj}(handle)\n"
        f"description: {verb.capitalize()}s a {obj} in place and returns its new handle."
    )


def combos() -> list[tuple[str, str]]:
    return [(v, o) for v in VERBS for o in OBJECTS]


def split_of(i: int) -> str:
    # two diagonals of the 6 x 6 grid: every verb and object is in one test combination, and
    # in at least four training ones
    v, o = divmod(i, len(OBJECTS))
    if (v + o) % 6 == 3:
        return "test"
    return "valid" if (v + o) % 6 == 0 and v < 4 else "train"


def write_toy_raft(out: Path) -> Path:
    """raw/{train,valid,test}.jsonl like `ragtune raft from-qa` writes (the fields retrieval
    reads: question, answer, oracle, documents, type, id, group, split)."""
    rows: dict[str, list[dict]] = {"train": [], "valid": [], "test": []}
    extras = [doc(v, o) for v, o in EXTRA]
    all_docs = [doc(v, o) for v, o in combos()]
    for i, (v, o) in enumerate(combos()):
        s = split_of(i)
        d = doc(v, o)
        for t, tmpl in enumerate(TEMPLATES):
            others = [x for x in all_docs if x != d][i % 5 :: 9][:3]
            rows[s].append(
                {
                    "id": f"{v}_{o}_{t}",
                    "type": "api call",
                    "question": tmpl.format(v=VERBS[v], o=OBJECTS[o]),
                    "answer": f"glimmer.{v}_{o}(handle)",
                    "oracle": [d],
                    "documents": [d, *others, extras[i % len(extras)]],
                    "group": f"{v}_{o}",
                    "split": s,
                }
            )
    (out / "raw").mkdir(parents=True, exist_ok=True)
    for s, rs in rows.items():
        with open(out / "raw" / f"{s}.jsonl", "w", encoding="utf-8") as f:
            for r in rs:
                f.write(json.dumps(r) + "\n")
    return out
