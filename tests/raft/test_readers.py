import json
from pathlib import Path

import pytest

from ragtune.errors import ConfigError, DataError
from ragtune.raft.readers import (
    READERS,
    read_generic,
    read_gorilla,
    read_hotpotqa,
    read_pubmedqa,
    read_qa,
    render_api_record,
)
from ragtune.raft.types import QAItem
from ragtune.raft.verify import check, final_answer

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
HOTPOT = SHARED_DATA / "raft" / "hotpotqa" / "dev_300.jsonl"
HF_EVAL = SHARED_DATA / "raft" / "gorilla_huggingface" / "huggingface_eval.json"
HF_API = SHARED_DATA / "raft" / "gorilla_huggingface" / "huggingface_api.jsonl"


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj, indent=2))
    return path


# --------------------------------------------------------------------------- HotpotQA (IRCoT)


def ircot(qid="q1", question="Who founded X?", answer="Ann", contexts=None):
    if contexts is None:
        contexts = [
            {
                "id": "0",
                "title": "X",
                "paragraph_text": "X was founded by Ann.",
                "is_supporting": True,
            },
            {"id": "1", "title": "Y", "paragraph_text": "Y is a town.", "is_supporting": False},
            {
                "id": "2",
                "title": "Ann",
                "paragraph_text": "Ann is a person.",
                "is_supporting": True,
            },
            {"id": "3", "title": "Z", "paragraph_text": "Z is a river.", "is_supporting": False},
        ]
    return {
        "question_id": qid,
        "question_text": question,
        "answers_objects": [{"number": "", "spans": [answer]}],
        "contexts": contexts,
    }


def test_hotpotqa_ircot(tmp_path):
    path = write_jsonl(tmp_path / "dev.jsonl", [ircot(), "", ircot(qid="q2", answer="Bo")])
    items, pool = read_hotpotqa(path)
    assert pool == []
    assert len(items) == 2
    a = items[0]
    assert isinstance(a, QAItem)
    assert a.question == "Who founded X?"
    assert a.answer == "Ann"
    assert a.oracle == ["X\nX was founded by Ann.", "Ann\nAnn is a person."]
    assert a.distractors == ["Y\nY is a town.", "Z\nZ is a river."]
    assert a.group == "q1" and a.type == "general" and a.meta == {}
    assert items[1].answer == "Bo" and items[1].id != a.id
    # ids are stable: same input, same ids, independent of where the file lies
    other = write_jsonl(tmp_path / "copy.jsonl", [ircot()])
    assert read_hotpotqa(other)[0][0].id == a.id


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda r: r.pop("question_text"), "'question_text'"),
        (lambda r: r.pop("contexts"), "'contexts'"),
        (lambda r: r.update(answers_objects=[{"spans": []}]), "answers_objects[0].spans"),
        (lambda r: [c.update(is_supporting=False) for c in r["contexts"]], "is_supporting"),
        (lambda r: r["contexts"][1].pop("paragraph_text"), "contexts[1]"),
    ],
)
def test_hotpotqa_ircot_errors(tmp_path, mutate, needle):
    bad = ircot(qid="bad")
    mutate(bad)
    path = write_jsonl(tmp_path / "dev.jsonl", [ircot(), bad])
    with pytest.raises(DataError) as e:
        read_hotpotqa(path)
    msg = str(e.value)
    assert e.value.line == 2 and f"{path}:2:" in msg
    assert needle in msg and "expected HotpotQA" in msg


def test_hotpotqa_malformed_json_line(tmp_path):
    path = write_jsonl(tmp_path / "dev.jsonl", [ircot(), "{not json"])
    with pytest.raises(DataError, match=r"dev\.jsonl:2: malformed JSON") as e:
        read_hotpotqa(path)
    assert e.value.line == 2


def test_hotpotqa_missing_and_empty_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_hotpotqa(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="empty file"):
        read_hotpotqa(tmp_path / "empty.jsonl")


# --------------------------------------------------------------------------- HotpotQA (original)


def original(qid="5a1"):
    return {
        "_id": qid,
        "question": "Which magazine was started first?",
        "answer": "Arthur's Magazine",
        "type": "comparison",
        "supporting_facts": [
            ["Arthur's Magazine", 0],
            ["First for Women", 0],
            ["First for Women", 9],
        ],
        "context": [
            ["Radio City", ["Radio City is a radio station.", " It is in India."]],
            ["Arthur's Magazine", ["Arthur's Magazine was started in 1844.", " It was American."]],
            ["First for Women", ["First for Women was started in 1989."]],
        ],
    }


def test_hotpotqa_original(tmp_path):
    path = write_json(tmp_path / "hotpot_dev_distractor_v1.json", [original(), original("5a2")])
    items, pool = read_hotpotqa(path)
    assert pool == [] and len(items) == 2
    a = items[0]
    assert a.answer == "Arthur's Magazine" and a.group == "5a1"
    assert a.oracle == [
        "Arthur's Magazine\nArthur's Magazine was started in 1844. It was American.",
        "First for Women\nFirst for Women was started in 1989.",
    ]
    assert a.distractors == ["Radio City\nRadio City is a radio station. It is in India."]
    # the out-of-range sentence index (9) is dropped, the others are kept
    assert a.meta["supporting_sentences"] == [
        "Arthur's Magazine was started in 1844.",
        "First for Women was started in 1989.",
    ]
    assert all(s in "\n".join(a.oracle) for s in a.meta["supporting_sentences"])


def test_hotpotqa_original_errors(tmp_path):
    bad = original("bad")
    del bad["supporting_facts"]
    path = write_json(tmp_path / "h.json", [original(), bad])
    with pytest.raises(DataError) as e:
        read_hotpotqa(path)
    assert "record 1 has no field 'supporting_facts'" in str(e.value)
    assert e.value.line is None and str(path) in str(e.value)

    bad = original("bad")
    bad["supporting_facts"] = [["Nowhere", 0]]
    with pytest.raises(DataError, match="record 0 has no context paragraph named"):
        read_hotpotqa(write_json(tmp_path / "h2.json", [bad]))

    with pytest.raises(DataError, match="neither IRCoT nor original"):
        read_hotpotqa(write_jsonl(tmp_path / "h3.jsonl", [{"q": "?"}]))


# --------------------------------------------------------------------------- PubMedQA


def pubmed_record(q, decision, contexts):
    return {
        "QUESTION": q,
        "CONTEXTS": contexts,
        "LABELS": ["BACKGROUND", "RESULTS"][: len(contexts)],
        "MESHES": ["Humans"],
        "YEAR": "2011",
        "reasoning_required_pred": "yes",
        "reasoning_free_pred": "yes",
        "final_decision": decision,
        "LONG_ANSWER": f"Long answer to {q}",
    }


def pubmed_file(tmp_path):
    return write_json(
        tmp_path / "ori_pqal.json",
        {
            "21645374": pubmed_record("Do mitochondria matter?", "yes", ["Ctx A1.", "Ctx A2."]),
            "16418930": pubmed_record("Is aspirin useful?", "no", ["Ctx B1."]),
            "9488747": pubmed_record("Does X help?", "maybe", ["Ctx C1.", "Ctx C2."]),
        },
    )


def test_pubmedqa(tmp_path):
    items, pool = read_pubmedqa(pubmed_file(tmp_path))
    assert [it.group for it in items] == ["21645374", "16418930", "9488747"]
    assert [it.answer for it in items] == ["yes", "no", "maybe"]
    a = items[0]
    assert a.question == "Do mitochondria matter?"
    assert a.oracle == ["Ctx A1.\nCtx A2."]
    assert a.meta["long_answer"] == "Long answer to Do mitochondria matter?"
    assert a.distractors is None and a.type == "general"
    assert pool == [it.oracle[0] for it in items]
    assert len({it.id for it in items}) == 3


def test_pubmedqa_errors(tmp_path):
    data = json.loads(pubmed_file(tmp_path).read_text())
    del data["16418930"]["CONTEXTS"]
    path = write_json(tmp_path / "bad.json", data)
    with pytest.raises(DataError) as e:
        read_pubmedqa(path)
    msg = str(e.value)
    assert "record 1 (pmid 16418930) has no field 'CONTEXTS'" in msg
    assert "expected PubMedQA" in msg and str(path) in msg

    with pytest.raises(DataError, match="JSON holds a list"):
        read_pubmedqa(write_json(tmp_path / "list.json", [1]))
    (tmp_path / "broken.json").write_text('{"1": {')
    with pytest.raises(DataError, match="malformed JSON"):
        read_pubmedqa(tmp_path / "broken.json")


# --------------------------------------------------------------------------- Gorilla


def api_record(name, call):
    return {
        "domain": "Natural Language Processing Fill-Mask",
        "framework": "Hugging Face Transformers",
        "functionality": "Fill-Mask",
        "api_name": name,
        "api_call": call,
        "api_arguments": {"text": "str"},
        "python_environment_requirements": ["transformers"],
        "example_code": None,
        "performance": {"dataset": "wiki", "accuracy": 0.9},
        "description": "A masked language model. Über-fast.",
    }


def eval_record(name, call, instruction="Fill in the blank in my sentence."):
    code = (
        f"###Instruction: {instruction}\n"
        "###Output: <<<domain>>>: Natural Language Processing Fill-Mask\n"
        f"<<<api_call>>>: {call}\n"
        "<<<api_provider>>>: Hugging Face Transformers\n"
        "<<<explanation>>>:1. Import the pipeline.\n2. Load the model.\n"
        "<<<code>>>: from transformers import pipeline\nunmasker = " + call + "\n"
    )
    return {
        "code": code,
        "api_call": call,
        "provider": "Hugging Face Transformers",
        "api_data": api_record(name, call),
    }


CALL_A = "pipeline('fill-mask', model='bert-base-uncased')"
CALL_B = "AutoModel.from_pretrained('roberta-base')"


def test_render_api_record():
    text = render_api_record(api_record("bert-base-uncased", CALL_A))
    lines = text.split("\n")
    assert lines[0] == "domain: Natural Language Processing Fill-Mask"
    assert lines[3] == "api_name: bert-base-uncased"
    assert lines[4] == f"api_call: {CALL_A}"
    assert lines[5] == 'api_arguments: {"text": "str"}'
    assert lines[6] == 'python_environment_requirements: ["transformers"]'
    assert lines[7] == "example_code: null"
    assert lines[9] == "description: A masked language model. Über-fast."
    assert len(lines) == 10


def test_render_api_record_compact():
    rec = api_record("bert-base-uncased", CALL_A)
    rec["description"] = "word " * 40
    text = render_api_record(rec, ["api_call", "description", "no_such_field"], max_chars=30)
    call, desc = text.split("\n")
    assert call == f"api_call: {CALL_A}"  # longer than 30 characters, never cut
    assert desc == "description: word word word word word word..."


def test_gorilla_compact_rendering(tmp_path):
    ev = write_jsonl(tmp_path / "hf_eval.json", [eval_record("bert-base-uncased", CALL_A)])
    write_jsonl(tmp_path / "hf_api.jsonl", [api_record("gpt2", "x()")])
    items, pool = read_gorilla(ev, api_fields=["api_name", "api_call"], field_chars=40)
    assert items[0].oracle == [f"api_name: bert-base-uncased\napi_call: {CALL_A}"]
    assert pool == ["api_name: gpt2\napi_call: x()"]


def test_gorilla_task_cot(tmp_path):
    ev = write_jsonl(tmp_path / "hf_eval.json", [eval_record("bert-base-uncased", CALL_A)])
    fields = ["domain", "api_name", "api_call", "description"]
    (it,), _ = read_gorilla(ev, api_fields=fields, cot="task")
    dom = "Natural Language Processing Fill-Mask"
    assert it.cot == (
        f"The request is a {dom} task. The document for that task says ##begin_quote##"
        f"domain: {dom}\napi_name: bert-base-uncased\napi_call: {CALL_A}##end_quote##.\n"
        f"<ANSWER>: {CALL_A}"
    )
    assert check(it.cot, it.oracle) is None and final_answer(it.cot) == CALL_A
    # the call before the domain: two quotes, each a line of the record
    (it,), _ = read_gorilla(ev, api_fields=["api_call", "domain"], cot="task")
    assert it.cot.count("##begin_quote##") == 2 and check(it.cot, it.oracle) is None
    assert read_gorilla(ev, api_fields=fields)[0][0].cot is None  # "call": the template's job
    with pytest.raises(ConfigError, match="add both to --api-fields"):
        read_gorilla(ev, api_fields=["api_name", "api_call"], cot="task")
    with pytest.raises(ConfigError, match="unknown Gorilla CoT"):
        read_gorilla(ev, cot="domain")


def test_gorilla(tmp_path):
    ev = write_jsonl(
        tmp_path / "hf_eval.json",
        [
            eval_record("bert-base-uncased", CALL_A),
            eval_record("roberta-base", CALL_B, "Embed my sentences."),
            eval_record("bert-base-uncased", CALL_A, "Complete this text."),
        ],
    )
    write_jsonl(
        tmp_path / "hf_api.jsonl",
        [
            api_record(n, c)
            for n, c in [("bert-base-uncased", CALL_A), ("roberta-base", CALL_B), ("gpt2", "x()")]
        ],
    )
    items, pool = read_gorilla(ev)  # finds hf_api.jsonl next to it
    assert len(items) == 3 and len(pool) == 3
    a = items[0]
    assert a.question == "Fill in the blank in my sentence."
    assert a.answer == CALL_A and a.type == "api call"
    assert a.oracle == [render_api_record(api_record("bert-base-uncased", CALL_A))]
    assert a.oracle[0] in pool
    assert a.group == "bert-base-uncased" == items[2].group != items[1].group
    assert a.meta["explanation"] == "1. Import the pipeline.\n2. Load the model."
    assert a.meta["code"] == f"from transformers import pipeline\nunmasker = {CALL_A}"
    assert a.meta["domain"] == "Natural Language Processing Fill-Mask"
    assert len({it.id for it in items}) == 3

    # without an api file the pool is the distinct oracles
    (tmp_path / "hf_api.jsonl").unlink()
    items, pool = read_gorilla(ev)
    assert len(pool) == 2 and set(pool) == {it.oracle[0] for it in items}
    # an explicit api file wins
    other = write_jsonl(tmp_path / "other.jsonl", [api_record("gpt2", "x()")])
    assert read_gorilla(ev, api_path=other)[1] == [render_api_record(api_record("gpt2", "x()"))]
    assert read_qa("gorilla", ev, api_path=other)[1] == read_gorilla(ev, other)[1]


def test_gorilla_irregular_code(tmp_path):
    rec = eval_record("bert-base-uncased", CALL_A)
    rec["code"] = "### Instruction: Translate this.\n###Input: Hallo\n###Output: Hello"
    no_output = eval_record("roberta-base", CALL_B)
    no_output["code"] = "###Instruction: Group my articles by topic."
    items, _ = read_gorilla(write_jsonl(tmp_path / "x_eval.json", [rec, no_output]))
    assert items[0].question == "Translate this.\n###Input: Hallo"
    assert items[0].meta["explanation"] == "" and items[0].meta["code"] == ""
    assert items[1].question == "Group my articles by topic."
    assert items[1].answer == CALL_B


def dict_code(instruction, call, domain="Classification"):
    """A ``code`` field in the Python-dict-like shape of APIBench's Torch Hub training file
    (written here by hand: the real Torch Hub / TF Hub data stay out of development)."""
    out = {
        "domain": domain,
        "api_call": call,
        "api_provider": "PyTorch",
        "explanation": "Load the pretrained model from the hub.",
        "code": f"import torch\nmodel = {call}",
    }
    return str({"Instruction": instruction, "Output": out})


HUB_CALL = "torch.hub.load('pytorch/vision', 'resnet18', pretrained=True)"


def test_gorilla_dict_like_code_gives_the_instruction_only(tmp_path):
    """torchhub_train.json's ``code`` is a dict-like string, not ``###Instruction: ...``; the
    question must be the instruction alone, never the whole string with the gold call in it."""
    rec = eval_record("resnet18", HUB_CALL)
    rec["code"] = dict_code("I need to classify the animals in my photos.", HUB_CALL)
    # an apostrophe inside a single-quoted value: not a Python literal, the fallback reads it
    broken = eval_record("resnet50", CALL_B)
    broken["code"] = (
        "{'Instruction': 'Sort my cat's pictures by breed.', 'Output': {'domain': "
        f"'Classification', 'api_call': '{CALL_B}', 'explanation': 'Load it.'}}}}"
    )
    items, _ = read_gorilla(write_jsonl(tmp_path / "torchhub_train.json", [rec, broken]))
    assert items[0].question == "I need to classify the animals in my photos."
    assert items[0].meta["domain"] == "Classification"
    assert items[0].meta["explanation"] == "Load the pretrained model from the hub."
    assert items[0].meta["code"] == f"import torch\nmodel = {HUB_CALL}"
    assert items[1].question == "Sort my cat's pictures by breed."
    assert all(HUB_CALL not in it.question and CALL_B not in it.question for it in items)


@pytest.mark.parametrize(
    "code",
    [
        dict_code(f"Classify my photos with {HUB_CALL}.", HUB_CALL),
        f"###Instruction: Use {HUB_CALL} on my photos.\n###Output: <<<api_call>>>: {HUB_CALL}",
        # an Output section the parser cannot find: the whole string would be the question
        f"Instruction: classify my photos. Output: api_call: {HUB_CALL}",
    ],
)
def test_gorilla_question_that_holds_its_gold_call_is_refused(tmp_path, code):
    bad = eval_record("resnet18", HUB_CALL)
    bad["code"] = code
    path = write_jsonl(tmp_path / "torchhub_train.json", [eval_record("y", CALL_A), bad])
    with pytest.raises(DataError) as e:
        read_gorilla(path)
    assert e.value.line == 2 and "torchhub_train.json" in str(e.value)
    assert "contains its own gold answer" in str(e.value)


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda r: r.pop("api_call"), "has no field 'api_call'"),
        (lambda r: r.pop("api_data"), "has no field 'api_data'"),
        (lambda r: r["api_data"].pop("api_name"), "'api_data' has no 'api_name'"),
        (lambda r: r.update(code="###Instruction:   \n###Output: x"), "no instruction text"),
        (lambda r: r.update(api_data="oops"), "field 'api_data' is a JSON str"),
    ],
)
def test_gorilla_errors(tmp_path, mutate, needle):
    bad = eval_record("x", CALL_B)
    mutate(bad)
    path = write_jsonl(tmp_path / "g_eval.json", [eval_record("y", CALL_A), bad])
    with pytest.raises(DataError) as e:
        read_gorilla(path)
    assert e.value.line == 2 and needle in str(e.value)
    assert "expected Gorilla APIBench" in str(e.value)


def test_gorilla_bad_api_file(tmp_path):
    ev = write_jsonl(tmp_path / "g_eval.json", [eval_record("y", CALL_A)])
    write_jsonl(tmp_path / "g_api.jsonl", [api_record("y", CALL_A), "[1, 2]"])
    with pytest.raises(DataError, match=r"g_api\.jsonl:2: record is a JSON list, not an object"):
        read_gorilla(ev)


# --------------------------------------------------------------------------- generic


def test_generic_with_corpus(tmp_path):
    corpus = write_jsonl(
        tmp_path / "corpus.jsonl",
        [
            {"id": "d1", "text": "Doc one."},
            {"id": "d2", "text": "Doc two."},
            {"id": 3, "text": "Doc 3."},
        ],
    )
    qa = write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {
                "question": "Q1?",
                "answer": "A1",
                "oracle_ids": ["d2", "d1"],
                "cot": "Because. <ANSWER>: A1",
            },
            {"question": "Q2?", "answer": 42, "oracle_ids": [3]},
        ],
    )
    items, pool = read_generic(qa, corpus=corpus)
    assert pool == ["Doc one.", "Doc two.", "Doc 3."]
    assert items[0].oracle == ["Doc two.", "Doc one."] and items[0].group == "d2"
    assert items[0].cot == "Because. <ANSWER>: A1" and items[0].answer == "A1"
    assert items[1].oracle == ["Doc 3."] and items[1].group == "3" and items[1].answer == "42"
    assert items[1].cot is None
    assert read_qa("generic", qa, corpus=corpus)[0][0].id == items[0].id


def test_generic_inline_oracle(tmp_path):
    qa = write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {"question": "Q1?", "answer": "A1", "oracle": "Text one."},
            {"question": "Q2?", "answer": "A2", "oracle": ["Text one.", "Text two."]},
        ],
    )
    items, pool = read_generic(qa)
    assert items[0].oracle == ["Text one."]
    assert items[0].group == items[1].group  # same first oracle, same group
    assert pool == ["Text one.", "Text two."]


def test_generic_errors(tmp_path):
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"id": "d1", "text": "Doc one."}])
    qa = write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {"question": "Q1?", "answer": "A1", "oracle_ids": ["d1"]},
            {"question": "Q2?", "answer": "A2", "oracle_ids": ["d9"]},
        ],
    )
    with pytest.raises(DataError) as e:
        read_generic(qa, corpus=corpus)
    assert e.value.line == 2 and "'d9'" in str(e.value) and "not in the corpus" in str(e.value)

    with pytest.raises(DataError, match="no corpus was given"):
        read_generic(qa)

    nothing = write_jsonl(tmp_path / "n.jsonl", [{"question": "Q?", "answer": "A"}])
    with pytest.raises(
        DataError, match=r"n\.jsonl:1: record has neither 'oracle_ids' nor 'oracle'"
    ):
        read_generic(nothing)

    noq = write_jsonl(tmp_path / "q.jsonl", [{"answer": "A", "oracle": "T"}])
    with pytest.raises(DataError, match="has no field 'question'.*expected generic QA"):
        read_generic(noq)

    dup = write_jsonl(
        tmp_path / "dup.jsonl", [{"id": "d1", "text": "a"}, {"id": "d1", "text": "b"}]
    )
    with pytest.raises(DataError, match=r"dup\.jsonl:2: record repeats id 'd1'"):
        read_generic(qa, corpus=dup)

    notext = write_jsonl(tmp_path / "nt.jsonl", [{"id": "d1", "body": "a"}])
    with pytest.raises(DataError, match=r"nt\.jsonl:1: record has no field 'text'.*\{id, text\}"):
        read_generic(qa, corpus=notext)


# --------------------------------------------------------------------------- dispatch


def test_read_qa_dispatch(tmp_path):
    assert set(READERS) == {"hotpotqa", "pubmedqa", "gorilla", "generic"}
    items, _ = read_qa("pubmedqa", pubmed_file(tmp_path))
    assert len(items) == 3
    with pytest.raises(
        ConfigError, match="unknown QA format 'squad'.*generic, gorilla, hotpotqa, pubmedqa"
    ):
        read_qa("squad", tmp_path / "x.json")


# --------------------------------------------------------------------------- shared real data


@pytest.mark.skipif(not HOTPOT.exists(), reason="shared HotpotQA data absent")
def test_shared_hotpotqa_dev_300():
    items, pool = read_hotpotqa(HOTPOT)
    assert len(items) == 300 and pool == []
    assert all(len(it.oracle) == 2 for it in items)
    assert all(it.answer for it in items)
    # 296 questions have the 10 paragraphs of the distractor setting; a few have fewer
    assert sum(len(it.distractors) == 8 for it in items) >= 290
    assert all(0 <= len(it.distractors) <= 8 for it in items)
    assert len({it.id for it in items}) == len({it.group for it in items}) == 300
    first = items[0]
    assert first.answer == "Chief of Protocol"
    assert any(o.startswith("Shirley Temple\n") for o in first.oracle)


@pytest.mark.skipif(not (HF_EVAL.exists() and HF_API.exists()), reason="shared Gorilla data absent")
def test_shared_gorilla_huggingface():
    items, pool = read_gorilla(HF_EVAL)
    assert len(items) == 911 and len(pool) == 936
    names = {json.loads(line)["api_data"]["api_name"] for line in HF_EVAL.open() if line.strip()}
    assert {it.group for it in items} == names
    assert all(it.answer and it.answer in it.oracle[0] for it in items)
    assert all(it.question and "###" not in it.question.split("\n")[0] for it in items)
    assert len({it.id for it in items}) == 911
    # most gold API records are in the pool verbatim
    assert sum(it.oracle[0] in set(pool) for it in items) > 800
    with_code = [it for it in items if it.meta["code"]]
    assert len(with_code) > 850
