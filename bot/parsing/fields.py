"""Finds the evidence fields in clean text: template `Field: value` lines and free prose.

Template lines
--------------
A template line is one line holding a known key and its value. Accepted forms, for any casing of
the key ("PUBLIC BODY", "public body"):

* ``Key: value``, ``Key - value``, ``Key – value``, ``Key — value`` (a plain hyphen needs spaces
  round it so "Follow-up" is not split);
* ``Key | value`` and ``| Key | value |`` (a two-column table row as text), ``Key<TAB>value``;
* the key in bold, ``**Key:** value``, ``**Key**: value``, ``__Key__: value``;
* after a bullet or number: ``- ``, ``* ``, ``• ``, ``1. ``, ``1) ``.

Table header rows ("Field | Value") and pipe-table rule rows ("|---|---|") are dropped. The HTML
converter is expected to render a key/value table as ``Key: value`` lines, but the other forms are
accepted so pasted tables also work. Values are one line long. A line whose key is not in `_KEYS`
is ordinary prose. The first line for a key wins. Template values beat anything inferred from prose.

Prose
-----
Everything that is not a template line stays in `Fields.prose`, paragraphs kept. When the template
does not give a field, it is inferred from the prose: public body and supplier (`bodies`), money
(`money`, told apart as contract value or savings by the words around it; unclear money is left
unassigned), outcome (phrase scoring with simple negation), period, service area (keyword list
`SERVICE_AREAS`) and an explicit request for confidentiality.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.parsing.bodies import find_public_bodies, find_suppliers
from bot.parsing.money import MoneyMatch, find_money, parse_money
from bot.record import Outcome


@dataclass
class Fields:
    project: str | None = None
    public_body: str | None = None
    supplier: str | None = None
    service_area: str | None = None
    outcome: Outcome = Outcome.UNKNOWN
    contract_value_gbp: int | None = None
    savings_gbp: int | None = None
    period: str | None = None
    confidential: bool = False
    declared_interests: str | None = None
    # named | anonymous | not_for_publication: the submitter's say over publication.
    publication: str = "named"
    # The text with the recognised template lines taken out: the free evidence prose.
    prose: str = ""


# ---------------------------------------------------------------------------------------------
# Template lines

_KEYS: dict[str, str] = {}
for _field, _names in {
    "project": ["project", "project name", "project title"],
    "public_body": [
        "public body", "public sector body", "organisation", "organization", "authority", "client",
        "public body name", "body",
    ],
    "supplier": ["supplier", "suppliers", "contractor", "provider", "vendor", "supplier name"],
    "service_area": ["service area", "sector", "service"],
    "contract_value": [
        "contract value", "value", "contract size", "total contract value", "contract value (£)",
        "value (£)",
    ],
    "outcome": ["outcome", "result"],
    "savings": ["savings", "savings achieved", "cost savings", "savings (£)", "saving"],
    "period": ["period", "dates", "timescale", "contract period", "duration"],
    "confidential": ["confidential", "anonymous", "keep confidential"],
    "publication": ["publish", "publication", "publication preference", "publish as"],
    "declared_interests": [
        "declaration of interests", "declaration of interest", "declared interests", "declared interest",
        "interests", "interests declared", "conflict of interest", "conflicts of interest",
    ],
    "_header": ["field", "key", "item", "question"],
}.items():  # fmt: skip
    for _name in _names:
        _KEYS[_name] = _field

_BULLET = re.compile(r"^\s*(?:[-*•·‣▪◦]\s+|\d{1,2}[.)]\s+)")
_MARKERS = re.compile(r"^(?:\*\*|__)|(?:\*\*|__)$")
_SEPARATORS = [
    re.compile(r"^(?P<key>[^:]{1,60}?)\s*:\s*(?P<value>.*)$"),
    re.compile(r"^(?P<key>[^|]{1,60}?)\s*\|\s*(?P<value>.*)$"),
    re.compile(r"^(?P<key>[^\t]{1,60}?)\t+(?P<value>.*)$"),
    re.compile(r"^(?P<key>.{1,60}?)(?:\s+-\s+|\s*[–—]\s*)(?P<value>.*)$"),
]
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)+\|?\s*$")
_EMPTY_VALUES = frozenset(
    {"", "n/a", "na", "-", "–", "—", "unknown", "not known", "tbc", "tbd", "?", "...", "…"}
)


def _normalise_key(raw: str) -> str:
    key = raw.strip().strip("*_#").strip()
    key = _MARKERS.sub("", key).strip()
    return re.sub(r"\s+", " ", key).lower()


def _clean_value(raw: str) -> str:
    value = raw.strip().strip("|").strip()
    # "**Supplier:** Capita" leaves "** Capita"; a value wrapped in bold loses its markers too.
    value = re.sub(r"^(?:\*\*|__)\s*", "", value)
    value = re.sub(r"\s*(?:\*\*|__)$", "", value)
    return value.strip()


def _template_line(line: str) -> tuple[str, str] | None:
    """(field, value) if `line` is a template line, else None."""
    body = _BULLET.sub("", line, count=1).strip()
    if body.startswith("|"):
        body = body.strip("|").strip()
    if not body:
        return None
    for sep in _SEPARATORS:
        m = sep.match(body)
        if m:
            field = _KEYS.get(_normalise_key(m.group("key")))
            if field:
                return field, _clean_value(m.group("value"))
    return None


def _split_template(text: str) -> tuple[dict[str, str], str]:
    """Take template lines out of `text`: ({field: value}, remaining prose)."""
    values: dict[str, str] = {}
    kept: list[str] = []
    for line in text.splitlines():
        if _TABLE_RULE.match(line):
            continue
        found = _template_line(line)
        if found is None:
            kept.append(line.rstrip())
            continue
        field, value = found
        if field == "_header" and value.lower() in {"value", "details", "answer", "response"}:
            continue
        if field == "_header":
            kept.append(line.rstrip())
            continue
        values.setdefault(field, value)
    prose = "\n".join(kept)
    # Removing lines can leave runs of blank lines; one blank line is a paragraph break.
    prose = re.sub(r"\n\s*\n(?:\s*\n)+", "\n\n", prose)
    return values, prose.strip("\n").strip()


def _value_or_none(value: str | None) -> str | None:
    if value is None or value.strip().lower() in _EMPTY_VALUES:
        return None
    return value.strip()


# ---------------------------------------------------------------------------------------------
# Outcome

_NEGATORS = re.compile(
    r"\b(?:not|never|no|without|hardly|barely|failed\s+to|unable\s+to|didn't|wasn't|isn't|hasn't|"
    r"haven't|weren't|won't|don't|doesn't|cannot|can't)\b(?:\s+[\w']+){0,2}\s*$",
    re.IGNORECASE,
)
# (pattern, weight). Weight 2 is a clear verdict, 1 a hint.
_SUCCESS_PHRASES = [
    (r"deliver(?:ed|s|ing)?\s+(?:the\s+|real\s+|significant\s+|substantial\s+)?(?:promised\s+)?savings", 2),
    (r"achieved\s+(?:its\s+|the\s+)?(?:savings|targets)", 2),
    (r"exceed(?:ed|s|ing)?\s+(?:all\s+|its\s+|the\s+|every\s+)?(?:targets?|expectations)", 2),
    (r"(?:was|been|proved|proven|is|a)\s+(?:a\s+)?(?:great\s+|real\s+|huge\s+|clear\s+)?success\b", 2),
    (r"success\s+story", 2),
    (
        r"savings\b[^.;]{0,40}?\b(?:were|was|have\s+been|has\s+been)\s+"
        r"(?:achieved|delivered|realised|realized)",
        2,
    ),
    (r"(?:was|been|proved|proven|is|were|highly|very)\s+successful", 2),
    (r"went\s+(?:very\s+|really\s+)?well", 2),
    (r"worked\s+(?:very\s+|really\s+|extremely\s+)?well", 2),
    (r"met\s+(?:all\s+)?(?:its\s+|the\s+|every\s+)?(?:targets|kpis|milestones)", 1),
    (r"on\s+time\s+and\s+(?:on|within|under)\s+budget", 2),
    (r"under\s+budget", 1),
    (r"improv(?:ed|ement\s+in)\s+(?:performance|services?|collection\s+rates)", 1),
    (r"performance\s+improved", 1),
    (r"good\s+value\s+for\s+money", 1),
    (r"satisfaction\s+(?:rose|increased|improved)", 1),
]
_FAILURE_PHRASES = [
    (r"collaps(?:ed|e)", 2),
    (r"terminated(?:\s+early)?", 2),
    (r"ended\s+early", 2),
    (r"(?:brought|taken|moved|came)\s+(?:the\s+[\w\s]{1,30}?)?back\s+in[-\s]?house", 2),
    (r"insourced", 2),
    (r"overspen[dt]", 2),
    (r"over\s+budget", 2),
    (r"fail(?:ed|ure|ing|s)?\b", 2),
    (r"went\s+into\s+(?:administration|liquidation|receivership)", 2),
    (r"missed\s+(?:every|all|most|its|the|key)?\s*(?:of\s+its\s+)?targets?", 2),
    (r"disast(?:er|rous)", 2),
    (r"fiasco", 2),
    (r"scrapped", 2),
    (r"abandoned", 2),
    (r"never\s+materiali[sz]ed", 2),
    (r"did\s+not\s+deliver", 2),
    (r"poor\s+(?:performance|service|value)", 1),
    (r"performance\s+(?:deteriorated|declined|worsened|fell)", 1),
    (r"complaints\s+(?:rose|increased|soared)", 1),
    (r"cost\s+overruns?", 1),
    (r"backlogs?", 1),
    (r"penalt(?:y|ies)", 1),
]
_MIXED_PHRASES = [
    r"mixed\s+(?:results?|picture|success|bag|record|outcome)",
    r"partial(?:ly)?\s+success(?:ful)?",
    r"partly\s+successful",
    r"some\s+successes",
    r"limited\s+success",
]
_SUCCESS_RE = [(re.compile(rf"\b{p}", re.IGNORECASE), w) for p, w in _SUCCESS_PHRASES]
_FAILURE_RE = [(re.compile(rf"\b{p}", re.IGNORECASE), w) for p, w in _FAILURE_PHRASES]
_MIXED_RE = re.compile(rf"\b(?:{'|'.join(_MIXED_PHRASES)})", re.IGNORECASE)


def _negated(text: str, start: int) -> bool:
    """True if one of the few words before `start` (same clause) negates the phrase."""
    window = text[max(0, start - 40) : start]
    window = re.split(r"[.;:!?,]", window)[-1]
    return bool(_NEGATORS.search(window))


def _outcome_scores(text: str) -> tuple[int, int]:
    success = failure = 0
    spans: list[tuple[int, int]] = []
    for regexes, positive in ((_FAILURE_RE, False), (_SUCCESS_RE, True)):
        for regex, weight in regexes:
            for m in regex.finditer(text):
                # One stretch of text counts once ("failed to deliver savings" is not also a success).
                if any(m.start() < e and m.end() > s for s, e in spans):
                    continue
                spans.append((m.start(), m.end()))
                if _negated(text, m.start()):
                    # A negated phrase counts for the other side: "was not a success", "did not fail".
                    if positive:
                        failure += weight
                    else:
                        success += weight
                elif positive:
                    success += weight
                else:
                    failure += weight
    return success, failure


def infer_outcome(text: str) -> Outcome:
    """Outcome from prose: explicit "mixed" wording, else the balance of success and failure phrases.

    Both sides scoring at least 2 (a clear verdict each) is mixed; otherwise the side that scores
    twice the other wins; a near tie is mixed; less than one clear phrase (score 2) is unknown.
    """
    if _MIXED_RE.search(text):
        return Outcome.MIXED
    success, failure = _outcome_scores(text)
    if max(success, failure) < 2:
        # A lone hint ("a backlog", "penalties") is too little to call an outcome.
        return Outcome.UNKNOWN
    if success >= 2 and failure >= 2:
        return Outcome.MIXED
    if success >= 2 * failure:
        return Outcome.SUCCESS
    if failure >= 2 * success:
        return Outcome.FAILURE
    return Outcome.MIXED


_OUTCOME_WORDS = [
    (Outcome.MIXED, re.compile(r"\b(?:mixed|partial|partially|partly|both)\b", re.IGNORECASE)),
    (
        Outcome.FAILURE,
        re.compile(
            r"\b(?:failure|failed|fail|unsuccessful|terminated|negative|collapsed|poor|disaster|"
            r"not\s+(?:a\s+)?success(?:ful)?|did\s+not\s+work|didn't\s+work)\b",
            re.IGNORECASE,
        ),
    ),
    (Outcome.SUCCESS, re.compile(r"\b(?:success|successful|positive|worked|good)\b", re.IGNORECASE)),
]


def outcome_from_value(value: str) -> Outcome:
    """Outcome from a template value: mixed words first, then failure, then success, else unknown."""
    for outcome, regex in _OUTCOME_WORDS:
        if regex.search(value):
            return outcome
    return Outcome.UNKNOWN


# ---------------------------------------------------------------------------------------------
# Money in prose

_QUALIFIER = (
    r"(?:\s+(?:around|about|approximately|roughly|nearly|almost|over|more\s+than|some|an\s+estimated|"
    r"up\s+to|just\s+over|just\s+under|circa|c\.|at\s+least|less\s+than|only|just))*"
)
_SAVINGS_BEFORE = re.compile(
    r"(?:\bsav(?:e|ed|es|ing|ings)\b(?:\s+[\w'’]+){0,3}?"
    r"|\b(?:reduc(?:e|ed|es|ing)|cut(?:ting)?|lower(?:ed|ing)?)\s+(?:its\s+|the\s+|their\s+|our\s+)?"
    r"(?:annual\s+|running\s+|operating\s+)?(?:costs?|spend(?:ing)?|budget|bill)\s+by"
    r"|\b(?:cheaper|reduction|efficienc(?:y|ies)|cost\s+reductions?)\s+(?:of|by|worth)"
    r"|\bsavings?\s+(?:of|worth|totalling|totaling|amounting\s+to|were|was|are|is)"
    r"(?:\s+(?:promised|expected|forecast|projected|claimed|estimated|said\s+to\s+be|put)(?:\s+at)?)?)"
    rf"{_QUALIFIER}\s*$",
    re.IGNORECASE,
)
_PERIODIC = r"(?:\s+(?:a|per|each|every)\s+(?:year|annum|month)|\s+annually|\s+p\.?a\.?|\s+in\s+total)?"
_SAVINGS_AFTER = re.compile(
    rf"^{_PERIODIC}\s*(?:cheaper|in\s+(?:cash\s+)?savings|of\s+savings|savings?\b|saving\b|less\b|"
    rf"lower\b|in\s+efficiencies|reduction)",
    re.IGNORECASE,
)
_CONTRACT_BEFORE = re.compile(
    r"(?:\bworth|\bvalued\s+at|\b(?:total\s+)?value\s+of|\bcontract\s+(?:sum|price)\s+of|\bpriced\s+at"
    r"|\b(?:contract|deal|agreement)\s+of|\bcontract\s+(?:was|is)\s+worth)"
    rf"{_QUALIFIER}\s*$",
    re.IGNORECASE,
)
_CONTRACT_AFTER = re.compile(
    r"^(?:[\s,]+(?:[\w-]+|\([^)]*\))){0,3}?\s+(?:outsourcing\s+)?(?:contracts?|deal|agreement|framework"
    r"|partnership|PFI|concession)\b",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"[.;!?]\s|\n")


def _before(text: str, m: MoneyMatch, previous_end: int) -> str:
    start = max(previous_end, m.start - 80)
    window = text[start : m.start]
    parts = _CLAUSE_END.split(window)
    return parts[-1]


def _after(text: str, m: MoneyMatch, next_start: int) -> str:
    window = text[m.end : min(next_start, m.end + 60)]
    return _CLAUSE_END.split(window)[0]


def classify_money(text: str) -> tuple[int | None, int | None]:
    """(contract value, savings) from prose; the first clear one of each, unclear amounts ignored."""
    found = find_money(text)
    contract: int | None = None
    savings: int | None = None
    for i, m in enumerate(found):
        before = _before(text, m, found[i - 1].end if i else 0)
        after = _after(text, m, found[i + 1].start if i + 1 < len(found) else len(text))
        # Savings wording is checked first: "savings worth £2m" is savings even though "worth"
        # usually introduces a contract value.
        if _SAVINGS_BEFORE.search(before) or _SAVINGS_AFTER.match(after):
            if savings is None:
                savings = m.value
        elif (_CONTRACT_BEFORE.search(before) or _CONTRACT_AFTER.match(after)) and contract is None:
            contract = m.value
    return contract, savings


# ---------------------------------------------------------------------------------------------
# Period

_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?"
)
_YEAR = r"(?:19|20)\d\d"
_WHEN = rf"(?:(?:\d{{1,2}}(?:st|nd|rd|th)?\s+)?{_MONTH}\s+)?{_YEAR}"
_NUMBER_WORDS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "twenty-five": 25, "thirty": 30,
}  # fmt: skip
_PERIOD_RANGE = re.compile(
    rf"\b(?:from|between)\s+(?P<a>{_WHEN})\s+(?:to|until|till|and|through)\s+(?P<b>{_WHEN})\b"
    rf"|(?<![\d£])(?P<c>{_WHEN})\s*(?:-|–|—|to|until)\s*(?P<d>{_WHEN}|\d\d)(?![\d%])",
    re.IGNORECASE,
)
_PERIOD_DURATION = re.compile(
    rf"\b(?P<n>\d{{1,2}}|{'|'.join(_NUMBER_WORDS)})[-\s]year\b[^.\n]{{0,60}}?"
    rf"\b(?:start(?:ing|ed)|from|beginning|began|commencing|commenced|signed|let)\s+(?:in\s+)?"
    rf"(?P<start>{_WHEN})",
    re.IGNORECASE,
)


def infer_period(text: str) -> str | None:
    """A period from prose, written "A to B" ("2015 to 2022", "April 2019 to March 2021") or
    "N years from Y" for "a 10-year contract starting in 2014" (we do not invent an end year)."""
    m = _PERIOD_RANGE.search(text)
    if m:
        if m.group("a"):
            return f"{m.group('a')} to {m.group('b')}"
        start, end = m.group("c"), m.group("d")
        if re.fullmatch(r"\d\d", end):
            # "2018-23": the century comes from the start year.
            end = start[-4:-2] + end
            if int(end) <= int(start[-4:]):
                return None
        return f"{start} to {end}"
    m = _PERIOD_DURATION.search(text)
    if m:
        n = m.group("n").lower()
        years = int(n) if n.isdigit() else _NUMBER_WORDS[n]
        return f"{years} years from {m.group('start')}"
    return None


# ---------------------------------------------------------------------------------------------
# Service area

SERVICE_AREAS: list[tuple[str, str]] = [
    ("HR and payroll", r"payroll|human\s+resources|\bHR\b|pensions\s+administration"),
    (
        "Revenues and benefits",
        r"revenues?\s+(?:and|&)\s+benefits|council\s+tax\s+(?:collection|billing)|housing\s+benefits?"
        r"|business\s+rates|benefits?\s+(?:processing|administration|assessments?)"
        r"|(?:disability|work\s+capability|fit\s+for\s+work)\s+assessments?",
    ),
    (
        "IT and digital",
        r"\bI\.?T\.?\b|\bICT\b|digital|software|computer\s+systems?|data\s+cent(?:re|er)s?|helpdesk"
        r"|service\s+desk|IT\s+services|technology|network\s+infrastructure|cloud",
    ),
    ("Waste and recycling", r"\bwaste|refuse|bin\s+collections?|recycling|street\s+cleansing"),
    ("Fleet", r"\bfleet|vehicle\s+maintenance|vehicles\b|workshops?\b"),
    ("Facilities management", r"facilities\s+management|\bFM\b|cleaning|catering|estates?\s+management"),
    ("Highways", r"highways?|road\s+maintenance|street\s+lighting|potholes?"),
    ("Prisons and probation", r"prisons?\b|probation|offender|electronic\s+(?:monitoring|tagging)"),
    ("Customer services", r"customer\s+services?|contact\s+cent(?:re|er)|call\s+cent(?:re|er)"),
    (
        "Social care",
        r"social\s+care|care\s+homes?|domiciliary|home\s+care|children's\s+services|adult\s+services",
    ),
    ("Housing", r"housing\s+(?:repairs|management|maintenance)|council\s+housing|social\s+housing"),
    ("Leisure", r"leisure\s+(?:centres?|services)|libraries"),
    ("Back office", r"back[-\s]office|shared\s+services|finance\s+function|transactional\s+services"),
    (
        "Health",
        r"clinical\s+services|pathology|patient\s+transport|diagnostic|\bGP\s+services|community\s+health"
        r"|hospital\s+services|physiotherapy|mental\s+health",
    ),
]
_SERVICE_RE = [(label, re.compile(p, re.IGNORECASE)) for label, p in SERVICE_AREAS]
# "IT" must be capitals to avoid the pronoun; everything else may be any case.
_SERVICE_RE[2] = (
    "IT and digital",
    re.compile(
        r"\bI\.?T\.?(?![\w.])|\b(?i:ICT|digital|software|computer\s+systems?|data\s+cent(?:re|er)s?"
        r"|helpdesk|service\s+desk|technology|network\s+infrastructure|cloud)\b"
    ),
)
_SERVICE_RE[0] = (
    "HR and payroll",
    re.compile(r"\bHR\b|\b(?i:payroll|human\s+resources|pensions\s+administration)\b"),
)


def infer_service_area(text: str) -> str | None:
    """The first label in SERVICE_AREAS (priority order, specific before general) whose keywords
    appear in `text`; names of public bodies should be removed first ("... Hospitals NHS Trust")."""
    for label, regex in _SERVICE_RE:
        if regex.search(text):
            return label
    return None


# ---------------------------------------------------------------------------------------------
# Confidentiality

_CONFIDENTIAL_REQUESTS = re.compile(
    r"\b(?:please\s+)?(?:do\s+not|don't|dont|not\s+to)\s+(?:publish|print|use|name|identify|disclose|share|"
    r"reveal|quote)\s+(?:me|my\s+(?:name|identity|details|organisation|employer)|who\s+I\s+am)"
    r"|\b(?:wish|want|would\s+like|prefer|ask|need|like)\s+to\s+(?:remain|stay|be\s+kept|be)\s+anonymous"
    r"|\bremain\s+anonymous\b"
    r"|\b(?:keep|treat|hold)\s+(?:this|it|my\s+(?:name|identity|details|submission|evidence|email)|me)"
    r"(?:\s+\w+){0,2}?\s+(?:as\s+)?(?:confidential|anonymous|private|in\s+(?:strict\s+)?confidence)"
    r"|\bnot\s+for\s+publication\b"
    r"|\boff\s+the\s+record\b"
    r"|\b(?:submit(?:ted|ting)?|send(?:ing)?|writ(?:e|ing))\s+(?:this\s+)?anonymously\b"
    r"|\bin\s+(?:strict\s+)?confidence\b"
    r"|\bmy\s+(?:name|identity|details|submission|evidence)\s+(?:to\s+be\s+|should\s+be\s+|must\s+be\s+|be\s+)"
    r"(?:kept\s+|treated\s+as\s+)?(?:confidential|anonymous|anonymised|withheld)",
    re.IGNORECASE,
)
_YES = re.compile(r"^(?:yes|y|true|please|confidential|anonymous|yes\b.*)$", re.IGNORECASE)
_NO = re.compile(r"^(?:no|n|false|none|not\s+confidential|no\b.*|happy\s+to\s+be\s+named.*)$", re.IGNORECASE)


_NOT_FOR_PUBLICATION = re.compile(
    r"\bnot\s+for\s+publication\b|\boff\s+the\s+record\b|\bdo\s+not\s+publish\s+(?:this|it|any\s+of\s+this)\b"
    r"|\bfor\s+the\s+(?:group|committee|members)'?s?\s+eyes\s+only\b",
    re.IGNORECASE,
)


def publication_from_value(value: str) -> str | None:
    """The `Publish:` template line: named, anonymous or not for publication (None if unclear)."""
    v = re.sub(r"[\s_-]+", " ", value.strip().lower())
    if v.startswith(("not for", "no", "do not", "don't", "private", "unpublished", "confidential")):
        return "not_for_publication" if "anonym" not in v else "anonymous"
    if v.startswith(("anon", "without my name", "withhold")):
        return "anonymous"
    if v.startswith(("named", "yes", "with my name", "name")):
        return "named"
    return None


def publication_from_text(text: str) -> str:
    """A free-text request: "not for publication" beats "don't name me" beats the default."""
    if _NOT_FOR_PUBLICATION.search(text):
        return "not_for_publication"
    return "anonymous" if is_confidential_request(text) else "named"


def is_confidential_request(text: str) -> bool:
    """An explicit request to keep the submission or the sender's name out of publication.

    Generic statements that something "is confidential" (e-mail disclaimers) do not count.
    """
    return bool(_CONFIDENTIAL_REQUESTS.search(text))


# ---------------------------------------------------------------------------------------------


def prose_of(text: str) -> str:
    """The text without its template lines ("Supplier: Veolia"), and nothing inferred from it."""
    return _split_template(text)[1]


def extract_fields(text: str) -> Fields:
    """All evidence fields from clean plain text; template lines first, the prose fills the gaps."""
    template, prose = _split_template(text)
    fields = Fields(prose=prose)

    fields.project = _value_or_none(template.get("project"))
    fields.public_body = _value_or_none(template.get("public_body"))
    fields.supplier = _value_or_none(template.get("supplier"))
    fields.service_area = _value_or_none(template.get("service_area"))
    fields.period = _value_or_none(template.get("period"))
    interests = template.get("declared_interests")
    # "None" is itself a declaration, so it is kept; only an empty value means nothing was said.
    fields.declared_interests = interests.strip() if interests and interests.strip() else None
    if "contract_value" in template:
        fields.contract_value_gbp = parse_money(template["contract_value"])
    if "savings" in template:
        fields.savings_gbp = parse_money(template["savings"])
    if "outcome" in template:
        fields.outcome = outcome_from_value(template["outcome"])
    else:
        fields.outcome = infer_outcome(prose)

    confidential = template.get("confidential", "").strip()
    if confidential and _NO.match(confidential):
        fields.confidential = False
    elif confidential and _YES.match(confidential):
        fields.confidential = True
    else:
        fields.confidential = is_confidential_request(prose)

    chosen = publication_from_value(template["publication"]) if "publication" in template else None
    if chosen is None and confidential and _NO.match(confidential):
        chosen = "named"  # the template's explicit "Confidential: no" beats wording in the prose
    if chosen is None:
        chosen = publication_from_text(prose)
        if chosen == "named" and fields.confidential:
            chosen = "anonymous"  # "Confidential: yes" asks at least that the name be kept out
    fields.publication = chosen
    # Asking not to be named, or not to be published, is a request for confidentiality.
    fields.confidential = fields.confidential or chosen != "named"

    bodies = find_public_bodies(prose)
    if fields.public_body is None:
        full = [b for b in bodies if not b.initials]
        pick = full or bodies
        fields.public_body = pick[0].text if pick else None
    if fields.supplier is None:
        suppliers = find_suppliers(prose, bodies)
        candidates = [s for s in suppliers if s.text != fields.public_body]
        fields.supplier = candidates[0].text if candidates else None
    if fields.contract_value_gbp is None or fields.savings_gbp is None:
        contract, savings = classify_money(prose)
        if fields.contract_value_gbp is None and "contract_value" not in template:
            fields.contract_value_gbp = contract
        if fields.savings_gbp is None and "savings" not in template:
            fields.savings_gbp = savings
    if fields.period is None:
        fields.period = infer_period(prose)
    if fields.service_area is None:
        # Body names are blanked out so "Leeds Teaching Hospitals NHS Trust" does not read as health.
        blanked = prose
        for b in reversed(bodies):
            blanked = blanked[: b.start] + " " * (b.end - b.start) + blanked[b.end :]
        # The project title often names the service ("Payroll outsourcing"), so it is read too.
        fields.service_area = infer_service_area(f"{fields.project or ''}\n{blanked}")
    return fields


# ---------------------------------------------------------------------------------------------
# Summary

_GREETING = re.compile(
    r"^(?:dear|hi|hello|hiya|good\s+(?:morning|afternoon|evening)|to\s+whom)\b.{0,50}$", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)]*(?=\s)")


def make_summary(prose: str, limit: int = 600) -> str:
    """The opening of the prose in at most `limit` characters, whitespace collapsed.

    A lone greeting paragraph ("Dear team,") is skipped. When the text is too long it is cut at the
    last sentence end that leaves at least half the limit, else at the last word boundary, and "…"
    is appended (counted in the limit).
    """
    paragraphs = [p for p in re.split(r"\n\s*\n", prose) if p.strip()]
    if len(paragraphs) > 1 and _GREETING.match(paragraphs[0].strip()):
        paragraphs = paragraphs[1:]
    text = " ".join(" ".join(p.split()) for p in paragraphs)
    if len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    room = limit - 1  # keep a character for the ellipsis
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() <= room - 1]
    if ends and ends[-1] >= limit // 2:
        return text[: ends[-1]] + " …"
    cut = text.rfind(" ", 0, room + 1)
    if cut <= 0:
        return text[:room] + "…"
    return text[:cut].rstrip(" ,;:-–—") + "…"
