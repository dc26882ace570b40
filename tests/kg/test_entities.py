"""Question entity linking: bracketed names first, else longest token-boundary matches."""

from ragtune.kg import KG, question_entities
from ragtune.kg.entities import matcher, tokens

KG_ = KG.build(
    [
        ("Sharon Tate", "starred_in", "Valley of the Dolls"),
        ("Valley of the Dolls", "release_year", "1967"),
        ("frederica_of_mecklenburg-strelitz", "spouse", "ernest_augustus_i_of_hanover"),
        ("ernest_augustus_i_of_hanover", "nationality", "united_kingdom"),
        ("The", "is_a", "word"),  # a stop-word name is never matched in free text
        ("Heat", "directed_by", "Michael Mann"),
        ("Michael", "is_a", "name"),
        ("heat", "is_a", "word"),
    ]
)


def test_tokens():
    assert tokens("frederica_of_mecklenburg-strelitz 's") == [
        "frederica", "of", "mecklenburg", "-", "strelitz", "'", "s",
    ]  # fmt: skip


def test_bracketed_names_win():
    q = "what movies did [sharon tate] star in with [Nobody Known]"
    assert question_entities(KG_, q) == ["Sharon Tate"]
    assert question_entities(KG_, "who starred in [ sharon_tate ] films") == ["Sharon Tate"]
    # an unknown bracketed name links nothing: not a part of it, not a name elsewhere
    assert question_entities(KG_, "who acted with [Sharon Tate Smith] in heat") == []
    assert question_entities(KG_, "who acted with [Tania Raymonde] in heat") == []


def test_longest_match_with_underscores_and_case():
    q = "which nationality is frederica_of_mecklenburg-strelitz 's couple ?"
    assert question_entities(KG_, q) == ["frederica_of_mecklenburg-strelitz"]
    q = "Which nationality is Frederica of Mecklenburg-Strelitz's couple?"
    assert question_entities(KG_, q) == ["frederica_of_mecklenburg-strelitz"]
    q = "was valley of the dolls (1967) directed by michael mann?"
    assert question_entities(KG_, q) == ["Valley of the Dolls", "1967", "Michael Mann"]


def test_token_boundaries_and_stop_words():
    assert question_entities(KG_, "the heather is theatrical") == []
    # "Heat" and "heat" tokenise alike: the one written as in the question is chosen
    assert question_entities(KG_, "who directed Heat") == ["Heat"]
    assert question_entities(KG_, "is heat hot") == ["heat"]
    assert question_entities(KG_, "") == []


def test_matcher_cached_on_kg():
    kg = KG.build([("a b", "r", "c")])
    assert kg._matcher is None
    m = matcher(kg)
    assert matcher(kg) is m and question_entities(kg, "x a b c") == ["a b", "c"]
