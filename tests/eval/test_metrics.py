from ragtune.eval.metrics import (
    api_call_match,
    contains,
    exact_match,
    extract_answer,
    f1,
    label_accuracy,
    score,
)


def test_squad_normalisation_em_f1():
    assert exact_match("The Eiffel Tower!", "eiffel tower") == 1.0
    assert exact_match("Eiffel", "eiffel tower") == 0.0
    assert f1("the eiffel tower in paris", "Eiffel Tower") == 2 * (2 / 4) * 1 / (2 / 4 + 1)
    assert f1("", "") == 1.0 and f1("x", "") == 0.0
    assert contains("It is the Eiffel Tower, in Paris.", "eiffel tower") == 1.0


def test_extract_answer_and_labels():
    assert extract_answer("because ##begin_quote##x##end_quote##\n<ANSWER>: 42\nextra") == "42"
    assert extract_answer("  plain answer ") == "plain answer"
    assert label_accuracy("Maybe, it depends.", "maybe") == 1.0
    assert label_accuracy("No.", "yes") == 0.0
    assert score("<ANSWER>: yes", "yes")["accuracy"] == 1.0


def test_api_call_match():
    gold = "glimmer.open_vault('data', mode='ro')"
    assert api_call_match('glimmer.open_vault("data", mode="ro")', gold) == {
        "string": 1.0,
        "ast": 1.0,
    }
    assert api_call_match("glimmer.open_vault('data', mode='ro', shards=8)", gold)["ast"] == 1.0
    assert api_call_match("glimmer.open_vault('data', mode='rw')", gold)["ast"] == 0.0
    assert api_call_match("glimmer.open_vault('data')", gold)["ast"] == 0.0
    assert api_call_match("glimmer.close_vault('data', mode='ro')", gold)["ast"] == 0.0
    assert api_call_match("Use `glimmer.open_vault('data', mode='ro')` here", gold)["ast"] == 1.0
    assert api_call_match("not code at all", gold) == {"string": 0.0, "ast": 0.0}
    s = score("x\n<ANSWER>: glimmer.open_vault('data', mode='ro')", gold, "api call")
    assert s["call_ast"] == 1.0 and s["em"] == 1.0


def test_call_metrics_only_for_call_golds():
    s = score("<ANSWER>: VaultReport", "VaultReport", "api call")
    assert "call_ast" not in s and s["correct"] == 1.0
    s = score("<ANSWER>: f.g(1)", "f.g(1)", "api call")
    assert s["call_ast"] == 1.0 == s["correct"]


def test_refusals_and_precision_of_the_answers_given():
    from ragtune.eval.metrics import is_refusal, refusal_stats
    from ragtune.raft.prompts import REFUSAL

    assert (
        is_refusal(REFUSAL) and is_refusal("I do not know.") and is_refusal("<ANSWER>: i dont know")
    )
    assert not is_refusal("<ANSWER>: f(a)") and not is_refusal("I know: f(a)")
    preds = [REFUSAL, "<ANSWER>: f(a)", "<ANSWER>: g(a)", "<ANSWER>: f(a, x=1)"]
    assert refusal_stats(preds, ["f(a)"] * 4, ["api call"] * 4) == {
        "n": 4,
        "refused": 1,
        "refusal_rate": 25.0,
        "answered_precision": 66.67,
    }
    assert refusal_stats([REFUSAL], ["x"], ["general"])["answered_precision"] is None
