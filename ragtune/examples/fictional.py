"""A fictional API library (GlimmerDB's `glimmer` module), generated deterministically.

No model has seen it, so answering questions about it needs the documentation: the domain for
the RAFT comparison in `make demo`.

    python -m ragtune.examples.fictional out/glimmer_api.jsonl --n 48
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

VERBS = [
    "rotate",
    "seal",
    "prune",
    "rebalance",
    "verify",
    "export",
    "replay",
    "throttle",
    "archive",
    "thaw",
    "stitch",
    "mirror",
    "quarantine",
    "fold",
    "rekey",
    "drain",
]
NOUNS = [
    "ledger",
    "shard",
    "lease",
    "segment",
    "cursor",
    "journal",
    "bucket",
    "manifest",
    "tombstone",
    "watermark",
    "catalog",
    "spool",
]
PARAMS = [
    ("keep", "3", "how many old copies to keep"),
    ("dry_run", "False", "only report what would change"),
    ("timeout", "30", "seconds to wait for locks"),
    ("level", "2", "how aggressive the pass is"),
    ("parallel", "4", "worker threads"),
    ("tag", "'nightly'", "a label stored with the result"),
    ("strict", "True", "fail on the first inconsistency"),
    ("limit", "1000", "max items touched"),
]
WHY = {
    "rotate": "start a fresh {n} and retire the current one",
    "seal": "make the {n} read-only",
    "prune": "delete expired entries from the {n}",
    "rebalance": "spread the {n} evenly over shards",
    "verify": "check the {n} for torn or corrupt records",
    "export": "write the {n} to a portable file",
    "replay": "re-apply the {n} after a crash",
    "throttle": "limit how fast the {n} grows",
    "archive": "move the {n} to cold storage",
    "thaw": "bring an archived {n} back online",
    "stitch": "join two halves of a split {n}",
    "mirror": "keep a live copy of the {n}",
    "quarantine": "isolate a damaged {n}",
    "fold": "merge small pieces of the {n}",
    "rekey": "re-encrypt the {n} with a new key",
    "drain": "empty the {n} before shutdown",
}


def make_fictional_api(n: int = 48, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    pairs = [(v, o) for v in VERBS for o in NOUNS]
    pick = rng.choice(len(pairs), size=min(n, len(pairs)), replace=False)
    out = []
    for idx in pick:
        verb, noun = pairs[idx]
        params = [PARAMS[i] for i in sorted(rng.choice(len(PARAMS), size=2, replace=False))]
        # the documented call sets each parameter to a value that differs from its default
        vals = {
            p: str(int(rng.integers(2, 9)))
            if d.isdigit()
            else (
                "True"
                if d == "False"
                else ("False" if d == "True" else f"'{rng.choice(['hourly', 'weekly', 'audit'])}'")
            )
            for p, d, _ in params
        }
        name = f"glimmer.{verb}_{noun}"
        call = f"{name}(vault, " + ", ".join(f"{p}={vals[p]}" for p, _, _ in params) + ")"
        purpose = WHY[verb].format(n=noun)
        desc = f"Use it to {purpose}. " + " ".join(
            f"{p} sets {why} (default {d})." for p, d, why in params
        )
        out.append(
            {
                "api_name": name,
                "api_call": call,
                "description": desc,
                "returns": f"{noun.capitalize()}{verb.capitalize()}Report",
            }
        )
    return out


def write_fictional_api(path: str | Path, n: int = 48, seed: int = 0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in make_fictional_api(n, seed)))
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(write_fictional_api(a.out, a.n, a.seed))
