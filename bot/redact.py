"""Scrubbing personal details out of evidence text before it leaves the service.

Pure string functions, no database and no settings, so they can be tested on their own and reused
by every export. Two jobs:

- `scrub_contacts` removes personal contact details from any text: e-mail addresses, UK telephone
  numbers in the forms people actually type, UK postcodes and "12 High Street"-style street lines.
  Each becomes `[contact details removed]`; an address spread over street, town and postcode on
  one line becomes one marker rather than three.
- `scrub_names` removes an anonymous contributor's name (and the local part of their e-mail
  address) wherever it appears in their own text: signatures, "I, Ann Example, ...", possessives.

Both err on the side of removing too much: a published pack that names someone who asked not to be
named cannot be recalled, while an over-eager marker costs a reader a few words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CONTACT = "[contact details removed]"
NAME = "[name removed]"

_EMAIL = re.compile(
    r"(?:mailto:)?(?<![\w.+-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
# "ann [at] example [dot] org" and "ann (at) example (dot) org": the usual attempts to dodge harvesters.
_EMAIL_SPELLED = re.compile(
    r"[\w.+-]+\s*[\[(]\s*at\s*[\])]\s*[\w-]+(?:\s*[\[(]\s*dot\s*[\])]\s*[\w-]+)+", re.IGNORECASE
)

# UK telephone numbers: national (020 7946 0000, 0161 496 0000, 07700 900123, 07700900123,
# (0161) 496 0000) and international (+44 7700 900123, +44 (0)20 7946 0000, 0044 ...). The three
# digit groups are bounded so a match can never run on into a following year or amount; the digit
# count is then checked (a UK number is 10 or 11 digits with its leading 0).
_PHONE = re.compile(
    r"(?<![\w£$€.,/+])"
    r"(?:(?:\+|00)\s?44\s?(?:\(0\)\s?)?|\(0|0)"
    r"\d{2,4}\)?[\s-]?\d{3,4}[\s-]?\d{3,4}"
    r"(?![\w])"
)

# Postcodes as written on envelopes (upper case; a space or none between the halves). Lower case is
# not accepted because prose such as "Y2K 1st" would then look like one.
_POSTCODE_TEXT = r"(?:GIR ?0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2})"
_POSTCODE = re.compile(rf"\b{_POSTCODE_TEXT}\b")

_STREET_TYPES = (
    "Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Close|Drive|Dr|Way|Place|Pl|Crescent|Cres|Terrace|Gardens|Gdns|"
    "Court|Ct|Square|Sq|Grove|Hill|Row|Walk|Mews|Parade|Rise|View|Green|Yard|Wharf|Quay|Embankment|Broadway"
)
# "12 High Street", "Flat 3, 45 Church Road", "221B Baker Street, London NW1 6XE". The house number is
# not a year (so "In 2019 Kent Road Services ..." is left alone); the street name is one to three
# capitalised words; a town and county may follow after commas, then optionally the postcode.
_STREET = re.compile(
    r"(?:\b(?:Flat|Apartment|Apt|Unit|Suite)\s+\d+[A-Za-z]?,?\s+)?"
    r"\b(?!(?:19|20)\d\d\b)\d{1,4}[A-Za-z]?(?:-\d{1,4})?,?\s+"
    r"(?:[A-Z][A-Za-z'’.-]*\s+){1,3}"
    rf"(?:{_STREET_TYPES})\b\.?"
    r"(?:,\s*[A-Z][a-z'’-]+(?:\s+[A-Z][a-z'’-]+){0,2}){0,3}"
    rf"(?:,?\s+{_POSTCODE_TEXT}\b)?"
)

_RUN = re.compile(rf"{re.escape(CONTACT)}(?:[ \t,;]*{re.escape(CONTACT)})+")


def _phone(m: re.Match[str]) -> str:
    """A phone-shaped match is a phone number only with 10 or 11 digits in national form."""
    s = m.group(0)
    digits = re.sub(r"\D", "", s)
    if s.startswith(("+", "00")):
        # Drop the country code; "+44 (0)20 ..." writes the trunk 0 that "+44 20 ..." leaves out.
        digits = digits[2:] if s.startswith("+") else digits[4:]
        digits = digits if digits.startswith("0") else "0" + digits
    ok = digits.startswith("0") and not digits.startswith("00") and len(digits) in (10, 11)
    return CONTACT if ok else s


def scrub_contacts(text: str) -> str:
    """`text` with e-mail addresses, UK phone numbers, postcodes and street lines replaced."""
    if not text:
        return text
    out = _EMAIL.sub(CONTACT, text)
    out = _EMAIL_SPELLED.sub(CONTACT, out)
    out = _PHONE.sub(_phone, out)
    out = _STREET.sub(CONTACT, out)
    out = _POSTCODE.sub(CONTACT, out)
    return _RUN.sub(CONTACT, out)


_HONORIFICS = frozenset({
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "lord", "lady", "cllr", "councillor",
    "rev", "revd", "the", "hon", "mp",
})


def name_patterns(
    names: Iterable[str | None], emails: Iterable[str | None] = (), *, parts: bool = True
) -> list[re.Pattern[str]]:
    """The patterns that find these people in text, longest first.

    The full name matches in any case and with any spacing; "Example, Ann" too. With `parts`, each
    part of a name (two letters or more, not an honorific) matches as a whole word when capitalised
    as a name or in capitals, so "Ann" is removed but "annual" and the verb "will" (of "Will
    Jones") are not. The local part of an e-mail address ("ann.example") matches in any case.
    """
    literal: set[str] = set()
    exact: set[str] = set()
    for raw in names:
        name = " ".join((raw or "").replace('"', " ").split())
        if not name or "@" in name:
            continue
        words = [w.strip(".,") for w in name.split()]
        words = [w for w in words if len(w) >= 2 and w.lower() not in _HONORIFICS and w[0].isalpha()]
        if not words or (not parts and len(words) < 2):
            continue  # a one-word name, matched anywhere in any case, would take ordinary words with it
        literal.add(r"\s+".join(re.escape(w) for w in words))
        if len(words) >= 2:
            literal.add(re.escape(words[-1]) + r",\s*" + r"\s+".join(re.escape(w) for w in words[:-1]))
        for w in words if parts else ():
            for piece in {w, *w.split("-")}:
                if len(piece) >= 2:
                    exact.add(piece[0].upper() + piece[1:])
                    exact.add(piece.upper())
    for e in emails:
        local = (e or "").split("@", 1)[0].strip()
        if len(local) >= 3:
            literal.add(re.escape(local))
    pats = [re.compile(rf"(?<!\w){p}(?!\w)", re.IGNORECASE) for p in sorted(literal, key=len, reverse=True)]
    pats += [re.compile(rf"(?<!\w){re.escape(p)}(?!\w)") for p in sorted(exact, key=len, reverse=True)]
    return pats


def scrub_names(text: str, patterns: Iterable[re.Pattern[str]]) -> str:
    """`text` with every match of `patterns` (from `name_patterns`) replaced by `[name removed]`."""
    if not text:
        return text
    for p in patterns:
        text = p.sub(NAME, text)
    return re.sub(rf"{re.escape(NAME)}(?:\s+{re.escape(NAME)})+", NAME, text)


def scrub(text: str | None, patterns: Iterable[re.Pattern[str]] = ()) -> str | None:
    """Contact details out, then names: contacts first so an address like ann.example@x.org goes
    whole instead of leaving its domain behind once the name part is gone."""
    if text is None:
        return None
    return scrub_names(scrub_contacts(text), patterns)
