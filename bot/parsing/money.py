"""Finds sums of money in British English text and turns them into whole pounds.

Accepted forms (case-insensitive units):

* currency first: ``£45m``, ``£45M``, ``£ 45 mn``, ``£3.25 million``, ``£1bn``, ``£1.2 billion``,
  ``£2tn``, ``£2 trillion``, ``£750k``, ``£4,200,000``, ``GBP 2m``, ``GBP2,000,000``;
* currency last: ``7.5 million pounds``, ``2m GBP``, ``300,000 sterling``;
* ranges: ``£2.5m-£3m``, ``£2.5–3m``, ``£2m to £3m`` count as ONE amount whose value is the first
  (lower) figure, because an understated figure is safer in evidence than an inflated one; a unit
  given only on the second figure (``£2.5-3m``) applies to both;
* only in lenient mode (a template field value, where we already know the text is money):
  ``45 million``, ``45m``, ``750k`` without a currency sign, or a field holding nothing but a number
  (``4,200,000``).

* in words, with a currency word after: ``thirty million pounds``, ``half a million pounds``,
  ``two and a half million pounds``, ``a billion pounds``, ``twenty-five thousand pounds``; and a
  figure with the currency sign and a worded unit, ``£3.25 million``, ``£2 billion``.

A figure followed by a scale word this module does not read (``£9.3 quintillion``) is no amount,
rather than the wrong one (£9). Periodic qualifiers are ignored: ``£12,000 a year`` is 12000. Pence
are rounded to the nearest pound.
Every amount is a non-negative whole number of pounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# Comma-grouped numbers first so "4,200,000" is not read as "4".
_NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
# The negative lookahead stops "£45 more" or "£5 bus" being read as a unit.
_UNIT = r"(?i:trillion|tn|billion|bn|b|million|mn|mil|m|thousand|k)(?![A-Za-z])"
# A scale word after a figure that is none of those: "£9.3 quintillion" must not read as £9.
_OTHER_SCALE = re.compile(r"\s?[A-Za-z]*illions?(?![A-Za-z])", re.IGNORECASE)
_CUR_BEFORE = r"(?:£|(?<![A-Za-z])(?i:gbp|ukp)\s?£?)"
_CUR_AFTER = r"(?i:pounds?(?:\s+sterling)?|sterling|gbp|quid)(?![A-Za-z])"
_RANGE = rf"(?:\s*(?:-|–|—|to)\s*(?P<c2>{_CUR_BEFORE}\s?)?(?P<n2>{_NUM})(?:\s?(?P<u2>{_UNIT}))?)"

_PREFIXED = re.compile(
    rf"{_CUR_BEFORE}\s?(?P<n1>{_NUM})(?:\s?(?P<u1>{_UNIT}))?{_RANGE}?(?:\s+{_CUR_AFTER})?"
)
_SUFFIXED = re.compile(
    rf"(?<![\w.,£])(?P<n1>{_NUM})(?:\s?(?P<u1>{_UNIT}))?{_RANGE}?\s?{_CUR_AFTER}"
)
# Lenient only: a bare figure with a unit ("45 million", "45m"), which in prose is too often a
# head-count or a population to be read as money.
_BARE = re.compile(rf"(?<![\w.,£])(?P<n1>{_NUM})\s?(?P<u1>{_UNIT}){_RANGE}?")
_DIGIT = re.compile(r"\d")
_ONLY_NUMBER = re.compile(rf"^\s*(?P<n1>{_NUM})\s*$")

_SMALL = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}  # fmt: skip
_WORD_NUM = "|".join(sorted([*_SMALL, *_TENS, "hundred", "a", "and", "half", "quarter", "of"], key=len, reverse=True))
# Words for a number, then a worded unit, then a currency word: "two and a half million pounds".
# The number part is at most eight words, so the pattern cannot run on.
_WORDED = re.compile(
    rf"(?<![\w£])(?!(?:and|of)\b)(?P<words>(?:(?:{_WORD_NUM})(?:[\s-]+|(?=\s)))"
    rf"{{1,8}}?)(?P<unit>trillion|billion|million|thousand)\s+{_CUR_AFTER}",
    re.IGNORECASE,
)

_MULTIPLIERS = {
    "tn": 1_000_000_000_000,
    "trillion": 1_000_000_000_000,
    "b": 1_000_000_000,
    "bn": 1_000_000_000,
    "billion": 1_000_000_000,
    "m": 1_000_000,
    "mn": 1_000_000,
    "mil": 1_000_000,
    "million": 1_000_000,
    "k": 1_000,
    "thousand": 1_000,
}
# Above £1,000 trillion a figure is a typo or a reference number, never a public contract.
_IMPLAUSIBLE = Decimal(10) ** 15


@dataclass(frozen=True)
class MoneyMatch:
    """One amount found in a text: where it is and how much it is in whole pounds."""

    start: int
    end: int
    value: int
    text: str


def _to_pounds(number: str, unit: str | None) -> int | None:
    digits = number.replace(",", "")
    if len(digits) > 20:
        return None  # a run of digits, not a sum anyone wrote as money
    try:
        amount = Decimal(digits)
        if unit:
            amount *= _MULTIPLIERS[unit.lower()]
        if amount > _IMPLAUSIBLE:
            return None
        return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation:
        return None


def _range_is_real(m: re.Match[str]) -> bool:
    """A trailing "-3m"/"to £3m" only belongs to the amount if it looks like money itself."""
    if m.group("n2") is None:
        return True
    return bool(m.group("u2") or m.group("c2"))


def _value(m: re.Match[str]) -> int | None:
    unit = m.group("u1")
    if unit is None and m.group("n2") is not None and m.group("u2"):
        # "£2.5-3m": the unit written once covers both ends of the range.
        unit = m.group("u2")
    return _to_pounds(m.group("n1"), unit)


def _matches(pattern: re.Pattern[str], text: str) -> list[MoneyMatch]:
    found: list[MoneyMatch] = []
    for m in pattern.finditer(text):
        if not m.group("u1") and _OTHER_SCALE.match(text, m.end("n1")):
            continue  # a scale this module does not read: no amount rather than a wrong one
        end = m.end()
        if m.group("n2") is not None and not _range_is_real(m):
            # Drop the bogus range tail ("£2m to 2019") but keep the first amount.
            end = m.end("u1") if m.group("u1") else m.end("n1")
            value = _to_pounds(m.group("n1"), m.group("u1"))
        else:
            value = _value(m)
        if value is not None:
            found.append(MoneyMatch(m.start(), end, value, text[m.start() : end]))
    return found


def _words_value(words: str) -> Decimal | None:
    """The number that `words` spell ("two and a half", "twenty-five", "half a", "a"), or None."""
    tokens = [t for t in re.split(r"[\s-]+", words.lower()) if t]
    total = Decimal(0)
    current = Decimal(0)
    seen_number = False
    for i, t in enumerate(tokens):
        if t in _SMALL or t in _TENS:
            current += _SMALL.get(t, 0) + _TENS.get(t, 0)
            seen_number = True
        elif t == "hundred":
            current = (current or Decimal(1)) * 100
            seen_number = True
        elif t in ("half", "quarter"):
            # "half a", "two and a half", "a quarter of a": a fraction of the unit that follows.
            total += current + (Decimal("0.5") if t == "half" else Decimal("0.25"))
            current = Decimal(0)
            seen_number = True
        elif t == "a" and not seen_number and i == len(tokens) - 1:
            current = Decimal(1)  # "a million pounds"
            seen_number = True
        elif t not in ("a", "and", "of"):
            return None
    value = total + current
    return value if seen_number and value > 0 else None


def _worded(text: str) -> list[MoneyMatch]:
    found: list[MoneyMatch] = []
    for m in _WORDED.finditer(text):
        number = _words_value(m.group("words"))
        if number is None:
            continue
        amount = number * _MULTIPLIERS[m.group("unit").lower()]
        found.append(MoneyMatch(m.start(), m.end(), int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP)),
                                m.group(0)))
    return found


def find_money(text: str, lenient: bool = False) -> list[MoneyMatch]:
    """Every amount in `text`, in order, without overlaps.

    Strict mode (the default, for prose) needs a currency sign or word; lenient mode (for template
    field values) also accepts a bare figure with a unit such as "45 million".
    """
    # Each pattern runs only if the text holds what every match of it needs (a currency sign or
    # word, a digit, a worded unit): most prose has no money at all, and these scans are cheap.
    low = text.lower()
    digit = _DIGIT.search(text) is not None
    currency_word = any(w in low for w in ("pound", "sterling", "gbp", "quid"))
    candidates: list[MoneyMatch] = []
    if "£" in text or "gbp" in low or "ukp" in low:
        candidates += _matches(_PREFIXED, text)
    if digit and currency_word:
        candidates += _matches(_SUFFIXED, text)
    if currency_word and ("illion" in low or "thousand" in low):
        candidates += _worded(text)
    if lenient and digit:
        candidates += _matches(_BARE, text)
    # Earliest first, longest first at the same place, then drop anything overlapping a kept match.
    candidates.sort(key=lambda c: (c.start, -(c.end - c.start)))
    kept: list[MoneyMatch] = []
    for c in candidates:
        if kept and c.start < kept[-1].end:
            continue
        kept.append(c)
    return kept


# A minus sign or dash before the first digit, the word "minus", or an accountant's "(£5m)"; a
# dash between two figures ("£5m-£10m") is a range, not a sign.
_NEGATIVE = re.compile(r"^[^\d]*(?:[-\u2212\u2012-\u2015\ufe63\uff0d]|\bminus\b|\bnegative\b)|^\s*\(.*\)\s*$",
                       re.IGNORECASE)


def is_negative(text: str) -> bool:
    """True if `text` writes its amount as negative ("-£5m", "−£5m", "£-5m", "minus £5m", "(£5m)").

    parse_money finds the figure in these and drops the sign (every amount here is non-negative),
    so a form that takes an amount must refuse them rather than store the loss as a gain.
    """
    return _NEGATIVE.search(text) is not None


def parse_money(text: str) -> int | None:
    """The first amount of money in `text` as whole pounds, or None.

    Lenient: meant for a value already known to be money (a template field), so "45 million" and a
    field holding only "4,200,000" count too.
    """
    found = find_money(text, lenient=True)
    if found:
        return found[0].value
    only = _ONLY_NUMBER.match(text)
    if only:
        return _to_pounds(only.group("n1"), None)
    return None
