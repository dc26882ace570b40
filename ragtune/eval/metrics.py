"""Answer metrics: SQuAD-style EM/F1, label accuracy, contains, and API-call matching.

extract_answer("...reasoning...\n<ANSWER>: 42")  -> "42"
exact_match("The Eiffel Tower", "eiffel tower")   -> 1.0
api_call_match("f.g(a, mode='ro')", "f.g(a, mode='ro', x=1)")  -> {"string": 0.0, "ast": 1.0}
"""

from __future__ import annotations

import ast
import re
import string
import threading
from collections import Counter

from ragtune.raft.prompts import ANSWER_TAG, REFUSAL

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)
REFUSAL_ANSWER = REFUSAL.rsplit(ANSWER_TAG, 1)[1].strip()  # what a trained refusal answers


def extract_answer(text: str) -> str:
    """The text after the last <ANSWER>: tag (first line of it); else the whole text stripped."""
    i = text.rfind(ANSWER_TAG)
    if i >= 0:
        text = text[i + len(ANSWER_TAG) :]
    text = text.strip()
    return text.split("\n", 1)[0].strip() if i >= 0 else text


def normalize(s: str) -> str:
    """SQuAD: lowercase, drop punctuation and articles, collapse whitespace."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def exact_match(pred: str, gold: str) -> float:
    return float(normalize(pred) == normalize(gold))


def f1(pred: str, gold: str) -> float:
    p, g = normalize(pred).split(), normalize(gold).split()
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)


def contains(pred: str, gold: str) -> float:
    g = normalize(gold)
    return float(bool(g) and g in normalize(pred))


def label_accuracy(pred: str, gold: str, labels: tuple[str, ...] = ("yes", "no", "maybe")) -> float:
    """1 when the first label word in the prediction is the gold label (PubMedQA-style)."""
    for w in normalize(pred).split():
        if w in labels:
            return float(w == normalize(gold))
    return 0.0


# CPython 3.11's parser is not thread-safe: two threads in ast.parse at once can raise
# "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905). The RAFT
# builder checks teacher answers from worker threads, so every parse here takes this lock.
_PARSE = threading.Lock()


def _parse(code: str) -> ast.Expression:
    with _PARSE:
        return ast.parse(code, mode="eval")


def _call_node(code: str) -> ast.Call | None:
    code = code.strip().strip("`").strip()
    try:
        tree = _parse(code)
    except SyntaxError:
        m = re.search(r"[\w.]+\(.*\)", code, re.S)  # the first call-looking span
        if not m:
            return None
        try:
            tree = _parse(m.group(0))
        except SyntaxError:
            return None
    node = tree.body
    return node if isinstance(node, ast.Call) else None


def _name(node: ast.AST) -> str:
    return ast.unparse(node)


def api_call_match(pred: str, gold: str) -> dict[str, float]:
    """`string`: normalised call strings equal (whitespace and quote style ignored).
    `ast`: same function name, and every positional and keyword argument the gold call gives
    appears with the same value in the predicted call (extra arguments in the prediction allowed).
    """

    def canon(s: str) -> str:
        return re.sub(r"\s+", "", s.strip().strip("`")).replace('"', "'")

    out = {"string": float(canon(pred) == canon(gold)), "ast": 0.0}
    g, p = _call_node(gold), _call_node(pred)
    if g is None or p is None or _name(g.func) != _name(p.func):
        return out
    p_args = [_name(a) for a in p.args]
    p_kw = {k.arg: _name(k.value) for k in p.keywords}
    ok = all(i < len(p_args) and p_args[i] == _name(a) for i, a in enumerate(g.args))
    ok = ok and all(p_kw.get(k.arg) == _name(k.value) for k in g.keywords)
    out["ast"] = float(ok)
    return out


def score(pred_text: str, gold: str, kind: str = "general") -> dict[str, float]:
    """Every metric for one prediction (the answer is extracted from <ANSWER>: first).

    `correct` is the headline: the AST call match when the gold answer is a call (API data),
    label accuracy for yes/no/maybe golds, exact match otherwise.
    """
    pred = extract_answer(pred_text)
    s = {"em": exact_match(pred, gold), "f1": f1(pred, gold), "contains": contains(pred_text, gold)}
    s["correct"] = s["em"]
    if kind == "api call" and _call_node(gold) is not None:
        m = api_call_match(pred, gold)
        s["call_string"], s["call_ast"] = m["string"], m["ast"]
        s["correct"] = m["ast"]
    if normalize(gold) in ("yes", "no", "maybe"):
        s["accuracy"] = label_accuracy(pred, gold)
        s["correct"] = s["accuracy"]
    return s


def is_refusal(pred_text: str) -> bool:
    """The model declined: its answer (after <ANSWER>:) is "I don't know" (the refusal RAFT
    trains with --refusal-rate) or its plain variant "I do not know"."""
    a = normalize(extract_answer(pred_text))
    return any(a.startswith(normalize(r)) for r in (REFUSAL_ANSWER, "I do not know"))


def refusal_stats(preds: list[str], golds: list[str], kinds: list[str]) -> dict[str, float | None]:
    """Refusals among answers given without the oracle in the prompt, as the llama-recipes RAFT
    eval counts them: `n`, `refused`, `refusal_rate` (%), and `answered_precision` (% correct
    among the answers that did not refuse; None when every answer refused)."""
    refused = [is_refusal(p) for p in preds]
    answered = [
        score(p, g, k)["correct"]
        for p, g, k, r in zip(preds, golds, kinds, refused, strict=True)
        if not r
    ]
    n = len(preds)
    return {
        "n": n,
        "refused": sum(refused),
        "refusal_rate": round(100 * sum(refused) / n, 2) if n else None,
        "answered_precision": round(100 * sum(answered) / len(answered), 2) if answered else None,
    }
