"""The webhooks' address fast path finds exactly what email.utils finds, on any value."""

from __future__ import annotations

from email.utils import getaddresses, parseaddr

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.webhooks import address, addresses

PROPERTY = settings(max_examples=400, derandomize=True, deadline=None)

# Values made of the characters that matter to address syntax, plus ordinary ones.
_CHARS = st.sampled_from(list('ab.Z9_+-@<>(),;:"\\[] \t') + ["é", "x@y.org", "Name <p@q.org>"])
VALUES = st.lists(_CHARS, max_size=14).map("".join)


def test_plain_and_named_addresses() -> None:
    assert addresses(["evidence@example.org"]) == ["evidence@example.org"]
    assert addresses([" Evidence <evidence@example.org>, b@c.org"]) == ["evidence@example.org", "b@c.org"]
    assert address("Witness <w@example.org>") == "w@example.org"
    assert address(" w@example.org ") == "w@example.org"
    assert address("") == ""


@PROPERTY
@given(VALUES)
def test_address_is_parseaddrs(value: str) -> None:
    assert address(value) == parseaddr(value)[1]


@PROPERTY
@given(st.lists(VALUES, min_size=1, max_size=3))
def test_addresses_are_getaddresses(values: list[str]) -> None:
    assert addresses(values) == [a for _, a in getaddresses(values)]
