"""Teacher prompts (after the RAFT paper / reference), in ragtune's own words.

Two families: general text and API documentation (questions that don't name the API; answers
that give the call). `FEW_SHOT_*` add a worked example for small local teachers, which otherwise
rarely follow the quoting format.
"""

from __future__ import annotations

BEGIN_QUOTE, END_QUOTE, ANSWER_TAG = "##begin_quote##", "##end_quote##", "<ANSWER>:"

QUESTIONS_GENERAL = (
    "You write synthetic question-answer data. Given a passage, write {n} questions that a user "
    "could ask and that the passage answers. Each question must be answerable in a few words from "
    "the passage alone. For example, for a passage about the United States, a question could be "
    "'How many states are in the United States?'. Reply with the questions only, one per line."
)
QUESTIONS_API = (
    "You write synthetic instructions for an API. Given the documentation of one API, write {n} "
    "realistic requests a developer could make that this API fulfils. Do not name the API or its "
    "function in the request. Reply with the requests only, one per line."
)

ANSWER_GENERAL = (
    "Question: {question}\nContext: {context}\n\n"
    "Answer the question using the context above.\n"
    "- First reason step by step about how to answer it.\n"
    "- When you copy sentences from the context, put them between "
    + BEGIN_QUOTE
    + " and "
    + END_QUOTE
    + "; text outside those markers is your own words.\n"
    "- End with the final answer as '" + ANSWER_TAG + " <answer>', short and exact."
    "{gold_hint}"
)
ANSWER_API = (
    "Request: {question}\nAPI documentation: {context}\n\n"
    "Write the API call that fulfils the request.\n"
    "- First reason step by step, quoting the documentation lines you rely on between "
    + BEGIN_QUOTE
    + " and "
    + END_QUOTE
    + ".\n"
    "- End with '" + ANSWER_TAG + " <the call>'."
    "{gold_hint}"
)
GOLD_HINT = "\n- The correct final answer is: {answer}. Explain how the context supports it."

FEW_SHOT_QUESTIONS = [
    {
        "role": "user",
        "content": "Passage: The Nile is about 6,650 km long and flows into the "
        "Mediterranean Sea.\nWrite 2 questions.",
    },
    {"role": "assistant", "content": "How long is the Nile?\nWhere does the Nile flow into?"},
]
FEW_SHOT_ANSWER = [
    {
        "role": "user",
        "content": ANSWER_GENERAL.format(
            question="How long is the Nile?",
            context="The Nile is about 6,650 km long and flows into the Mediterranean Sea.",
            gold_hint="",
        ),
    },
    {
        "role": "assistant",
        "content": "The context states the length: "
        + BEGIN_QUOTE
        + "The Nile is about 6,650 km long"
        + END_QUOTE
        + ". So the Nile is about 6,650 km long.\n"
        + ANSWER_TAG
        + " about 6,650 km",
    },
]

REFUSAL = (
    "None of the documents contains the information needed to answer this question, so I "
    "cannot answer it from them.\n" + ANSWER_TAG + " I don't know"
)
