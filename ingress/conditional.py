"""`If-None-Match` (RFC 9110 §13.1.2) for a GET or HEAD whose answer has a strong `ETag`: does
the caller already hold the current representation (answer 304 without the body)?

The field is `*` or a list of entity tags (`"opaque"` or weak `W/"opaque"`), possibly over several
field lines; list elements may be empty, and a comma may sit inside a tag, so the value is read tag
by tag, never split on commas. Comparison is weak (the `W/` is ignored, the opaque tags compare
character for character). A malformed field is refused (`ValueError`, the ingress answers 422)
rather than guessed at. Pure: no I/O, tested alone (tests/test_ingress_conditional.py)."""
from __future__ import annotations

import re

ANY = "*"

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE ; etagc = %x21 / %x23-7E / obs-text
_TAG = re.compile(r'(?:W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
_OWS = " \t"


def parse(value: str) -> str | tuple[str, ...]:
    """`ANY`, or the opaque tags the field lists (weak or strong alike), in order."""
    text = value.strip(_OWS)
    if text == ANY:
        return ANY
    tags: list[str] = []
    pos, end = 0, len(text)
    while pos < end:
        if text[pos] in _OWS or text[pos] == ",":  # separators and empty list elements
            pos += 1
            continue
        tag = _TAG.match(text, pos)
        if tag is None:
            raise ValueError("If-None-Match: expected `*` or entity tags (\"…\" or W/\"…\"), "
                             f"not {_near(text, pos)}")
        tags.append(tag.group(1))
        pos = tag.end()
        while pos < end and text[pos] in _OWS:
            pos += 1
        if pos < end and text[pos] != ",":
            raise ValueError(f"If-None-Match: entity tags are separated by commas, not {_near(text, pos)}")
    return tuple(tags)


def none_match(values: list[str], current: str) -> bool:
    """False when the field lines `values` name the current opaque tag `current` (or `*`: the
    representation exists), so the answer is 304; True otherwise, also without the field."""
    if not values:
        return True
    parsed = parse(", ".join(values))
    if parsed == ANY:
        return False
    return current not in parsed


def _near(text: str, pos: int) -> str:
    return repr(text[pos:pos + 20] + ("…" if len(text) > pos + 20 else ""))
