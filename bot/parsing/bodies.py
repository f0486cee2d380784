"""Recognises UK public bodies and outsourcing suppliers named in free prose.

Names are returned exactly as written (accents, apostrophes and casing kept). Matching is
case-sensitive on purpose: proper names are capitalised, and "the council" on its own names nobody.

Public bodies are found in three ways, and a full name always beats a set of initials:

* a run of capitalised words ending in a type word: "Kent County Council", "Leeds Teaching Hospitals
  NHS Trust", "Betsi Cadwaladr University Health Board", "West Midlands Police", "Hampshire and Isle
  of Wight Fire and Rescue Service", "Greater Manchester Combined Authority", "Kent and Medway ICB";
* a type word first: "London Borough of Barnet", "Royal Borough of Kensington and Chelsea",
  "Cyngor Sir Ynys Môn", "City and County of Swansea", "Department for Work and Pensions",
  "Ministry of Justice";
* fixed names ("Home Office", "NHS England", "HM Revenue and Customs"...) and initials (HMRC, DWP,
  MoJ, DVLA, HMPPS, TfL, GMCA...);
* the gazetteer (`bot.parsing.gazetteer`): about a thousand official names and their short forms
  ("Kent CC", "LB Barnet", "NHS Lothian"), which need no type word to be found; a short form
  comes back as the official name.

Leading sentence words ("The", "In", "Last", month names...) are trimmed off a capitalised run, and
a run with nothing left but the type word ("The Council said") is rejected.

Suppliers are a list of well-known outsourcing companies, plus capitalised names ending in a
company word (Ltd, plc, LLP, Group, Services, Solutions, Partnership...) and capitalised names
introduced by "outsourced to", "awarded to", "run by", "provided by", "contract with"... Anything
that overlaps a public body is not a supplier.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

from bot.parsing.gazetteer import find_listed_bodies
from bot.parsing.scan import finditer_at, upper_positions, word_starts

# Upper-case letters that can start a British or Welsh proper name (Ŵ and Ŷ are Welsh).
_UP = "A-ZÀ-ÖØ-ÞŴŶŸ"
# A capitalised word: "Guy's", "Thomas'", "Stoke-on-Trent", "Môn", "St".
_TOKEN = rf"(?:[{_UP}][\w'’-]*)"
# Lower-case words allowed inside a name ("Isle of Wight", "Kingston upon Hull", Welsh "a", "y").
_JOIN = r"(?:and|of|upon|on|&|y|yr|a|ar|the|for)"
_PREFIX = rf"(?:{_TOKEN}(?:\s+{_JOIN})?\s+){{0,8}}?"

_COUNCIL_TYPES = [
    "County Borough Council",
    "Metropolitan Borough Council",
    "Metropolitan District Council",
    "London Borough Council",
    "County Council",
    "City Council",
    "Borough Council",
    "District Council",
    "Town Council",
    "Parish Council",
    "Council",
]
_HEALTH_TYPES = [
    "Ambulance Service NHS Foundation Trust",
    "Ambulance Service NHS Trust",
    "NHS Foundation Trust",
    "NHS Trust",
    "University Health Board",
    "Teaching Health Board",
    "Health Board",
    "Integrated Care Board",
    "ICB",
    "Clinical Commissioning Group",
    "CCG",
    "Health and Social Care Trust",
    "Ambulance Service",
    "Ambulance Trust",
]
_EMERGENCY_TYPES = [
    "Fire and Rescue Service",
    "Fire & Rescue Service",
    "Fire and Rescue Authority",
    "Fire & Rescue Authority",
    "Fire Authority",
    "Fire Service",
    "Fire Brigade",
    "Police and Crime Commissioner",
    "Police Service",
    "Police",
    "Constabulary",
]
_OTHER_TYPES = [
    "Combined County Authority",
    "Combined Authority",
    "Waste Authority",
    "Transport Authority",
    "Passenger Transport Executive",
    "National Park Authority",
]
# A name may end in a possessive ("Kent County Council's") but not run into a longer word.
_END = r"(?![\w-]|['’](?!s\b))"
_TYPES = _COUNCIL_TYPES + _HEALTH_TYPES + _EMERGENCY_TYPES + _OTHER_TYPES
# Longest first so that "County Borough Council" wins over "Council" at the same place.
_TYPE_ALT = "|".join(re.escape(t) for t in sorted(_TYPES, key=len, reverse=True))
_SUFFIXED_BODY = re.compile(rf"(?<![\w'’-])(?P<prefix>{_PREFIX})(?P<type>{_TYPE_ALT}){_END}")

# A name after a leading type word; greedy, since nothing marks where it ends.
# A following "Cyngor"/"London Borough" starts the next name ("Cyngor Sir Ynys Môn a Cyngor Gwynedd").
_NAME = (
    rf"{_TOKEN}(?:(?:\s+(?:and|&|of|upon|on|y|yr|a|ar)\s+|\s+)"
    rf"(?!Cyngor\b|London\s+Borough\b|Royal\s+Borough\b){_TOKEN}){{0,5}}"
)
_PREFIXED_BODY = re.compile(
    rf"(?<![\w'’-])(?:"
    rf"(?:London|Royal|Metropolitan) Borough of {_NAME}"
    rf"|City and County of {_NAME}"
    rf"|City of {_NAME} Council"
    rf"|Cyngor (?:Sir |Bwrdeistref Sirol |Dinas a Sir |Dinas |Tref )?{_NAME}"
    rf"|Bwrdd Iechyd Prifysgol {_NAME}"
    rf"){_END}"
)

_DEPARTMENTS = [
    "Department for Work and Pensions",
    "Department for Education",
    "Department of Health and Social Care",
    "Department of Health",
    "Department for Transport",
    "Department for Environment, Food and Rural Affairs",
    "Department for Business, Energy and Industrial Strategy",
    "Department for Business and Trade",
    "Department for Levelling Up, Housing and Communities",
    "Department for Communities and Local Government",
    "Department for Digital, Culture, Media and Sport",
    "Department for Culture, Media and Sport",
    "Department for Science, Innovation and Technology",
    "Department for Energy Security and Net Zero",
    "Department for International Development",
    "Department for International Trade",
    "Ministry of Housing, Communities and Local Government",
    "Ministry of Justice",
    "Ministry of Defence",
]
_FIXED_BODIES = _DEPARTMENTS + [
    "Foreign, Commonwealth and Development Office",
    "Foreign and Commonwealth Office",
    "Home Office",
    "Cabinet Office",
    "HM Treasury",
    "HM Revenue and Customs",
    "HM Revenue & Customs",
    "HM Prison and Probation Service",
    "Her Majesty's Prison and Probation Service",
    "His Majesty's Prison and Probation Service",
    "HM Prison Service",
    "HM Courts and Tribunals Service",
    "HM Courts & Tribunals Service",
    "HM Land Registry",
    "HM Passport Office",
    "National Probation Service",
    "Crown Prosecution Service",
    "Crown Commercial Service",
    "Driver and Vehicle Licensing Agency",
    "Driver and Vehicle Standards Agency",
    "Environment Agency",
    "Legal Aid Agency",
    "Rural Payments Agency",
    "Valuation Office Agency",
    "UK Health Security Agency",
    "Public Health England",
    "Highways England",
    "National Highways",
    "Student Loans Company",
    "Border Force",
    "UK Visas and Immigration",
    "Government Digital Service",
    "National Audit Office",
    "Welsh Government",
    "Llywodraeth Cymru",
    "Scottish Government",
    "Northern Ireland Executive",
    "Greater London Authority",
    "Transport for London",
    "Transport for Greater Manchester",
    "Transport for Wales",
    "Transport Scotland",
    "NHS England and NHS Improvement",
    "NHS England",
    "NHS Digital",
    "NHS Improvement",
    "NHS Wales Shared Services Partnership",
    "NHS Wales",
    "NHS Scotland",
    "NHS Blood and Transplant",
    "NHS Business Services Authority",
    "NHS Property Services",
    "Police Scotland",
    "London Fire Brigade",
    "Metropolitan Police",
    "Network Rail",
]
_FIXED_BODY = re.compile(
    rf"(?<![\w'’-])(?:{'|'.join(re.escape(n) for n in sorted(_FIXED_BODIES, key=len, reverse=True))})"
    rf"{_END}"
)
_GENERIC_DEPARTMENT = re.compile(
    rf"(?<![\w'’-])(?:Department (?:for|of)|Ministry of) {_TOKEN}(?: and {_TOKEN})?"
)
_INITIALS = [
    "HMRC", "DWP", "MoJ", "MOJ", "MoD", "MOD", "DVLA", "DVSA", "HMPPS", "HMCTS", "TfL", "GMCA", "WMCA",
    "DfE", "DfT", "DHSC", "Defra", "DEFRA", "DCMS", "DLUHC", "MHCLG", "FCDO", "BEIS", "DESNZ", "DSIT",
    "CPS", "NHSE", "NHSX", "UKHSA", "UKVI", "GLA",
]  # fmt: skip
_INITIALS_RE = re.compile(rf"(?<![\w'’-])(?:{'|'.join(_INITIALS)}){_END}")

# Words that start sentences but never public-body names; trimmed off the front of a capitalised run.
_LEADING_STOP = frozenset(
    [
        "The", "A", "An", "In", "At", "On", "When", "While", "Whilst", "Since", "Our", "My", "Their",
        "Its", "His", "Her", "This", "That", "These", "Those", "Both", "Last", "Next", "Each", "Every",
        "Under", "For", "From", "By", "With", "After", "Before", "Then", "Meanwhile", "However", "Also",
        "So", "As", "Although", "Though", "Eventually", "Later", "Previously", "Initially", "Originally",
        "Dear", "Hi", "Hello", "Re", "Fw", "Fwd", "Yes", "No", "If", "Once", "But", "And", "Or", "Why",
        "How", "What", "Where", "Who", "Which", "Many", "Some", "All", "Several", "Former",
        "Neighbouring", "Nearby", "Recently", "Today", "Yesterday", "Only", "Even", "Unlike", "Like",
        "Instead", "Despite", "During", "Over", "Between", "Against", "Within", "Across", "Through",
        "Until", "I", "We", "They", "He", "She", "It", "You", "Your", "Here", "There", "Now", "Sadly",
        "Unfortunately", "Fortunately", "Overall", "Indeed", "Following", "Whereas", "Because", "Another",
        "Other", "Similarly", "Likewise", "Currently", "Ultimately", "Finally", "Then", "January",
        "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
        "December", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "Jan",
        "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec"
    ]  # fmt: skip
)

KNOWN_SUPPLIERS = [
    "Capita", "Serco", "Sopra Steria", "Steria", "Atos", "Fujitsu", "Mitie", "MITIE", "G4S",
    "Interserve", "Carillion", "Kier", "Amey", "Accenture", "IBM", "CGI", "Agilisys", "BT", "Liberata",
    "Arvato", "Northgate", "Civica", "Oracle", "SAP", "Deloitte", "PwC", "KPMG", "EY", "Ernst & Young",
    "Babcock", "Sodexo", "ISS", "Engie", "Equans", "Veolia", "Biffa", "Suez", "Viridor", "Urbaser",
    "FCC Environment", "Mears", "Balfour Beatty", "Ringway", "Skanska", "Costain", "Galliford Try",
    "Capgemini", "Computacenter", "Tata Consultancy Services", "Infosys", "Wipro", "DXC", "Xerox",
    "Maximus", "Ingeus", "A4e", "Working Links", "Virgin Care", "Care UK", "Mouchel", "Atkins",
    "Jacobs", "Telent", "Vodafone", "Zellis", "Unit4", "Idox", "Tribal", "Bouygues", "Vinci",
    "Compass Group", "Circle Health", "Optum", "Palantir", "Microsoft", "Hewlett Packard",
]  # fmt: skip
_KNOWN_RE = re.compile(
    rf"(?<![\w'’-])(?:{'|'.join(re.escape(n) for n in sorted(KNOWN_SUPPLIERS, key=len, reverse=True))})"
    rf"{_END}"
)
_LEGAL = r"(?:Ltd\.?|Limited|plc|PLC|Plc|LLP|Inc\.?)"
_COMPANY_WORDS = rf"(?:{_LEGAL}|Group|Services|Solutions|Partnership|Holdings|Consulting|Outsourcing)"
_COMPANY_RE = re.compile(
    rf"(?<![\w'’-])(?P<name>(?:{_TOKEN}(?:\s+&)?\s+){{1,5}}?)(?P<word>{_COMPANY_WORDS})"
    rf"(?:\s+{_LEGAL})?(?![\w'’-])"
)
_INTRODUCED_RE = re.compile(
    r"\b(?:outsourc(?:ed|ing)(?:\s+[\w'’-]+){0,4}?\s+to|contracted(?:\s+out)?(?:\s+to)?|awarded\s+to"
    r"|(?:new\s+|the\s+)?(?:supplier|contractor|provider)|provided\s+by|run\s+by|operated\s+by"
    r"|delivered\s+by|managed\s+by|transferred\s+to|handed\s+to|won\s+by|contract\s+with"
    r"|partnership\s+with)"
    rf"\s+(?P<name>{_TOKEN}(?:\s+(?:&\s+)?{_TOKEN}){{0,4}})"
)
# A "Services"/"Group" name made only of these words is a department of the body, not a company
# ("Children's Services", "Shared Services", "Customer Services").
_GENERIC_WORDS = frozenset(
    [
        "Children's", "Childrens", "Adult", "Adults", "Social", "Care", "Customer", "Revenues",
        "Benefits", "Financial", "Finance", "HR", "IT", "ICT", "Digital", "Shared", "Support", "Business",
        "Public", "Council", "Legal", "Health", "Community", "Environmental", "Waste", "Housing",
        "Bereavement", "Library", "Libraries", "Leisure", "Transport", "Building", "Property", "Back",
        "Office", "Front", "Corporate", "Professional", "Technical", "Clinical", "Commissioning",
        "Emergency", "Fire", "Rescue", "Ambulance", "Street", "Scene", "Neighbourhood", "Regulatory",
        "Cultural", "Education", "Learning", "Highways", "Parking", "Planning", "Estates", "Facilities",
        "Transactional", "Employment", "Pensions", "Payroll", "Democratic", "Electoral", "Registration",
        "Probation", "Prison", "Prisons", "Youth", "Offending", "Family", "Families", "Specialist",
        "Management", "Information", "Technology"
    ]  # fmt: skip
)
# Words that show a candidate supplier is really a public body's name.
_BODY_WORDS = re.compile(r"\b(?:Council|NHS|Police|Department|Ministry|Authority|Trust|Board|Cyngor)\b")


# -- where each pattern can start (bot.parsing.scan) ----------------------------------------------------
# Every pattern above but _INTRODUCED_RE starts with a capital letter; each is tried only at the
# capitals of the text whose first two characters can begin one of its names.


def _firsts(names: list[str]) -> frozenset[str]:
    return frozenset(n[:2] for n in names)


_FIRSTS: dict[re.Pattern[str], frozenset[str] | None] = {
    _PREFIXED_BODY: _firsts(["London", "Royal", "Metropolitan", "City", "Cyngor", "Bwrdd"]),
    _FIXED_BODY: _firsts(_FIXED_BODIES),
    _GENERIC_DEPARTMENT: _firsts(["Department", "Ministry"]),
    _INITIALS_RE: _firsts(_INITIALS),
    _KNOWN_RE: _firsts(KNOWN_SUPPLIERS),
    _COMPANY_RE: None,
}
# A suffixed body ends in a type word: its first word somewhere after the start, and nothing but
# name characters (letters, spaces, "&", apostrophes, hyphens) in between.
_TYPE_FIRST = re.compile("|".join(sorted({re.escape(t.split()[0]) for t in _TYPES}, key=len, reverse=True)))
_NOT_IN_NAME = re.compile(r"[^\w\s'’&-]")
_INTRODUCED_STARTS = re.compile(word_starts([
    "outsourc", "contracted", r"awarded(?=\s+to)", r"new(?=\s+(?:supplier|contractor|provider))",
    r"the(?=\s+(?:supplier|contractor|provider))", "supplier", "contractor", "provider", r"provided(?=\s+by)",
    r"run(?=\s+by)", r"operated(?=\s+by)", r"delivered(?=\s+by)", r"managed(?=\s+by)",
    r"transferred(?=\s+to)", r"handed(?=\s+to)", r"won(?=\s+by)", r"contract(?=\s+with)",
    r"partnership(?=\s+with)",
]))
# Every _COMPANY_RE name ends in one of these words.
_COMPANY_WORD = re.compile("Ltd|Limited|plc|PLC|Plc|LLP|Inc|Group|Services|Solutions|Partnership|Holdings|Consulting"
                           "|Outsourcing")


def _at(regex: re.Pattern[str], text: str, caps: list[int]) -> list[re.Match[str]]:
    """regex.finditer(text), tried only where one of its names can start."""
    firsts = _FIRSTS.get(regex)
    positions = caps if firsts is None else [p for p in caps if text[p : p + 2] in firsts]
    return list(finditer_at(regex, text, positions))


def _suffixed(text: str, caps: list[int]) -> list[re.Match[str]]:
    types = [m.start() for m in _TYPE_FIRST.finditer(text)]
    if not types:
        return []
    breaks = [m.start() for m in _NOT_IN_NAME.finditer(text)]
    positions = []
    for p in caps:
        i = bisect_left(types, p)
        if i == len(types):
            break
        b = bisect_left(breaks, p)
        if b == len(breaks) or breaks[b] > types[i]:
            positions.append(p)
    return list(finditer_at(_SUFFIXED_BODY, text, positions))


@dataclass(frozen=True)
class Found:
    """A name found in a text, with its place (so callers can avoid overlaps)."""

    start: int
    end: int
    text: str
    initials: bool = False


def _trim_leading(text: str, start: int) -> tuple[str, int]:
    """Drop sentence words and dangling joining words off the front of a capitalised run."""
    while True:
        head, sep, rest = text.partition(" ")
        if not sep:
            return text, start
        if head in _LEADING_STOP or head in {"and", "of", "upon", "on", "&", "y", "yr", "a", "the", "for"}:
            text, start = rest.lstrip(), start + len(head) + len(sep) + (len(rest) - len(rest.lstrip()))
            continue
        return text, start


def _strip_supplier_head(text: str, start: int) -> tuple[str, int]:
    """'Capita and Barnet Council', 'Capita for Barnet Council' are two names: drop a known
    supplier joined on the front ("for" is a joining word inside names, but no council's name
    starts with a supplier's)."""
    m = _KNOWN_RE.match(text)
    if m:
        rest = text[m.end() :]
        joined = re.match(r"\s+(?:and|&|for)\s+", rest)
        if joined:
            cut = m.end() + joined.end()
            return text[cut:], start + cut
    return text, start


def _strip_supplier_tail(text: str) -> str:
    """'London Borough of Barnet and Capita' is two names: drop a known supplier joined at the end."""
    m = re.search(r"\s+(?:and|&)\s+(?P<tail>.+)$", text)
    if m and _KNOWN_RE.fullmatch(m.group("tail")):
        return text[: m.start()]
    return text


def find_public_bodies(text: str) -> list[Found]:
    """All public bodies named in `text`, in order of appearance, overlaps resolved to the longest."""
    # Listed names first: on a tie with a pattern match the list's official name wins ("Kent CC").
    found = [Found(h.start, h.end, h.name, initials=h.initials) for h in find_listed_bodies(text)]
    caps = upper_positions(text)
    for m in _suffixed(text, caps):
        prefix_text, start = _trim_leading(m.group(0), m.start())
        prefix_text, start = _strip_supplier_head(prefix_text, start)
        type_start = m.start("type")
        if start >= type_start:
            continue  # only the type word is left: "The Council said", "Our County Council"
        found.append(Found(start, m.end(), text[start : m.end()]))
    for regex in (_PREFIXED_BODY, _FIXED_BODY, _GENERIC_DEPARTMENT):
        for m in _at(regex, text, caps):
            # The greedy name swallows a possessive ("London Borough of Barnet's"); give it back.
            name = re.sub(r"['’]s$", "", _strip_supplier_tail(m.group(0)))
            found.append(Found(m.start(), m.start() + len(name), name))
    for m in _at(_INITIALS_RE, text, caps):
        found.append(Found(m.start(), m.end(), m.group(0), initials=True))
    return _resolve(found)


def _resolve(found: list[Found]) -> list[Found]:
    """Keep the longest of overlapping names, then return them in text order."""
    kept: list[Found] = []
    for f in sorted(found, key=lambda f: (-(f.end - f.start), f.start)):
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)


def find_public_body(text: str) -> str | None:
    """The public body a text is about: the first full name, else the first initials, else None."""
    bodies = find_public_bodies(text)
    for b in bodies:
        if not b.initials:
            return b.text
    return bodies[0].text if bodies else None


def find_suppliers(text: str, bodies: list[Found] | None = None) -> list[Found]:
    """All suppliers named in `text`, in order; none overlapping a public body."""
    if bodies is None:
        bodies = find_public_bodies(text)
    body_names = {b.text for b in bodies}
    found: list[Found] = []
    caps = upper_positions(text)
    for m in _at(_KNOWN_RE, text, caps):
        found.append(Found(m.start(), m.end(), m.group(0)))
    companies = _at(_COMPANY_RE, text, caps) if _COMPANY_WORD.search(text) else []
    for m in companies:
        name, start = _trim_leading(m.group("name").strip(), m.start("name"))
        if not name or name in _LEADING_STOP:
            continue
        words = name.replace("&", " ").split()
        if not re.match(_LEGAL, m.group("word")) and all(w in _GENERIC_WORDS for w in words):
            continue
        found.append(Found(start, m.end(), text[start : m.end()]))
    for m in finditer_at(_INTRODUCED_RE, text, (m.start() for m in _INTRODUCED_STARTS.finditer(text))):
        name, start = _trim_leading(m.group("name"), m.start("name"))
        if not name or name.split()[0] in _LEADING_STOP:
            continue
        found.append(Found(start, start + len(name), name))
    result = []
    for f in _resolve(found):
        if f.text in body_names or _BODY_WORDS.search(f.text):
            continue
        if any(f.start < b.end and f.end > b.start for b in bodies):
            continue
        result.append(f)
    return result


def find_supplier(text: str, bodies: list[Found] | None = None) -> str | None:
    """The first supplier named in `text` that is not a public body, or None."""
    suppliers = find_suppliers(text, bodies)
    return suppliers[0].text if suppliers else None
