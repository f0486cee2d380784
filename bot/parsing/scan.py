"""Cheap candidate positions for the parser's big patterns, so each runs in linear, small time.

Python's `re` tries every alternative of a pattern at every position of the text; with
IGNORECASE, a look-behind first or sixty alternatives, a 5 KB message costs milliseconds per
pattern. The patterns here keep their meaning exactly: a pattern is only *tried* (`match`) at
the positions where it can start (a superset found by one fast scan), in order, each try after
the end of the previous match, which is what `finditer` does. Nothing is found that `finditer`
would not find, nothing it finds is missed, as long as the candidate positions are a superset of
where a match can start.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator


def _upper_class() -> str:
    ranges: list[list[int]] = []
    for c in range(0x10000):
        if chr(c).isupper():
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1][1] = c
            else:
                ranges.append([c, c])
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


# Every character of the Basic Multilingual Plane that str.isupper() calls upper case; a text
# with characters beyond it falls back to an exact scan (see upper_positions).
_UPPER = re.compile(f"[{_upper_class()}]")
_ASTRAL = re.compile(r"[\U00010000-\U0010ffff]")


_last_upper: tuple[str, list[int]] = ("", [])


def upper_positions(text: str) -> list[int]:
    """Where `text` has an upper-case character (str.isupper), in order. The last answer is
    kept: the public bodies, the gazetteer and the suppliers all ask about the same prose.
    Callers must not change the list."""
    global _last_upper
    if text == _last_upper[0]:
        return _last_upper[1]
    if _ASTRAL.search(text) is None:
        found = [m.start() for m in _UPPER.finditer(text)]
    else:
        found = [i for i, ch in enumerate(text) if ch.isupper()]
    _last_upper = (text, found)
    return found


def finditer_at(pattern: re.Pattern[str], text: str, positions: Iterable[int]) -> Iterator[re.Match[str]]:
    """`pattern.finditer(text)`, trying only at `positions` (ascending; a superset of the places
    a match can start)."""
    end = 0
    for p in positions:
        if p < end:
            continue
        m = pattern.match(text, p)
        if m is not None:
            yield m
            end = m.end() if m.end() > p else p + 1


class Anchored:
    """A case-insensitive pattern together with a cheap scan for where a match can start.

    `starts` is written in lower case and run, without IGNORECASE, over `text.lower()` (a much
    faster scan); a text whose lower-case form is not as long as itself (a few special letters)
    is searched the plain way."""

    def __init__(self, pattern: re.Pattern[str], starts: str) -> None:
        self.pattern = pattern
        self.starts = re.compile(starts)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        low = text.lower()
        if len(low) != len(text):
            yield from self.pattern.finditer(text)
            return
        yield from finditer_at(self.pattern, text, (m.start() for m in self.starts.finditer(low)))

    def search(self, text: str) -> re.Match[str] | None:
        return next(self.finditer(text), None)


def word_starts(alternatives: Iterable[str]) -> str:
    """A fast scan for word starts: `\\b` and one of `alternatives` (lower-case regexes, each
    starting with a plain letter and consuming only letters; put what must follow in a
    look-ahead), grouped by first letter, which `re` tries far faster than one flat list."""
    groups: dict[str, list[str]] = defaultdict(list)
    for alt in alternatives:
        groups[alt[0]].append(alt[1:])
    return r"\b(?:" + "|".join(f"{re.escape(k)}(?:{'|'.join(v)})" for k, v in groups.items()) + ")"


_YEAR = re.compile(r"(?:19|20)\d\d")


def search_near_years(
    pattern: re.Pattern[str], text: str, *, before: int = 160, after: int = 160
) -> re.Match[str] | None:
    """`pattern.search(text)` for a pattern whose every match holds a year (19xx or 20xx) and
    reaches at most `before` characters ahead of it and `after` beyond it: searched only in the
    windows round the years, in order, so a text without years costs one fast scan."""
    lo = hi = -1
    for y in _YEAR.finditer(text):
        a, b = max(0, y.start() - before), y.end() + after
        if a > hi >= 0:
            m = pattern.search(text, lo, min(hi, len(text)))
            if m is not None:
                return m
            lo = a
        elif lo < 0:
            lo = a
        hi = max(hi, b)
    if lo < 0:
        return None
    return pattern.search(text, lo, min(hi, len(text)))
