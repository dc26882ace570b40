"""KG question-answering metrics: RoG's evaluator, reproduced, plus the true Hits@1.

RoG's reference evaluator (what its paper reports) works on the prediction text:
- normalise: lowercase, drop punctuation, drop the articles a/an/the, collapse whitespace;
- a gold answer *matches* a text when its normalised form is a substring of the text's;
- the prediction is split on newlines into lines;
- `hit`: any gold answer matches the whole prediction (the paper's "Hits@1");
- `hit1`: the first line matches a gold answer (a true Hits@1);
- `recall`: matched gold answers / gold answers;
- `precision`: matched gold answers / prediction lines — this can exceed 1 when one line holds
  several answers; the reference leaves it so (`precision_ref`, `f1_ref`: kept for parity),
  we also report it clipped at 1 (`precision`, `f1`);
- `f1`: per question, then averaged.

m = score_prediction("Jamaican English\\nJamaican Creole", ["Jamaican English"])
report = evaluate_file("predictions.jsonl")   # ours or the reference's jsonl
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path

from ragtune.errors import DataError

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(s: str) -> str:
    s = "".join(c for c in s.lower() if c not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def match(text: str, answer: str) -> bool:
    """RoG's match: the normalised answer is a substring of the normalised text."""
    return normalize(answer) in normalize(text)


def split_prediction(prediction: str | list[str]) -> list[str]:
    """Prediction lines (a list is taken as is); empty lines dropped like blank answers."""
    lines = prediction if isinstance(prediction, list) else prediction.split("\n")
    return [ln for ln in (x.strip() for x in lines) if ln]


@dataclass
class QAScores:
    hit: float
    hit1: float
    f1: float
    precision: float
    recall: float
    f1_ref: float
    precision_ref: float


def score_prediction(prediction: str | list[str], answers: list[str]) -> QAScores:
    """One question's scores. `answers` are the gold answers (at least one)."""
    if not answers:
        raise ValueError("a question needs at least one gold answer to be scored")
    # The reference splits on "\n" and keeps empty lines in the line count; it never
    # writes empty lines itself, so dropping them only differs on odd model output.
    lines = (
        prediction.split("\n")
        if isinstance(prediction, str) and prediction.strip()
        else (split_prediction(prediction) if isinstance(prediction, list) else [])
    )
    if not lines:
        return QAScores(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    joined = normalize(" ".join(lines))
    gold = [normalize(a) for a in answers]
    matched = sum(1 for g in gold if g in joined)
    recall = matched / len(gold)
    p_ref = matched / len(lines)
    p = min(1.0, p_ref)
    first = normalize(lines[0])
    return QAScores(
        hit=float(matched > 0),
        hit1=float(any(g in first for g in gold)),
        f1=_f1(p, recall),
        precision=p,
        recall=recall,
        f1_ref=_f1(p_ref, recall),
        precision_ref=p_ref,
    )


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def aggregate(scores: list[QAScores]) -> dict[str, float]:
    """Means in percent, keyed by metric name; `n` is the question count."""
    n = len(scores)
    out: dict[str, float] = {"n": n}
    for k in QAScores.__dataclass_fields__:
        out[k] = 100.0 * sum(getattr(s, k) for s in scores) / n if n else 0.0
    return out


def read_predictions(path: str | Path) -> list[dict]:
    """Prediction rows: `prediction` (str or list) and `ground_truth` (or `answers`) each line.

    Reads the RoG reference's files as they are; ours add `paths`, `plans`, `supported`.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"predictions file {path} does not exist; check the path")
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"not JSON ({e.msg})", path=str(path), line=i) from None
            gold = r.get("ground_truth", r.get("answers"))
            if "prediction" not in r or not isinstance(gold, list):
                raise DataError(
                    "a prediction row needs 'prediction' and 'ground_truth' (or 'answers') "
                    "as a list of gold answers",
                    path=str(path),
                    line=i,
                )
            r["_gold"] = [str(g) for g in gold]
            rows.append(r)
    return rows


def evaluate_rows(rows: list[dict]) -> dict[str, float]:
    """All metrics over prediction rows; rows with no gold answer are skipped (as RoG does)."""
    scores = [score_prediction(r["prediction"], r["_gold"]) for r in rows if r["_gold"]]
    out = aggregate(scores)
    # Our own rows say whether the plans were valid in the graph and whether each correct
    # answer is backed by a retrieved path; the reference's rows carry neither.
    plans = [p for r in rows for p in r.get("plans", [])]
    if plans:
        out["plan_validity"] = 100.0 * sum(bool(p.get("valid")) for p in plans) / len(plans)
    sup = [r["supported"] for r in rows if r.get("supported") is not None]
    if sup:
        out["supported"] = 100.0 * sum(sup) / len(sup)
    return out


def evaluate_file(path: str | Path) -> dict[str, float]:
    return evaluate_rows(read_predictions(path))


def answer_supported(answers: list[str], gold: list[str], path_ends: list[str]) -> bool | None:
    """Is every correct predicted answer the end of some retrieved path? None: no correct one."""
    ends = {normalize(e) for e in path_ends}
    correct = [a for a in answers if any(normalize(g) == normalize(a) for g in gold)]
    if not correct:
        return None
    return all(normalize(a) in ends for a in correct)
