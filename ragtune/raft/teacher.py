"""Teachers write the questions and chain-of-thought answers of RAFT examples.

- `LLMTeacher`: any ragtune LM (an OpenAI-compatible endpoint or a local model).
- `RecordTeacher`: offline and deterministic, for structured records (API docs, JSON records
  rendered as `key: value` lines): questions from field templates, the answer is the field's
  value, the chain of thought quotes the field's line. No LLM, so demos and tests need no endpoint.
- `template_cot`: a chain of thought quoting the gold sentence, for QA data with known answers.
"""

from __future__ import annotations

import re

from ragtune.corpus.chunking import sentence_spans
from ragtune.errors import DataError
from ragtune.llm.base import LM
from ragtune.raft import prompts as P
from ragtune.raft.verify import normalise

_FIELD_LINE = re.compile(r"^([A-Za-z_][\w.]*): (.+)$")
_LEADER = re.compile(r"^\s*(?:\d+[.)]|[-*•]|Q\d*[:.)]|Question\s*\d*[:.)])\s*", re.I)
TITLE_FIELDS = ("api_name", "name", "title", "id")
# Bookkeeping fields nobody asks about (who submitted a record, ids, raw metadata, long code).
SKIP_FIELDS = ("user_name", "meta_data", "metadata", "id", "record_id", "example_code", "code")


def parse_questions(text: str, n: int) -> list[str]:
    """Questions from a teacher reply: one per line, numbering stripped, deduplicated."""
    out: list[str] = []
    for line in text.splitlines():
        q = _LEADER.sub("", line).strip().strip('"').strip()
        if len(q) < 8 or q.lower() in (x.lower() for x in out):
            continue
        out.append(q)
    return out[:n]


class LLMTeacher:
    def __init__(
        self,
        lm: LM,
        *,
        few_shot: bool = False,
        max_tokens_questions: int = 256,
        max_tokens_answer: int = 512,
        temperature: float = 0.0,
        scaffold: bool = False,
    ) -> None:
        self.lm = lm
        self.few_shot = few_shot
        self.scaffold = scaffold  # prefilled answer shape (local models only: needs prefill)
        self.mtq, self.mta, self.temperature = max_tokens_questions, max_tokens_answer, temperature

    def questions(self, chunk: str, n: int, kind: str = "general") -> list[str]:
        return [q for q, _ in self.questions_with_focus(chunk, n, kind)]

    def questions_with_focus(
        self, chunk: str, n: int, kind: str = "general"
    ) -> list[tuple[str, str | None]]:
        """(question, focus) pairs: the sentence a scaffolded question was asked about (pass it
        back to `answers`, which quotes it), None otherwise. Returned, not kept: the teacher is
        shared by worker threads, and two chunks may yield the same question."""
        if self.scaffold and kind != "api call":
            return self._scaffolded_questions(chunk, n)
        system = (P.QUESTIONS_API if kind == "api call" else P.QUESTIONS_GENERAL).format(n=n)
        msgs = [{"role": "system", "content": system}]
        if self.few_shot and kind != "api call":
            msgs += P.FEW_SHOT_QUESTIONS
        msgs.append({"role": "user", "content": f"Passage: {chunk}\nWrite {n} questions."})
        out = self.lm.generate([msgs], max_tokens=self.mtq, temperature=self.temperature)[0]
        return [(q, None) for q in parse_questions(out.text, n)]

    def answers(
        self,
        items: list[tuple[str, str, str | None]],
        kind: str = "general",
        attempt: int = 0,
        focus: list[str | None] | None = None,
    ) -> list[str]:
        """Chain-of-thought answers for (question, oracle, gold answer or None), one batch call.

        `focus`: per item, the sentence its scaffolded question was asked about (the quote).
        """
        tmpl = P.ANSWER_API if kind == "api call" else P.ANSWER_GENERAL
        batch = []
        for q, ctx, gold in items:
            hint = P.GOLD_HINT.format(answer=gold) if gold else ""
            msgs = list(P.FEW_SHOT_ANSWER) if self.few_shot and kind != "api call" else []
            msgs.append(
                {"role": "user", "content": tmpl.format(question=q, context=ctx, gold_hint=hint)}
            )
            batch.append(msgs)
        # A second attempt samples a little, so a deterministic teacher can say something else.
        temp = self.temperature if attempt == 0 else max(self.temperature, 0.7)
        if self.scaffold:
            return self._scaffolded(items, temp, attempt, focus or [None] * len(items))
        outs = self.lm.generate(batch, max_tokens=self.mta, temperature=temp, seed=attempt or None)
        return [o.text.strip() for o in outs]

    # -- scaffolded mode, for small local teachers -----------------------------------------
    # A 135M model cannot follow the full RAFT instructions, but it can do each small step when
    # the text around it is prefilled: write one question about one sentence, then finish
    # "<ANSWER>:" after a quote. ragtune picks the sentence (so the quote is verbatim by
    # construction); the model writes the question and the answer.
    def _focus_sentences(self, chunk: str, n: int) -> list[str]:
        sents = [chunk[s:e] for s, e in sentence_spans(chunk)]
        good = [
            x for x in sents if 40 <= len(x) <= 300 and not x.lstrip().startswith(("#", "-", "*"))
        ]
        good = good or sents
        if len(good) <= n:
            return good
        step = len(good) / n
        return [good[int(i * step)] for i in range(n)]

    def _scaffolded_questions(self, chunk: str, n: int) -> list[tuple[str, str]]:
        focus = self._focus_sentences(chunk, n)
        batch = [
            [
                {
                    "role": "user",
                    "content": f"Write one question that this sentence answers.\nSentence: {f}",
                },
                {"role": "assistant", "content": "Question:"},
            ]
            for f in focus
        ]
        outs = self.lm.generate(batch, max_tokens=40, temperature=self.temperature, stop=["\n"])
        out: list[tuple[str, str]] = []
        for f, o in zip(focus, outs, strict=True):
            raw = o.text.strip().split("?")[0].strip()
            if len(raw) < 8:
                continue
            # the same cleaning as unscaffolded replies; a repeated question keeps its first focus
            for q in parse_questions(raw + "?", 1):
                if q.lower() not in (x.lower() for x, _ in out):
                    out.append((q, f))
        return out[:n]

    def _scaffolded(
        self, items: list, temp: float, attempt: int, focus: list[str | None]
    ) -> list[str]:
        # The small model answers a plain question best: a short prompt, the quote prefilled.
        batch = [
            [{"role": "user", "content": f"{ctx}\n\nQuestion: {q}\nAnswer in a few words."}]
            for q, ctx, _ in items
        ]
        mids = []
        for (q, ctx, gold), f in zip(items, focus, strict=True):
            quote = f or best_quote(q, gold, [ctx])
            mids.append(f"The context states {P.BEGIN_QUOTE}{quote}{P.END_QUOTE}.\n{P.ANSWER_TAG}")
        outs = self.lm.generate(
            [m + [{"role": "assistant", "content": x}] for m, x in zip(batch, mids, strict=True)],
            max_tokens=48,
            stop=["\n"],
            temperature=temp,
            seed=attempt or None,
        )
        return [f"{x} {o.text.strip()}" for x, o in zip(mids, outs, strict=True)]


def record_fields(text: str) -> list[tuple[str, str]]:
    """(field, value) pairs of a record rendered as `key: value` lines (continuations joined)."""
    fields: list[tuple[str, str]] = []
    for line in text.splitlines():
        m = _FIELD_LINE.match(line)
        if m:
            fields.append((m.group(1), m.group(2).strip()))
        elif fields and line.strip():
            k, v = fields[-1]
            fields[-1] = (k, v + "\n" + line)
    return fields


class RecordTeacher:
    """Deterministic questions and answers from the fields of a structured record."""

    def qa(self, chunk: str, n: int) -> list[tuple[str, str, str]]:
        """(question, answer, cot) triples; raises DataError if `chunk` is not a record."""
        fields = [(k, v) for k, v in record_fields(chunk) if v and v not in ("N/A", "None", "{}")]
        if len(fields) < 2:
            raise DataError(
                "the offline record teacher needs structured records rendered as 'key: value' "
                "lines (JSON/JSONL API docs); for prose pass --teacher MODEL"
            )
        d = dict(fields)
        title_key = next((k for k in TITLE_FIELDS if k in d), fields[0][0])
        title = d[title_key]
        desc = d.get("description") or d.get("functionality") or ""
        out: list[tuple[str, str, str]] = []
        if "api_call" in d and desc:
            # Ask for the call without naming the API (as the paper's API questions do).
            first = re.split(r"(?<=[.!?])\s", desc)[0]
            task = first.replace(title, "it").rstrip(".")
            task = re.sub(r"^(use it to|it|this)\s+", "", task, flags=re.I)
            q = f"Which API call should I use to {task[0].lower() + task[1:]}?"
            field_ = "description" if "description" in d else "functionality"
            cot = (
                f"The request matches {P.BEGIN_QUOTE}{first}{P.END_QUOTE} in the documentation "
                f"of {field_}, which gives the call {P.BEGIN_QUOTE}api_call: {d['api_call']}"
                f"{P.END_QUOTE}.\n{P.ANSWER_TAG} {d['api_call']}"
            )
            out.append((q, d["api_call"], cot))
        for k, v in fields:
            if len(out) >= n:
                break
            if k in (title_key, "api_call", "description", "example_code") or len(v) > 300:
                continue
            name = k.replace("_", " ")
            q = (
                f"What is the {name} of {title}?"
                if k != "returns"
                else f"What does {title} return?"
            )
            cot = (
                f"The documentation of {title} states {P.BEGIN_QUOTE}{k}: {v}{P.END_QUOTE}, so "
                f"the {name} is {v}.\n{P.ANSWER_TAG} {v}"
            )
            out.append((q, v, cot))
        return out[:n]


def best_quote(question: str, answer: str | None, oracles: list[str]) -> str:
    """The oracle span to quote: the shortest sentence or line holding the answer, else the one
    sharing most words with the question (records are `key: value` lines, prose is sentences)."""
    na = normalise(answer or "")
    qwords = set(re.findall(r"\w+", question.lower()))
    best, best_key = "", (-1, -1)
    for doc in oracles:
        spans = list(sentence_spans(doc))
        pos = 0
        for line in doc.split("\n"):
            if line.strip():
                spans.append((pos, pos + len(line)))
            pos += len(line) + 1
        for s, e in spans or [(0, len(doc))]:
            sent = doc[s:e].strip()
            if not sent:
                continue
            has = bool(na) and na in normalise(sent)
            overlap = len(qwords & set(re.findall(r"\w+", sent.lower())))
            key = (1, -len(sent)) if has else (0, overlap)
            if key > best_key:
                best, best_key = sent, key
    return best


def template_cot(question: str, answer: str, oracles: list[str]) -> str:
    """A chain of thought quoting the oracle span that holds the answer (no LLM)."""
    quote = best_quote(question, answer, oracles)
    return (
        f"The relevant document says {P.BEGIN_QUOTE}{quote}{P.END_QUOTE}. "
        f"From this, the answer is {answer}.\n{P.ANSWER_TAG} {answer}"
    )
