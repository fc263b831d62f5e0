"""The query syntax (core.query): what parses into what, and errors that point at the problem."""

from __future__ import annotations

import pytest

from core.errors import NarrawatchError, QuerySyntaxError
from core.query import And, FieldFilter, Not, Or, Phrase, Term, parse_query


def test_words_are_an_implicit_and_folded_like_the_index() -> None:
    q = parse_query("NATO Ёлка")
    assert q.text == And((Term("nato"), Term("елка")))
    assert q.positive_text == "NATO Ёлка"  # as typed: embedders are case-sensitive
    assert q.positive_words() == ("nato", "елка")


def test_phrases_or_not_minus_and_groups() -> None:
    q = parse_query('"ядерного оружия" nato OR otan -учения NOT (a OR b)')
    assert q.text == And(
        (
            Phrase(("ядерного", "оружия")),
            Or((Term("nato"), Term("otan"))),
            Not(Term("учения")),
            Not(Or((Term("a"), Term("b")))),
        )
    )
    assert q.negative_words() == ("учения", "a", "b")
    assert "учения" not in q.positive_words()


def test_or_binds_tighter_than_and_like_web_search() -> None:
    assert parse_query("nato OR otan russia").text == And((Or((Term("nato"), Term("otan"))), Term("russia")))
    assert parse_query("a AND b | c").text == And((Term("a"), Or((Term("b"), Term("c")))))
    assert parse_query("(a b) OR c").text == Or((And((Term("a"), Term("b"))), Term("c")))


def test_a_hyphenated_or_dotted_token_is_a_phrase_and_lowercase_or_is_a_word() -> None:
    assert parse_query("пресс-секретарь").text == Phrase(("пресс", "секретарь"))
    assert parse_query("war or peace").text == And((Term("war"), Term("or"), Term("peace")))


def test_field_filters_are_collected_apart_from_the_text() -> None:
    q = parse_query("нато lang:ru language:uk -source:tg-x kind:telegram,feed actor:state_media country:RU tag:x")
    assert q.text == Term("нато")
    assert q.values("lang") == ("ru", "uk")
    assert q.values("source", negated=True) == ("tg-x",)
    assert q.values("kind") == ("telegram", "feed")
    assert q.values("actor") == ("state_media",) and q.values("country") == ("RU",) and q.values("tag") == ("x",)
    assert parse_query("(lang:ru OR lang:uk) nato").values("lang") == ("ru", "uk")
    assert parse_query('outlet:"t.me/rian_ru" x').values("outlet") == ("t.me/rian_ru",)


def test_a_query_of_filters_only_has_no_text() -> None:
    q = parse_query("source:tg-a lang:ru")
    assert q.text is None and q.positive_text == "" and len(q.filters) == 2
    assert q.filters[0] == FieldFilter("source", ("tg-a",))


def test_urls_and_times_are_text_not_fields() -> None:
    assert parse_query("https://t.me/x").text == Phrase(("https", "t", "me", "x"))
    assert parse_query("10:30").text == Phrase(("10", "30"))


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ('"ядерного оружия', "unclosed quote", 0),
        ("(a OR b", "unclosed '('", 0),
        ("a)", "no matching '('", 1),
        ("OR a", "OR needs something before it", 0),
        ("a OR", "OR needs something after it", 2),
        ("a AND", "AND needs something after it", 2),
        ("-a", "not excluded", 0),
        ("a OR -b", "cannot be an alternative of OR", 5),
        ("sorce:x a", "unknown field 'sorce'", 0),
        ("a lang:", "needs a value", 2),
        ("(a lang:ru)", "top level", 3),
        ("lang:ru OR a", "OR cannot join a field filter and text", 8),
        ('""', "empty phrase", 0),
        ("", "nothing to search for", 0),
    ],
)
def test_errors_say_what_and_where(query: str, message: str, position: int) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(query)
    err = info.value
    assert message in str(err) and err.position == position
    assert isinstance(err, NarrawatchError)  # one exception tree: HTTP 400, CLI exit 2
    # the message ends with the query and a caret under the position
    assert str(err).endswith(f"{query}\n{' ' * position}^")


def test_str_round_trips_to_the_same_ast() -> None:
    for source in ('"a b" (c OR d) -e lang:ru', "x NOT (y OR z)", "a OR b OR c"):
        q = parse_query(source)
        assert parse_query(str(q)).text == q.text and parse_query(str(q)).filters == q.filters
