"""Scrubbing personal details out of evidence text before it leaves the service.

Pure string functions, no database and no settings, so they can be tested on their own and reused
by every export. Two jobs:

- `scrub_contacts` removes personal contact details from any text: e-mail addresses, UK telephone
  numbers in the forms people actually type, UK postcodes and "12 High Street"-style street lines.
  Each becomes `[contact details removed]`; an address spread over street, town and postcode on
  one line becomes one marker rather than three.
- `scrub_names` removes an anonymous contributor's name (and the local part of their e-mail
  address) wherever it appears in their own text: signatures, "I, Ann Example, ...", possessives;
  `scrub_filename` does the same for attachment names, where names are written "Ann_Example".

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
# It starts only where a word starts: from every position inside a long run of word characters (a
# PDF's text without spaces, a base64 blob) the scan went to the run's end, quadratic in its length,
# and one 200,000-character attachment held up an export for a quarter of an hour.
_EMAIL_SPELLED = re.compile(
    r"(?<![\w.+-])[\w.+-]+\s*[\[(]\s*at\s*[\])]\s*[\w-]+(?:\s*[\[(]\s*dot\s*[\])]\s*[\w-]+)+", re.IGNORECASE
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


def _natural_order(name: str) -> str:
    """A name as the text writes it: Outlook shows a colleague as "Hidden, Robert"."""
    if name.count(",") != 1:
        return name
    last, first = name.split(",")
    return " ".join(f"{first} {last}".split())


_HANDLE_SEPARATOR = re.compile(r"[._+\d]")


def handle_words(handle: str) -> list[str]:
    """The words of a name written as an address's local part or a handle: "bob.hidden77" and
    "Bob_Hidden" give ["bob", "hidden"] and ["Bob", "Hidden"]; initials and honorifics are left out."""
    return [w for w in re.findall(r"[^\W\d_]+", handle) if len(w) >= 2 and w.lower() not in _HONORIFICS]


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

    def add(words: list[str]) -> None:
        if not words or (not parts and len(words) < 2):
            return  # a one-word name, matched anywhere in any case, would take ordinary words with it
        literal.add(r"\s+".join(re.escape(w) for w in words))
        if len(words) >= 2:
            literal.add(re.escape(words[-1]) + r",\s*" + r"\s+".join(re.escape(w) for w in words[:-1]))
        for w in words if parts else ():
            for piece in {w, *w.split("-")}:
                if len(piece) >= 2:
                    exact.add(piece[0].upper() + piece[1:])
                    exact.add(piece.upper())

    for raw in names:
        name = " ".join(strip_bidi(raw or "").replace('"', " ").split())
        if not name or "@" in name:
            continue
        name = _natural_order(name)
        words = [w.strip(".,") for w in name.split()]
        add([w for w in words if len(w) >= 2 and w.lower() not in _HONORIFICS and w[0].isalpha()])
        if len(words) == 1 and _HANDLE_SEPARATOR.search(name):
            # A Slack handle ("bob.hidden") is written as a name in the text: "Bob Hidden".
            literal.add(re.escape(name))
            add(handle_words(name))
    for e in emails:
        local = (e or "").split("@", 1)[0].strip()
        if len(local) >= 3:
            literal.add(re.escape(local))
            # An address with no display name still names its owner: bob.hidden@ signs "Bob Hidden".
            # Only a local part of two or more words: a lone word ("payroll") is already matched whole.
            if len(pieces := handle_words(local)) >= 2:
                add(pieces)
    # One alternation each, longest first, so the leftmost mention is taken whole: applied one after
    # another, "Hidden, Bob" took the middle of "Bob Hidden, BOB HIDDEN, bob hidden" first and left
    # the last "hidden" behind, in lower case, where no part pattern finds it.
    pats = []
    if literal:
        alts = "|".join(sorted(literal, key=len, reverse=True))
        pats.append(re.compile(rf"(?<!\w)(?:{alts})(?!\w)", re.IGNORECASE))
    if exact:
        alts = "|".join(re.escape(p) for p in sorted(exact, key=len, reverse=True))
        pats.append(re.compile(rf"(?<!\w)(?:{alts})(?!\w)"))
    return pats


def scrub_names(text: str, patterns: Iterable[re.Pattern[str]]) -> str:
    """`text` with every match of `patterns` (from `name_patterns`) replaced by `[name removed]`."""
    if not text:
        return text
    for p in patterns:
        text = p.sub(NAME, text)
    return re.sub(rf"{re.escape(NAME)}(?:\s+{re.escape(NAME)})+", NAME, text)


def name_words(names: Iterable[str | None], emails: Iterable[str | None] = ()) -> frozenset[str]:
    """The words of these people's names (and of their addresses' local parts), in lower case,
    for `scrub_filename`."""
    words: set[str] = set()
    for n in names:
        if n and "@" not in n:
            words.update(handle_words(n))
    for e in emails:
        words.update(handle_words((e or "").split("@", 1)[0]))
    return frozenset(w.casefold() for w in words)


def full_names(names: Iterable[str | None]) -> frozenset[tuple[str, ...]]:
    """Names of two words or more as lower-case word sequences, for `scrub_filename`."""
    out = {tuple(w.casefold() for w in words) for n in names
           if n and "@" not in n and len(words := handle_words(_natural_order(n))) >= 2}
    return frozenset(out)


_LETTERS = re.compile(r"[^\W\d_]+")
_FILENAME_GAP = re.compile(r"[\s_.+-]*")


def _name_tokens(text: str) -> list[tuple[int, int]]:
    """Where the words of a file name are: runs of letters, split where CamelCase starts a word."""
    spans = []
    for m in _LETTERS.finditer(text):
        start = m.start()
        for i in range(m.start() + 1, m.end()):
            if text[i].isupper() and text[i - 1].islower():
                spans.append((start, i))
                start = i
        spans.append((start, m.end()))
    return spans


def scrub_filename(filename: str | None, patterns: Iterable[re.Pattern[str]] = (),
                   words: frozenset[str] = frozenset(),
                   sequences: Iterable[tuple[str, ...]] = ()) -> str | None:
    """An attachment's name with contact details and names out, as `scrub` does for text, and
    also names written the way file names are: "Bob_Hidden_statement.pdf", "bob-hidden.docx",
    "BobHidden.pdf". `words` (from `name_words`) go wherever they are a word of the name, in any
    case; `sequences` (from `full_names`) only as the whole name."""
    out = scrub(filename, patterns)
    if not out or not (words or sequences):
        return out
    spans = _name_tokens(out)
    folded = [out[a:b].casefold() for a, b in spans]
    hit = [f in words for f in folded]
    for seq in sequences:
        n = len(seq)
        for i in range(len(spans) - n + 1):
            if tuple(folded[i:i + n]) == seq and all(
                    _FILENAME_GAP.fullmatch(out, spans[j][1], spans[j + 1][0]) for j in range(i, i + n - 1)):
                hit[i:i + n] = [True] * n
    pieces, pos = [], 0
    for (a, b), h in zip(spans, hit, strict=True):
        if h:
            pieces += [out[pos:a], NAME]
            pos = b
    pieces.append(out[pos:])
    return re.sub(rf"{re.escape(NAME)}(?:[\s_.+-]*{re.escape(NAME)})+", NAME, "".join(pieces))


def word_set(texts: Iterable[str | None]) -> frozenset[str]:
    """Every word of `texts` in lower case, CamelCase runs also split ("BobHidden": bob, hidden,
    bobhidden): a name can be mentioned in them only if each of its words is here."""
    out: set[str] = set()
    for text in texts:
        if not text:
            continue
        text = strip_bidi(text)
        out.update(m.group(0).casefold() for m in _LETTERS.finditer(text))
        out.update(text[a:b].casefold() for a, b in _name_tokens(text))
    return frozenset(out)


# The explicit direction controls (embeddings, overrides, isolates): invisible, and a U+202E in a
# name turns the rest of its line round, so "Ann\u202e (EV-000001)" reads "Ann )100000-VE(" and a
# crafted one can make a heading or file name say something else. Text in any script reads the
# same without them; the marks LRM and RLM, which reorder nothing around them, stay.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def strip_bidi(text: str) -> str:
    """`text` without direction embeddings, overrides and isolates."""
    return _BIDI_CONTROLS.sub("", text) if text else text


def scrub(text: str | None, patterns: Iterable[re.Pattern[str]] = ()) -> str | None:
    """Direction controls out, contact details out, then names: contacts first so an address like
    ann.example@x.org goes whole instead of leaving its domain behind once the name part is gone."""
    if text is None:
        return None
    return scrub_names(scrub_contacts(strip_bidi(text)), patterns)
