"""The records of the RAFT data builder.

A `QAItem` is a question with its oracle document(s), before distractors are added. Both
sources produce them: the corpus path (a teacher writes questions per chunk) and the from-QA
readers (HotpotQA, PubMedQA, Gorilla APIBench, generic jsonl). `RaftExample` is one training
example: the question, the documents in prompt order, the chain-of-thought answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class QAItem:
    id: str  # stable: same input, same id (used for checkpoints and dedup)
    question: str
    oracle: list[str]  # oracle document texts (HotpotQA has 2 supporting paragraphs)
    answer: str | None = None  # the gold final answer, when known
    cot: str | None = None  # a ready chain-of-thought answer, when the source has one
    distractors: list[str] | None = None  # item-specific distractor candidates (HotpotQA's own)
    group: str = ""  # split key: items of one group (a chunk, an API) stay in one split
    type: str = "general"  # "general" | "api call"
    meta: dict[str, Any] = field(default_factory=dict)
    # the sentence a scaffolded teacher asked this question about; its answer quotes it
    focus: str | None = None


@dataclass
class RaftExample:
    id: str
    type: str
    question: str
    documents: list[str]  # in prompt order, oracle(s) included when oracle_present
    oracle_present: bool
    oracle_index: int  # position of the (first) oracle in `documents`, -1 when absent
    oracle_indices: list[int]
    oracle: list[str]  # the oracle text(s), present in the prompt or not
    cot_answer: str  # the training target: reasoning with ##begin_quote## spans, then <ANSWER>:
    answer: str  # the final answer (what follows <ANSWER>:)
    instruction: str  # the prompt: <DOCUMENT>...</DOCUMENT> blocks, then the question
    group: str = ""
    split: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
