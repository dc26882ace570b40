"""Templated multi-hop questions from a KG: a question set for a graph that has none, or for
hop counts a benchmark lacks (MetaQA-approx ships 1- and 2-hop questions; issue 21 asks for 3).

    ragtune rog synth out/kg --templates templates.yaml --out q3.jsonl --per-template 300

In Python: `ragtune.rog.synth.synth_questions(SynthConfig(...))`. The templates file is YAML (or
JSON), a list of relation paths with wordings; ``{}`` marks the topic entity:

    - path: [directed_by, ~directed_by, starred_actors]
      texts:
        - "who acted in the films directed by the director of {}"
        - "the films that share directors with {} starred which actors"

For each template, topic entities are drawn (seeded) among those where the path's first step
starts; the answers are the ends of every walk along the path, the topic itself dropped (a
question about "the films of the director of X" never means X). Questions with no answer or
more than `max_answers` are skipped, so every answer set is complete and small enough to score.

The output is `rog build-data --format jsonl` input: one `{"id", "question", "entities",
"answers", "gold_relations", "exclude_entities": true}` a line, so planning targets are the
template's path (`--targets auto` takes the data's gold path).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ragtune.errors import ConfigError, DataError


@dataclass
class SynthConfig:
    """Write templated multi-hop questions over a KG (questions JSONL for rog build-data)."""

    kg: str = field(
        default="", metadata={"help": "KG directory.", "positional": True, "required": True}
    )
    templates: str = field(
        default="",
        metadata={"help": "YAML/JSON list of {path: [r1, ...], texts: ['... {} ...']}."},
    )
    out: str = field(default="", metadata={"help": "Output questions JSONL.", "required": True})
    per_template: int = field(default=200, metadata={"help": "Questions per template."})
    max_answers: int = field(
        default=30, metadata={"help": "Skip questions with more answers than this."}
    )
    seed: int = field(default=0, metadata={"help": "Seed for topics and wordings."})


@dataclass
class Template:
    path: list[str]
    texts: list[str]


def read_templates(path: str | Path) -> list[Template]:
    """The templates file, checked: a list of {path: [..], texts: [..]} with `{}` in each text."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"templates file {path} does not exist; check --templates")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except yaml.YAMLError as e:
        raise DataError(f"not valid YAML ({getattr(e, 'problem', e)})", path=str(path)) from None
    if not isinstance(data, list) or not data:
        raise DataError("expected a non-empty list of {path, texts} templates", path=str(path))
    out = []
    for i, t in enumerate(data, 1):
        where = f"template {i}"
        if not isinstance(t, dict) or set(t) != {"path", "texts"}:
            raise DataError(f"{where}: give exactly the keys 'path' and 'texts'", path=str(path))
        p, texts = t["path"], t["texts"]
        if not isinstance(p, list) or not p or not all(isinstance(r, str) and r for r in p):
            raise DataError(f"{where}: 'path' must be a list of relation names", path=str(path))
        if not isinstance(texts, list) or not texts:
            raise DataError(f"{where}: 'texts' must be a non-empty list", path=str(path))
        for s in texts:
            if not isinstance(s, str) or s.count("{}") != 1:
                raise DataError(
                    f"{where}: wording {s!r} must contain '{{}}' exactly once (the topic entity)",
                    path=str(path),
                )
        out.append(Template(list(p), list(texts)))
    return out


def path_starts(kg, relation: str) -> np.ndarray:
    """Entity ids with at least one `relation` step (``~r``: an incoming r edge), ascending."""
    code = kg.directed_relation(relation)
    n_rel = kg.num_relations
    adj = kg.rev if code >= n_rel else kg.fwd
    keys = np.asarray(adj.key)
    keys = keys[keys % n_rel == code % n_rel]  # (edges of the relation,) ascending
    return np.unique(keys // n_rel)


def template_questions(
    kg, templates: list[Template], per_template: int = 200, max_answers: int = 30, seed: int = 0
) -> list[dict]:
    """`per_template` questions per template (fewer when too few topics qualify)."""
    rng = random.Random(seed)
    names = kg.entity_names
    rows: list[dict] = []
    for ti, t in enumerate(templates):
        for r in t.path:
            kg.directed_relation(r)  # raises with the known relations named
        starts = path_starts(kg, t.path[0]).tolist()
        rng.shuffle(starts)
        made = 0
        for s in starts:
            if made >= per_template:
                break
            got = kg.follow([s], t.path, max_paths=max(1000, 100 * max_answers))
            ends = set(got.ends.tolist()) - {s}
            # a truncated walk may have missed answers: only complete answer sets are kept
            if got.truncated or not ends or len(ends) > max_answers:
                continue
            text = rng.choice(t.texts)
            rows.append(
                {
                    "id": f"synth-{ti + 1}-{made + 1}",
                    "question": text.format(names[s]),
                    "entities": [names[s]],
                    "answers": sorted(names[e] for e in ends),
                    "gold_relations": [list(t.path)],
                    "exclude_entities": True,
                }
            )
            made += 1
    return rows


def synth_questions(cfg: SynthConfig) -> dict:
    """Write the questions; returns {"out", "questions", "per_template": [counts]}."""
    from ragtune.kg import KG
    from ragtune.store import atomic_write

    if not cfg.templates:
        raise ConfigError("give --templates FILE (a list of {path, texts}; see `rog synth --help`)")
    if cfg.per_template < 1 or cfg.max_answers < 1:
        raise ConfigError("--per-template and --max-answers must be at least 1")
    kg = KG.open(cfg.kg)
    templates = read_templates(cfg.templates)
    rows = template_questions(kg, templates, cfg.per_template, cfg.max_answers, cfg.seed)
    counts = [
        sum(r["id"].startswith(f"synth-{i + 1}-") for r in rows) for i in range(len(templates))
    ]
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return {"out": str(out), "questions": len(rows), "per_template": counts}
