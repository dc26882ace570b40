"""Readers that turn existing QA datasets into `QAItem`s for the RAFT from-QA path.

Every reader returns ``(items, pool)``: the questions with their oracle document(s), and the
global distractor pool (documents that other items' distractors can be drawn from; empty when
every item carries its own ``distractors``, as HotpotQA items do).

Formats:

* ``hotpotqa``: IRCoT JSON Lines (``question_id, question_text, answers_objects, contexts``) or
  the original HotpotQA JSON list (``_id, question, answer, supporting_facts, context``);
  detected per record.
* ``pubmedqa``: ``ori_pqal.json``, an object ``{pmid: {QUESTION, CONTEXTS, final_decision, ...}}``.
* ``gorilla``: APIBench ``*_eval.json`` / ``*_train.json`` (JSON Lines despite the name), with
  the ``*_api.jsonl`` documentation records as the pool. ``code`` is ``###Instruction: ...
  ###Output: ...`` or, in the Torch Hub training file, a Python-dict-like string; a question
  that still contains its gold call is refused (it would teach copying).
* ``generic``: JSON Lines of ``question, answer, oracle_ids | oracle`` (+ optional ``cot``), with
  an optional ``{id, text}`` JSON Lines corpus that ``oracle_ids`` index into.

A malformed record raises `DataError` naming the file and line (JSON Lines) or record index (JSON),
the missing field, and the format that was expected.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ragtune.corpus.document import stable_id
from ragtune.errors import ConfigError, DataError
from ragtune.raft import prompts as P
from ragtune.raft.types import QAItem

Reader = Callable[..., tuple[list[QAItem], list[str]]]

_IRCOT_FORMAT = (
    "expected HotpotQA as IRCoT JSON Lines (question_id, question_text, "
    "answers_objects[{spans}], contexts[{title, paragraph_text, is_supporting}]) or the original "
    "HotpotQA JSON list (_id, question, answer, supporting_facts, context)"
)
_PUBMEDQA_FORMAT = (
    "expected PubMedQA ori_pqal.json: a JSON object {pmid: {QUESTION, CONTEXTS: [...], "
    "final_decision, LONG_ANSWER}}"
)
_GORILLA_FORMAT = (
    "expected Gorilla APIBench *_eval.json, one JSON object a line: "
    "code ('###Instruction: ... ###Output: ...', or the dict-like "
    "\"{'Instruction': ..., 'Output': {...}}\" of the Torch Hub files), api_call, provider, api_data"
)
_GORILLA_API_FORMAT = "expected Gorilla APIBench *_api.jsonl, one API record (JSON object) a line"
_GENERIC_FORMAT = (
    "expected generic QA JSON Lines: question, answer, oracle_ids (ids into --corpus) or "
    "oracle (text or list of texts), optional cot"
)
_CORPUS_FORMAT = "expected a corpus of JSON Lines {id, text}"


# --------------------------------------------------------------------------- loading records


class _Rec:
    """One record of a file and where it came from (a line of JSON Lines, or an index in JSON)."""

    __slots__ = ("data", "index", "label", "line", "path")

    def __init__(
        self, data: Any, index: int, line: int | None, path: str, label: str | None = None
    ):
        self.data = data
        self.index = index
        self.line = line
        self.path = path
        self.label = label or ("record" if line is not None else f"record {index}")

    def error(self, message: str, expected: str) -> DataError:
        return DataError(f"{self.label} {message} ({expected})", path=self.path, line=self.line)

    def obj(self, expected: str) -> dict[str, Any]:
        if not isinstance(self.data, dict):
            kind = "null" if self.data is None else type(self.data).__name__
            raise self.error(f"is a JSON {kind}, not an object", expected)
        return self.data

    def field(self, name: str, expected: str, kinds: type | tuple[type, ...] = str) -> Any:
        rec = self.obj(expected)
        if name not in rec or rec[name] is None:
            fields = ", ".join(str(k) for k in list(rec)[:12]) or "none"
            raise self.error(f"has no field '{name}' (fields: {fields})", expected)
        value = rec[name]
        if not isinstance(value, kinds):
            want = (
                kinds.__name__ if isinstance(kinds, type) else "/".join(k.__name__ for k in kinds)
            )
            raise self.error(
                f"field '{name}' is a JSON {type(value).__name__}, expected {want}", expected
            )
        return value


def _read_text(path: Path, expected: str) -> str:
    if not path.exists():
        raise DataError("no such file", path=str(path))
    if path.is_dir():
        raise DataError(f"is a folder, not a file ({expected})", path=str(path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 (byte offset {e.start}); {expected}", path=str(path)) from None
    except OSError as e:
        raise DataError(f"cannot read: {e.strerror or e}", path=str(path)) from None
    if not text.strip():
        raise DataError(f"empty file ({expected})", path=str(path))
    return text


def _json_error(e: json.JSONDecodeError, line: int | None = None) -> str:
    return f"malformed JSON at line {line or e.lineno} col {e.colno}: {e.msg}"


def _records(path: Path, expected: str) -> list[_Rec]:
    """The records of a JSON Lines file, or of a file holding one JSON list (or one object)."""
    text = _read_text(path, expected)
    source = str(path)
    if text.lstrip().startswith("["):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{_json_error(e)} ({expected})", path=source, line=e.lineno) from None
        if not isinstance(obj, list):  # pragma: no cover - a leading "[" parses to a list
            obj = [obj]
        if not obj:
            raise DataError(f"empty JSON list: no records ({expected})", path=source)
        return [_Rec(r, i, None, source) for i, r in enumerate(obj)]
    out: list[_Rec] = []
    for lineno, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            if not out:  # maybe one pretty-printed JSON object rather than JSON Lines
                try:
                    whole = json.loads(text)
                except json.JSONDecodeError:
                    whole = None
                if isinstance(whole, dict):
                    return [_Rec(whole, 0, None, source)]
            raise DataError(
                f"{_json_error(e, lineno)} ({expected})", path=source, line=lineno
            ) from None
        out.append(_Rec(data, len(out), lineno, source))
    return out


def _distinct(texts: Iterator[str] | list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for t in texts:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


# --------------------------------------------------------------------------- HotpotQA


def read_hotpotqa(path: str | Path) -> tuple[list[QAItem], list[str]]:
    """HotpotQA (distractor setting): IRCoT JSON Lines or the original JSON list.

    Oracles are the supporting paragraphs (``"{title}\\n{text}"``), the other paragraphs of the
    same question are its ``distractors``; the pool is empty. From the original format,
    ``meta["supporting_sentences"]`` holds the supporting sentences.
    """
    items = []
    for rec in _records(Path(path), _IRCOT_FORMAT):
        data = rec.obj(_IRCOT_FORMAT)
        if "contexts" in data or "question_text" in data:
            items.append(_hotpot_ircot(rec))
        elif "context" in data or "supporting_facts" in data or "_id" in data:
            items.append(_hotpot_original(rec))
        else:
            fields = ", ".join(str(k) for k in list(data)[:12]) or "none"
            raise rec.error(
                f"is neither IRCoT nor original HotpotQA (fields: {fields})", _IRCOT_FORMAT
            )
    return items, []


def _hotpot_ircot(rec: _Rec) -> QAItem:
    f = _IRCOT_FORMAT
    qid = str(rec.field("question_id", f, (str, int)))
    question = rec.field("question_text", f).strip()
    answers = rec.field("answers_objects", f, list)
    spans = answers[0].get("spans") if answers and isinstance(answers[0], dict) else None
    if not spans or not isinstance(spans, list) or not isinstance(spans[0], str):
        raise rec.error("has no answer: answers_objects[0].spans is missing or empty", f)
    contexts = rec.field("contexts", f, list)
    oracle: list[str] = []
    distractors: list[str] = []
    for i, ctx in enumerate(contexts):
        if not isinstance(ctx, dict):
            raise rec.error(f"contexts[{i}] is not an object", f)
        if "paragraph_text" not in ctx:
            raise rec.error(f"contexts[{i}] has no field 'paragraph_text'", f)
        title = str(ctx.get("title") or "").strip()
        body = str(ctx["paragraph_text"]).strip()
        text = f"{title}\n{body}" if title else body
        (oracle if ctx.get("is_supporting") else distractors).append(text)
    if not oracle:
        raise rec.error("has no supporting paragraph (no context with is_supporting: true)", f)
    return QAItem(
        id=stable_id("hotpotqa", qid),
        question=question,
        oracle=oracle,
        answer=spans[0].strip(),
        distractors=distractors,
        group=qid,
        type="general",
    )


def _hotpot_original(rec: _Rec) -> QAItem:
    f = _IRCOT_FORMAT
    qid = str(rec.field("_id", f, (str, int)))
    question = rec.field("question", f).strip()
    answer = rec.field("answer", f, (str, int, float))
    facts = rec.field("supporting_facts", f, list)
    context = rec.field("context", f, list)
    paragraphs: list[tuple[str, list[str]]] = []
    for i, par in enumerate(context):
        ok = isinstance(par, list | tuple) and len(par) == 2 and isinstance(par[1], list | str)
        if not ok:
            raise rec.error(f"context[{i}] is not a [title, [sentences...]] pair", f)
        sents = [par[1]] if isinstance(par[1], str) else [str(s) for s in par[1]]
        paragraphs.append((str(par[0]), sents))
    wanted: list[tuple[str, int]] = []
    for i, fact in enumerate(facts):
        if not (isinstance(fact, list | tuple) and len(fact) == 2 and isinstance(fact[1], int)):
            raise rec.error(f"supporting_facts[{i}] is not a [title, sentence_index] pair", f)
        wanted.append((str(fact[0]), fact[1]))
    titles = {t for t, _ in wanted}
    oracle: list[str] = []
    distractors: list[str] = []
    for title, sents in paragraphs:
        text = f"{title}\n{''.join(sents).strip()}"
        (oracle if title in titles else distractors).append(text)
    if not oracle:
        raise rec.error("has no context paragraph named in supporting_facts", f)
    by_title = dict(paragraphs)
    supporting = [
        by_title[t][k].strip()
        for t, k in wanted
        if t in by_title and 0 <= k < len(by_title[t]) and by_title[t][k].strip()
    ]
    return QAItem(
        id=stable_id("hotpotqa", qid),
        question=question,
        oracle=oracle,
        answer=str(answer).strip(),
        distractors=distractors,
        group=qid,
        type="general",
        meta={"supporting_sentences": supporting},
    )


# --------------------------------------------------------------------------- PubMedQA


def read_pubmedqa(path: str | Path) -> tuple[list[QAItem], list[str]]:
    """PubMedQA ``ori_pqal.json``: the abstract's contexts are the one oracle document.

    answer = ``final_decision`` (yes/no/maybe), ``meta["long_answer"]`` = ``LONG_ANSWER``; the pool
    is every item's abstract (distractors are other abstracts).
    """
    p = Path(path)
    f = _PUBMEDQA_FORMAT
    text = _read_text(p, f)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{_json_error(e)} ({f})", path=str(p), line=e.lineno) from None
    if not isinstance(obj, dict):
        raise DataError(f"JSON holds a {type(obj).__name__}, not an object ({f})", path=str(p))
    if not obj:
        raise DataError(f"empty JSON object: no records ({f})", path=str(p))
    items = []
    for index, (pmid, data) in enumerate(obj.items()):
        rec = _Rec(data, index, None, str(p), label=f"record {index} (pmid {pmid})")
        question = rec.field("QUESTION", f).strip()
        contexts = rec.field("CONTEXTS", f, (list, str))
        if isinstance(contexts, str):
            contexts = [contexts]
        doc = "\n".join(str(c).strip() for c in contexts if str(c).strip())
        if not doc:
            raise rec.error("has empty CONTEXTS", f)
        decision = data.get("final_decision")
        if decision is not None and not isinstance(decision, str):
            raise rec.error("field 'final_decision' is not a string", f)
        meta: dict[str, Any] = {}
        if data.get("LONG_ANSWER") is not None:
            meta["long_answer"] = str(data["LONG_ANSWER"]).strip()
        if isinstance(data.get("LABELS"), list):
            meta["labels"] = data["LABELS"]
        items.append(
            QAItem(
                id=stable_id("pubmedqa", str(pmid)),
                question=question,
                oracle=[doc],
                answer=decision.strip() if decision is not None else None,
                group=str(pmid),
                type="general",
                meta=meta,
            )
        )
    return items, _distinct(it.oracle[0] for it in items)


# --------------------------------------------------------------------------- Gorilla APIBench


def render_api_record(
    record: dict[str, Any], fields: list[str] | None = None, max_chars: int | None = None
) -> str:
    """An API record as one ``key: value`` line per field, in the record's order.

    Strings are written as they are; everything else (dicts, lists, numbers, null) as JSON.
    `fields` keeps only those fields, in the given order (missing ones are left out);
    `max_chars` cuts each value to that many characters, at a word boundary when one is near,
    with "..." appended — a compact rendering for small context windows. ``api_call`` is never
    cut: it is what the model must copy.
    """
    keys = list(record) if not fields else [k for k in fields if k in record]
    lines = []
    for k in keys:
        v = record[k]
        text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        if max_chars and k != "api_call" and len(text) > max_chars:
            cut = text[:max_chars]
            space = cut.rfind(" ")
            text = (cut[:space] if space > max_chars * 0.6 else cut).rstrip() + "..."
        lines.append(f"{k}: {text}")
    return "\n".join(lines)


_INSTRUCTION = re.compile(r"#{2,}\s*Instruction\s*:", re.I)
_OUTPUT = re.compile(r"#{2,}\s*Output\s*:", re.I)
_SECTION = re.compile(r"<<<\s*(\w+)\s*>>>\s*:?")


_DICT_KEY = r"""['"]{}['"]\s*:\s*"""
# a quoted value up to the quote that closes it: the one followed by the next key or the end
_DICT_VALUE = r"""(['"])(.*?)\1\s*(?:,\s*['"]\w+['"]\s*:|\})"""


def _unquote(text: str, quote: str) -> str:
    """A value cut out of a dict-like string, with its escapes (\\n, \\') decoded when they
    parse."""
    try:
        value = ast.literal_eval(quote + text + quote)
    except (SyntaxError, ValueError):
        # an unescaped quote inside: decode the common escapes by hand
        for esc, ch in (("\\n", "\n"), ("\\t", "\t"), ("\\'", "'"), ('\\"', '"')):
            text = text.replace(esc, ch)
        return text
    return value if isinstance(value, str) else text


def _parse_dict_code(code: str) -> tuple[str, dict[str, str]] | None:
    """(instruction, sections) of a dict-like ``code``
    (``{'Instruction': ..., 'Output': {'domain': ..., 'api_call': ..., ...}}``, the shape of
    APIBench's Torch Hub training file); None when `code` is not one.

    Parsed as a Python literal (never evaluated); a string that is not a valid literal (an
    unescaped quote inside a value) is cut by its keys instead.
    """
    if not code.lstrip().startswith("{") or not re.search(_DICT_KEY.format("Instruction"), code):
        return None
    try:
        obj = ast.literal_eval(code.strip())
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        obj = None
    if isinstance(obj, dict) and "Instruction" in obj:
        out = obj.get("Output")
        if isinstance(out, dict):
            sections = {str(k).lower(): str(v).strip() for k, v in out.items()}
        else:
            sections = _parse_gorilla_code(f"###Output: {out}")[1] if out else {}
        return str(obj["Instruction"]).strip(), sections
    m = re.search(
        _DICT_KEY.format("Instruction") + r"""(['"])(.*?)\1\s*,\s*['"]Output['"]\s*:""", code, re.S
    )
    if not m:
        return None
    sections = {}
    rest = code[m.end() :]
    for name in ("domain", "api_call", "api_provider", "explanation", "code"):
        v = re.search(_DICT_KEY.format(name) + _DICT_VALUE, rest, re.S)
        if v:
            sections[name] = _unquote(v.group(2), v.group(1)).strip()
    return _unquote(m.group(2), m.group(1)).strip(), sections


def _parse_gorilla_code(code: str) -> tuple[str, dict[str, str]]:
    """(instruction, {section: text}) of an APIBench ``code`` field.

    Two shapes: ``###Instruction: ... ###Output: <<<domain>>>: ...`` (the eval files) and a
    Python-dict-like string (the Torch Hub training file, see `_parse_dict_code`).
    The instruction runs from ``###Instruction:`` to the first ``###Output:`` (or the end); the
    sections are the ``<<<name>>>:`` parts of the output (domain, api_call, api_provider,
    explanation, code). Missing markers are tolerated: the dataset has a few free-form outputs.
    """
    parsed = _parse_dict_code(code)
    if parsed is not None:
        return parsed
    m = _INSTRUCTION.search(code)
    start = m.end() if m else 0
    out = _OUTPUT.search(code, start)
    instruction = code[start : out.start() if out else len(code)].strip()
    sections: dict[str, str] = {}
    if out:
        output = code[out.end() :]
        marks = list(_SECTION.finditer(output))
        for i, mk in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(output)
            name = mk.group(1).lower()
            if name not in sections:
                sections[name] = output[mk.end() : end].strip()
    return instruction, sections


def _squash(text: str) -> str:
    """`text` without whitespace and with one quote style: a call found in a question however
    it was spaced or quoted."""
    return re.sub(r"\s+", "", text).replace('"', "'")


def _default_api_path(eval_path: Path) -> Path | None:
    stem = eval_path.name
    cut = stem.rfind("_eval")
    if cut <= 0:
        return None
    candidate = eval_path.with_name(stem[:cut] + "_api.jsonl")
    return candidate if candidate.is_file() else None


def task_cot(domain: str, oracle: str, call: str) -> str | None:
    """A CoT that names the task first, then quotes the record of that task down to its call.

    A request never names its API, so the choice of document must come from the task: the
    answer says which task (the record's ``domain``) the request is, then quotes the oracle from
    its ``domain:`` line through its ``api_call:`` line (one span when the domain comes first,
    as in the compact rendering; two quotes otherwise), then the call. None when the rendered
    record lacks either line (the caller falls back to the call-quoting template).
    """
    lines = oracle.split("\n")
    dom = next((i for i, ln in enumerate(lines) if ln == f"domain: {domain}"), None)
    cal = next((i for i, ln in enumerate(lines) if ln == f"api_call: {call}"), None)
    if not domain or dom is None or cal is None:
        return None
    b, e = P.BEGIN_QUOTE, P.END_QUOTE
    if dom < cal:
        span = "\n".join(lines[dom : cal + 1])
        quoted = f"{b}{span}{e}"
    else:
        quoted = f"{b}{lines[dom]}{e} and {b}{lines[cal]}{e}"
    return (
        f"The request is a {domain} task. The document for that task says {quoted}.\n"
        f"{P.ANSWER_TAG} {call}"
    )


GORILLA_COTS = ("call", "task")


def read_gorilla(
    eval_path: str | Path,
    api_path: str | Path | None = None,
    api_fields: list[str] | None = None,
    field_chars: int | None = None,
    cot: str = "call",
) -> tuple[list[QAItem], list[str]]:
    """Gorilla APIBench: ``*_eval.json`` questions with their gold API record as the oracle.

    `cot` picks the training answer: "call" leaves it to the offline template (quote the
    ``api_call`` line), "task" sets `task_cot` (name the record's domain, quote the record from
    its ``domain:`` line to its call), which ties the choice of document to the request.

    group = the API's ``api_name`` (no API in two splits); the pool is every record of
    `api_path` (default: the ``*_api.jsonl`` next to the eval file with the same prefix), or the
    distinct oracles when there is none. Note that an API record of the pool may describe the same
    API as an item's oracle with a different ``api_call``; exclude pool documents of the item's
    ``meta["api_name"]`` when drawing distractors.
    """
    if cot not in GORILLA_COTS:
        raise ConfigError(f"unknown Gorilla CoT {cot!r}; use one of {', '.join(GORILLA_COTS)}")
    if cot == "task" and api_fields and not {"domain", "api_call"} <= set(api_fields):
        raise ConfigError(
            "the 'task' CoT quotes the record's domain and api_call lines: add both to --api-fields"
        )
    ep = Path(eval_path)
    f = _GORILLA_FORMAT
    items = []
    for rec in _records(ep, f):
        code = rec.field("code", f)
        api_call = rec.field("api_call", f).strip()
        api_data = rec.field("api_data", f, dict)
        api_name = api_data.get("api_name")
        if api_name is None or isinstance(api_name, dict | list) or not str(api_name).strip():
            raise rec.error("field 'api_data' has no 'api_name'", f)
        question, sections = _parse_gorilla_code(code)
        if not question:
            raise rec.error("has no instruction text in 'code' ('###Instruction: ...')", f)
        if _squash(api_call) in _squash(question):
            # a question that shows its answer teaches copying and scores 100% on recall alone
            raise rec.error(
                f"has a question that contains its own gold answer ({api_call!r}): the "
                "instruction could not be told apart from the output in 'code'; give 'code' as "
                "'###Instruction: ... ###Output: ...' or as the dict-like "
                "{'Instruction': ..., 'Output': {...}}",
                f,
            )
        provider = rec.data.get("provider")
        oracle = render_api_record(api_data, api_fields, field_chars)
        domain = api_data.get("domain")
        items.append(
            QAItem(
                id=stable_id("gorilla", ep.name, str(rec.index), question),
                question=question,
                oracle=[oracle],
                answer=api_call,
                cot=task_cot(domain, oracle, api_call)
                if cot == "task" and isinstance(domain, str)
                else None,
                group=str(api_name).strip(),
                type="api call",
                meta={
                    "api_name": str(api_name).strip(),
                    "domain": sections.get("domain", str(api_data.get("domain") or "")),
                    "provider": str(provider) if provider is not None else "",
                    "explanation": sections.get("explanation", ""),
                    "code": sections.get("code", ""),
                },
            )
        )
    ap = Path(api_path) if api_path is not None else _default_api_path(ep)
    if ap is None:
        return items, _distinct(it.oracle[0] for it in items)
    pool = [
        render_api_record(r.obj(_GORILLA_API_FORMAT), api_fields, field_chars)
        for r in _records(ap, _GORILLA_API_FORMAT)
    ]
    return items, pool


# --------------------------------------------------------------------------- generic JSON Lines


def _read_corpus(path: Path) -> dict[str, str]:
    f = _CORPUS_FORMAT
    docs: dict[str, str] = {}
    for rec in _records(path, f):
        did = str(rec.field("id", f, (str, int)))
        text = rec.field("text", f)
        if did in docs:
            raise rec.error(f"repeats id '{did}'", f)
        docs[did] = text
    return docs


def _texts(rec: _Rec, name: str, f: str) -> list[str]:
    value = rec.field(name, f, (str, list))
    texts = [value] if isinstance(value, str) else value
    if not all(isinstance(t, str) for t in texts):
        raise rec.error(f"field '{name}' holds a non-string", f)
    return texts


def read_generic(
    path: str | Path, corpus: str | Path | None = None
) -> tuple[list[QAItem], list[str]]:
    """Generic QA JSON Lines: ``question, answer, oracle_ids | oracle`` and optional ``cot``.

    ``oracle_ids`` index into `corpus` (JSON Lines ``{id, text}``); a line may instead carry
    ``oracle`` (a text or a list of texts). Optional per line: ``id``, ``distractors`` (texts),
    ``group``, ``type``. The pool is every corpus text, or the distinct oracles without a corpus.
    """
    p = Path(path)
    f = _GENERIC_FORMAT
    docs = _read_corpus(Path(corpus)) if corpus is not None else None
    items = []
    for rec in _records(p, f):
        data = rec.obj(f)
        question = rec.field("question", f).strip()
        if not question:
            raise rec.error("has an empty 'question'", f)
        if "oracle_ids" in data and (docs is not None or "oracle" not in data):
            ids = data["oracle_ids"]
            ids = [ids] if isinstance(ids, str | int) else ids
            if not isinstance(ids, list) or not ids:
                raise rec.error("field 'oracle_ids' is not a non-empty list of ids", f)
            if docs is None:
                raise rec.error("has 'oracle_ids' but no corpus was given; pass the corpus", f)
            oracle = []
            for oid in ids:
                if str(oid) not in docs:
                    raise rec.error(f"names oracle id '{oid}', which is not in the corpus", f)
                oracle.append(docs[str(oid)])
            group = str(ids[0])
        elif "oracle" in data:
            oracle = [t for t in _texts(rec, "oracle", f) if t.strip()]
            if not oracle:
                raise rec.error("has an empty 'oracle'", f)
            group = stable_id(oracle[0])
        else:
            fields = ", ".join(str(k) for k in list(data)[:12]) or "none"
            raise rec.error(f"has neither 'oracle_ids' nor 'oracle' (fields: {fields})", f)
        answer = data.get("answer")
        if answer is not None and not isinstance(answer, str | int | float):
            raise rec.error("field 'answer' is not a string", f)
        cot = data.get("cot")
        if cot is not None and not isinstance(cot, str):
            raise rec.error("field 'cot' is not a string", f)
        distractors = _texts(rec, "distractors", f) if data.get("distractors") is not None else None
        rid = data.get("id")
        items.append(
            QAItem(
                id=str(rid)
                if rid is not None
                else stable_id("generic", p.name, str(rec.index), question),
                question=question,
                oracle=oracle,
                answer=str(answer).strip() if answer is not None else None,
                cot=cot,
                distractors=distractors,
                group=str(data["group"]) if data.get("group") is not None else group,
                type=str(data.get("type") or "general"),
            )
        )
    if docs is not None:
        return items, list(docs.values())
    return items, _distinct(t for it in items for t in it.oracle)


# --------------------------------------------------------------------------- dispatch

READERS: dict[str, Reader] = {
    "hotpotqa": read_hotpotqa,
    "pubmedqa": read_pubmedqa,
    "gorilla": read_gorilla,
    "generic": read_generic,
}


def read_qa(format: str, path: str | Path, **kw: Any) -> tuple[list[QAItem], list[str]]:
    """Read a QA dataset with the reader for `format` (one of `READERS`)."""
    reader = READERS.get(format)
    if reader is None:
        known = ", ".join(sorted(READERS))
        raise ConfigError(f"unknown QA format {format!r}; known formats: {known}")
    return reader(path, **kw)
