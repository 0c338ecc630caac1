"""If-None-Match read as RFC 9110 §13.1.2 says (ingress/conditional.py), alone; the route's use of
it is in tests/test_evidence_download.py."""
from __future__ import annotations

import pytest

from ingress.conditional import ANY, none_match, parse

SHA = "6c4b4052534e0743299f1c5c89fa7b85772b3eb8a4f5dcd91f7efbfa410e6fa4"


def test_the_field_is_star_or_a_list_of_entity_tags() -> None:
    assert parse("*") == ANY and parse(" *\t") == ANY
    assert parse(f'"{SHA}"') == (SHA,)
    assert parse(f'W/"{SHA}"') == (SHA,)
    assert parse('"a", W/"b",   "c"') == ("a", "b", "c")
    assert parse('"a,b", "c"') == ("a,b", "c")           # a comma inside a tag is part of it
    assert parse(' , "a" ,, "b" ,') == ("a", "b")        # empty list elements are allowed
    assert parse('""') == ("",) and parse("") == () and parse(" , ") == ()
    assert parse('"caf\xe9"') == ("caf\xe9",)           # obs-text, as Starlette decodes it (latin-1)


@pytest.mark.parametrize("bad", [SHA, f'"{SHA}', f'{SHA}"', "W/*", '*, "a"', '"a" "b"', 'w/"a"', 'W/ "a"',
                                 '"a"b', '"a b"', '"a\\"b"', "**"])
def test_a_malformed_field_is_refused_with_its_place(bad: str) -> None:
    with pytest.raises(ValueError, match="If-None-Match"):
        parse(bad)


def test_weak_comparison_against_the_current_tag() -> None:
    assert none_match([], SHA)                                   # no condition: answer in full
    for field in ([f'"{SHA}"'], [f'W/"{SHA}"'], ["*"], ['"x", "' + SHA + '"'], ['"x"', f'"{SHA}"']):
        assert not none_match(field, SHA), field
    for field in (['"x"'], [f'"{SHA.upper()}"'], [f'"{SHA[:-1]}"'], ['""'], [""]):
        assert none_match(field, SHA), field
    with pytest.raises(ValueError):
        none_match(['"x"', SHA], SHA)                             # one bad field line spoils the field
