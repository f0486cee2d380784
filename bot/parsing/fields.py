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
from bisect import bisect_left
from dataclasses import dataclass

from bot.parsing.bodies import Found, find_public_bodies, find_suppliers
from bot.parsing.money import MoneyMatch, find_money, parse_money
from bot.parsing.scan import Anchored, finditer_at, search_near_years, word_starts
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


_SEPARATOR_CHARS = re.compile(r"[:|\t\-–—]")  # a template line has one of these (see _SEPARATORS)


def _template_line(line: str) -> tuple[str, str] | None:
    """(field, value) if `line` is a template line, else None."""
    if _SEPARATOR_CHARS.search(line) is None:
        return None
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
#
# Evaluative phrases are found with ONE combined pattern (each alternative a named group that
# says its side and weight), sentence by sentence over at most MAX_PROSE characters. A phrase
# counts for more where the writer is giving a verdict: in the subject or a headline, or in a
# sentence that evaluates the project itself ("the contract was...", "Overall,...", "In short,...").
# So "the project was a failure" outweighs "a success" said of something else, and only clear
# verdicts on both sides make a message mixed.

MAX_PROSE = 20_000

_NEGATORS = re.compile(
    r"\b(?:not|never|no|without|hardly|barely|failed\s+to|unable\s+to|didn't|wasn't|isn't|hasn't|"
    r"haven't|weren't|won't|don't|doesn't|cannot|can't|far\s+from|anything\s+but|by\s+no\s+means|"
    r"less\s+than|nothing\s+like|rather\s+than|instead\s+of)\b(?:\s+[\w'’]+){0,2}\s*$",
    re.IGNORECASE,
)
# Someone else's claim ("the supplier hailed it as a success") is reported, not the writer's verdict.
_REPORTED = re.compile(
    r"\b(?:claim(?:s|ed|ing)?|call(?:s|ed|ing)?|hail(?:s|ed)|billed|touted|described|presented|promoted|branded|spun|"
    r"insist(?:s|ed)|boast(?:s|ed)|marketed|promised|expected|supposed|meant|intended|hoped)\b"
    r"(?:\s+[\w'’]+){0,5}\s*$",
    re.IGNORECASE,
)
# Words after "a success"/"a failure" that make it something else ("a success fee").
_NOT_VERDICT = (
    r"(?!\s+(?:fee|fees|criteria|criterion|factors?|measures?|rates?|metrics?|payments?|bonus|demand|points?"
    r"|modes?|to\s+\w+))"
)
# Up to two describing words ("a quiet success"), but never a negation, which must stay visible.
# Mixed adjectives are excluded too, so "a qualified success" is left to the mixed phrase.
_MIXED_ADJ = r"(?:partial(?:ly)?|qualified|limited|patchy|modest|moderate)"
_ADJ = rf"(?:(?!(?:not|never|no|hardly|{_MIXED_ADJ})\b)[\w-]+\s+){{0,2}}?"
# (pattern, weight, side): weight 2 is a clear verdict, 1 a hint; side s(uccess), f(ailure), m(ixed).
# Mixed phrases come first so "a qualified success" is read whole, not as "success".
_OUTCOME_PHRASES: list[tuple[str, int, str]] = [
    (r"mixed\s+(?:results?|picture|success|bag|record|outcomes?|blessing|experience|fortunes)", 2, "m"),
    (r"(?:results?|outcomes?|picture|record|performance|experience|evidence|verdict|reviews?)"
     r"\s+(?:\w+\s+){0,3}?(?:was|were|is|are|has\s+been|have\s+been|remains?|looks?)\s+"
     r"(?:\w+\s+)?mixed", 2, "m"),
    (r"mixed\s+at\s+best", 2, "m"),
    (rf"{_MIXED_ADJ}\s+success(?:ful)?", 2, "m"),
    (r"partly\s+successful", 2, "m"),
    (r"some\s+successes", 2, "m"),
    (r"curate's\s+egg|curate’s\s+egg", 2, "m"),
    (r"(?:some\s+)?(?:good|wins|gains|positives)\s+and\s+(?:some\s+)?(?:bad|losses|negatives)", 2, "m"),
    # success
    (r"deliver(?:ed|s|ing)?\s+(?:the\s+|real\s+|significant\s+|substantial\s+)?(?:promised\s+)?savings", 2, "s"),
    (r"achieved\s+(?:its\s+|the\s+)?(?:savings|targets)", 2, "s"),
    (r"exceed(?:ed|s|ing)?\s+(?:all\s+|its\s+|the\s+|every\s+|our\s+)?(?:targets?|expectations)", 2, "s"),
    (rf"(?:was|been|proved|proven|is|a|an)\s+{_ADJ}success\b{_NOT_VERDICT}", 2, "s"),
    (r"success\s+story", 2, "s"),
    (r"savings\b[^.;]{0,40}?\b(?:were|was|have\s+been|has\s+been)\s+(?:achieved|delivered|realised|realized)", 2, "s"),
    (r"(?:was|been|proved|proven|is|were|highly|very|hugely|largely|genuinely)\s+successful", 2, "s"),
    (r"a\s+successful\s+(?:project|contract|outsourcing|partnership|transfer|service|scheme|programme)", 2, "s"),
    (r"went\s+(?:very\s+|really\s+|remarkably\s+)?well", 2, "s"),
    (r"worked\s+(?:very\s+|really\s+|extremely\s+|remarkably\s+)?well", 2, "s"),
    (r"paid\s+off", 2, "s"),
    (r"(?:would|should|could)\s+(?:happily\s+)?(?:recommend\s+it|do\s+it\s+again)", 2, "s"),
    (r"met\s+(?:all\s+)?(?:its\s+|the\s+|every\s+)?(?:targets|kpis|milestones)", 1, "s"),
    (r"on\s+time\s+and\s+(?:on|within|under)\s+budget", 2, "s"),
    (r"under\s+budget", 1, "s"),
    (r"improv(?:ed|ement\s+in)\s+(?:performance|services?|collection\s+rates)", 1, "s"),
    (r"performance\s+improved", 1, "s"),
    (r"(?:gone|going|went|goes)\s+(?:ok|okay|fine|smoothly)\b", 1, "s"),
    (r"(?:waiting\s+(?:lists?|times?)|backlogs?|complaints)\s+(?:are|were|have|has)?\s*(?:down|fell|fallen|dropped|shrunk)",
     1, "s"),
    (r"(?:recovery|collection|completion|success|satisfaction)\s+rates?\s+(?:improved|rose|increased)", 1, "s"),
    (r"good\s+value\s+for\s+money", 1, "s"),
    (r"satisfaction\s+(?:rose|increased|improved)", 1, "s"),
    # failure
    (r"collaps(?:ed|e)", 2, "f"),
    (r"terminated(?:\s+early)?", 2, "f"),
    (r"ended\s+early", 2, "f"),
    (r"(?:brought|bringing|taken|taking|moved|moving|came|coming)\s+"
     r"(?:the\s+[\w\s]{1,30}?|services\s+|it\s+|them\s+)?back\s+in[-\s]?house", 2, "f"),
    (r"insourced", 2, "f"),
    (r"(?:went|gone|go|going|goes|reverted|returned|switched|moved)\s+back\s+to\s+"
     r"(?:pen\s+and\s+)?(?:paper|manual|spreadsheets|the\s+old\s+(?:system|way|contract))", 2, "f"),
    (r"revert(?:ed|ing)?\s+to\s+(?:paper|manual|the\s+old|the\s+previous|in[-\s]house)", 2, "f"),
    (r"overspen[dt]", 2, "f"),
    (r"over\s+budget", 2, "f"),
    (rf"fail(?:ed|ure|ing|s)?\b{_NOT_VERDICT}", 2, "f"),
    (r"went\s+into\s+(?:administration|liquidation|receivership)", 2, "f"),
    (r"missed\s+(?:every|all|most|its|the|key)?\s*(?:of\s+its\s+)?targets?", 2, "f"),
    (r"disast(?:er|rous)", 2, "f"),
    (r"(?:complete|total|absolute|utter)\s+(?:nightmare|mess|chaos)|nightmare", 2, "f"),
    (r"fiasco|shambles|debacle|omnishambles", 2, "f"),
    (r"scrapped", 2, "f"),
    (r"abandoned", 2, "f"),
    (r"never\s+materiali[sz]ed", 2, "f"),
    (r"did\s+not\s+deliver|didn't\s+deliver|did\s+not\s+work|didn't\s+work|never\s+worked", 2, "f"),
    (r"(?:costly|expensive|big|huge)\s+mistake", 2, "f"),
    (r"waste\s+of\s+(?:public\s+|taxpayers'?\s+)?money", 2, "f"),
    (r"(?:double|twice|treble|triple|three\s+times)\s+(?:the\s+|its\s+|our\s+)?(?:original\s+)?(?:budget|estimate)",
     2, "f"),
    (r"went\s+(?:badly\s+)?wrong", 1, "f"),
    (r"(?:is|was|are|were|got|became|has\s+got|have\s+got)\s+(?:much\s+|far\s+|a\s+lot\s+)?worse\b", 1, "f"),
    (r"more\s+expensive", 1, "f"),
    (r"never\s+(?:realised|realized|delivered|achieved)", 2, "f"),
    (r"(?:quality|standards|morale)\s+(?:fell|dropped|declined|deteriorated|suffered|plummeted)", 1, "f"),
    (r"(?:staff\s+)?turnover\s+(?:rose|doubled|trebled|tripled|soared)", 1, "f"),
    (r"went\s+(?:very\s+|really\s+|extremely\s+|so\s+)?badly(?!\s+wrong)", 2, "f"),
    (r"costs?\s+(?:doubled|trebled|tripled|soared|spiral(?:l)?ed|ballooned|escalated)", 1, "f"),
    (r"poor\s+(?:performance|service|value)", 1, "f"),
    (r"performance\s+(?:deteriorated|declined|worsened|fell)", 1, "f"),
    (r"complaints\s+(?:rose|increased|soared|doubled|trebled)", 1, "f"),
    (r"cost\s+overruns?", 1, "f"),
    (r"backlogs?", 1, "f"),
    (r"penalt(?:y|ies)", 1, "f"),
]
_OUTCOME_RE = re.compile(
    r"\b(?:" + "|".join(f"(?P<p{i}>{p})" for i, (p, _, _) in enumerate(_OUTCOME_PHRASES)) + ")",
    re.IGNORECASE,
)
_PHRASE_INFO = {f"p{i}": (w, side) for i, (_, w, side) in enumerate(_OUTCOME_PHRASES)}
# Where a phrase can start: the first word of every phrase above (or its beginning), so the big
# pattern is tried at a few word starts instead of every position (bot.parsing.scan). Keep this
# in step with _OUTCOME_PHRASES: a phrase whose first word is missing here is never found.
_OUTCOME = Anchored(_OUTCOME_RE, word_starts([
    "mix", "result", "outcome", "picture", "record", "perform", "experienc", "evidenc", "verdict", "review",
    "partial", "partly", "qualified", "limited", "patchy", "modest", "moderate", "some", "curate", "good", "wins",
    "gains", "positives", "deliver", "achieved", "exceed", "success", "savings", "went", "worked",
    r"paid(?=\s+off)", *(w + r"(?=\s+(?:happily\s+)?(?:recommend|do))" for w in ("would", "should", "could")), "met",
    r"on(?=\s+time)", r"under(?=\s+budget)", "improv", "satisfaction", "collaps", "terminated", "ended",
    "brought", "bringing", "taken", "taking", "moved", "moving", "came", "coming", "insourced", "go", "returned",
    "switched", "revert", r"over(?=spen|\s+budget)", "fail", "missed", "disast", "fiasco", "shambles", "debacle",
    "nightmare", *(w + r"(?=\s+(?:nightmare|mess|chaos))" for w in ("complete", "total", "absolute", "utter")),
    "double", "twice", "treble", "triple", r"three(?=\s+times)", "quality", "standards", "morale",
    r"staff(?=\s+turnover)", "turnover",
    "is", "are", "was", "were", "got", "became", "has", "have", "gone", "going", "goes", "waiting", "recovery",
    "collection", "completion", r"more(?=\s+expensive)",
    "omnishambles", "scrapped", "abandoned", "never", "did",
    *(w + r"(?=\s+mistake)" for w in ("costly", "expensive", "big", "huge")),
    r"waste(?=\s+of)", "poor", "complaints", "backlog", "penalt",
    r"costs?(?=\s+(?:overrun|doubled|trebled|tripled|soared|spiral|balloon|escalat))",
    *(w + r"(?=\s+(?:[\w-]+\s+){0,2}success)"
      for w in ("was", "been", "proved", "proven", "is", "an", "a", "were", "highly", "very", "hugely", "largely",
                "genuinely")),
]))
# A sentence that evaluates the project, or sums up: its phrases are verdicts.
_VERDICT_FRAME = re.compile(
    r"\b(?:overall|in\s+short|in\s+summary|to\s+sum\s+up|in\s+conclusion|all\s+in\s+all|on\s+balance"
    r"|in\s+my\s+(?:view|opinion|experience)|(?:my|our|the)\s+verdict|bottom\s+line|looking\s+back"
    r"|in\s+hindsight|frankly|honestly|put\s+simply|simply\s+put)\b"
    r"|\b(?:the|this|our|their|that|its)\s+(?:whole\s+|entire\s+|new\s+)?(?:project|contract|outsourcing|scheme"
    r"|programme|program|deal|arrangement|partnership|transfer|experiment|pilot|initiative|roll-?out|change"
    r"|system|venture|exercise|move|switch|migration|privatisation|procurement|service)s?\b"
    r"(?:\s+[\w'’-]+){0,6}?\s+(?:was|is|were|are|has\s+been|have\s+been|had\s+been|proved|proven"
    r"|turned\s+out|ended(?:\s+up)?|became|remains|looks)\b"
    r"|^\s*(?:it|this|that)\s+(?:was|has\s+been|proved|turned\s+out|is)\b",
    re.IGNORECASE,
)
_SENTENCES = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
# A verdict in a headline or verdict sentence scores 2 x 2: one such on each side makes "mixed".
_STRONG = 4


def _clause_before(text: str, start: int) -> str:
    window = text[max(0, start - 50) : start]
    # "but" starts a new clause, except in "anything but", which is a negation.
    return re.split(r"[.;:!?,]|(?<!anything )\bbut\b", window)[-1]


def _negated(text: str, start: int) -> bool:
    """True if one of the few words before `start` (same clause) negates the phrase."""
    return bool(_NEGATORS.search(_clause_before(text, start)))


@dataclass
class _Tally:
    success: int = 0
    failure: int = 0
    best_success: int = 0
    best_failure: int = 0
    best_mixed: int = 0

    def add(self, side: str, weight: int) -> None:
        if side == "m":
            self.best_mixed = max(self.best_mixed, weight)
        elif side == "s":
            self.success += weight
            self.best_success = max(self.best_success, weight)
        else:
            self.failure += weight
            self.best_failure = max(self.best_failure, weight)


def _score_sentence(sentence: str, factor: int, tally: _Tally, starts: list[int] | None = None) -> None:
    """`starts`: where a phrase can start in `sentence`, if the caller knows (else scanned here)."""
    framed: bool | None = None  # whether the sentence is a verdict: looked at only if it has a phrase
    found = _OUTCOME.finditer(sentence) if starts is None else finditer_at(_OUTCOME_RE, sentence, starts)
    for m in found:
        if framed is None:
            framed = bool(_VERDICT_FRAME.search(sentence))
            if framed:
                factor = max(factor, 2)
        weight, side = _PHRASE_INFO[m.lastgroup or ""]
        before = _clause_before(sentence, m.start())
        if _NEGATORS.search(before):
            if side == "m":
                continue  # "not a mixed picture" says nothing clear either way
            # A negated phrase counts for the other side: "was not a success", "far from a failure".
            side = "f" if side == "s" else "s"
        if _REPORTED.search(before):
            # Someone else's claim is a hint at most, never the writer's verdict.
            tally.add(side, 1)
            continue
        tally.add(side, weight * factor)


def _headline(prose: str) -> str | None:
    """A short first line standing alone above the text reads as a headline ("A costly failure")."""
    first, sep, rest = prose.lstrip().partition("\n")
    first = first.strip()
    if sep and rest.startswith("\n") and 0 < len(first) <= 100 and not first.endswith((".", ",", ";", ":")):
        return first
    return None


def infer_outcome(text: str, headline: str | None = None) -> Outcome:
    """Outcome from prose (and the subject line, as `headline`), strongest statement first.

    Phrases in the headline or in a verdict sentence score double. An explicit "mixed" at least
    as strong as any verdict is mixed; strong verdicts on both sides are mixed; a strong verdict
    on one side decides. Without a strong verdict the balance decides as before: both sides at
    2 or more is mixed, a side scoring twice the other wins, less than one clear phrase is unknown.
    """
    text = unwrap(text[:MAX_PROSE])
    tally = _Tally()
    if headline:
        _score_sentence(headline[:500], 2, tally)
    first = _headline(text)
    if first is not None:
        _score_sentence(first, 2, tally)
        text = text.lstrip()[len(first) :]
    low = text.lower()
    # Where a phrase can start, in one scan of the whole text: a sentence with none is skipped.
    starts = [m.start() for m in _OUTCOME.starts.finditer(low)] if len(low) == len(text) else None
    for m in _SENTENCES.finditer(text):
        if starts is None:
            _score_sentence(m.group(0), 1, tally)
            continue
        i, j = bisect_left(starts, m.start()), bisect_left(starts, m.end())
        if i < j:
            _score_sentence(m.group(0), 1, tally, [p - m.start() for p in starts[i:j]])
    strongest = max(tally.best_success, tally.best_failure)
    if tally.best_mixed and tally.best_mixed >= strongest:
        return Outcome.MIXED
    if tally.best_success >= _STRONG and tally.best_failure >= _STRONG:
        return Outcome.MIXED
    if tally.best_success >= _STRONG:
        return Outcome.SUCCESS
    if tally.best_failure >= _STRONG:
        return Outcome.FAILURE
    if tally.best_mixed:
        return Outcome.MIXED
    success, failure = tally.success, tally.failure
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


_BULLET_START = re.compile(r"^\s*(?:[-*•·‣▪◦]\s|\d{1,2}[.)]\s|\|)")


def unwrap(text: str) -> str:
    """Joins lines that a mail client wrapped mid-sentence, so "worth\n£30m" reads as one phrase.

    A line break is kept after sentence or heading punctuation, before a blank line, and before
    a list item; "£1,200,\n000" is closed up without a space.
    """
    lines = text.split("\n")
    out: list[str] = []
    for line in lines:
        if out and out[-1].strip() and line.strip() and not _BULLET_START.match(line):
            prev = out[-1].rstrip()
            if not prev.endswith((".", "!", "?", ":", ";")):
                if re.search(r"\d,$", prev) and re.match(r"\s*\d{3}\b", line):
                    out[-1] = prev + line.strip()
                else:
                    out[-1] = prev + " " + line.strip()
                continue
        out.append(line)
    return "\n".join(out)


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
    r"|\b(?:contract|deal|agreement)\s+of|\bcontract\s+(?:was|is)\s+worth"
    # "a contract with Capita for £3.25 million", "signed the deal at £30m", "awarded £12m"
    r"|\b(?:contract|deal|agreement|framework|tender)(?:\s+[\w'’&-]+){0,4}?\s+(?:for|at)"
    r"|\b(?:awarded|let|signed|won)(?:\s+(?:a|the|it|them))?"
    # "the contract was £30m", "the contract value is £12.5m", "the deal totalled £7m"
    r"|\b(?:contract|deal|agreement)(?:\s+(?:value|price|sum|cost))?\s+(?:was|is|totall?ed|came\s+to)"
    # "for ten years at a cost of £90m", "the ten-year deal (£175 million)"
    r"|\bat\s+a\s+(?:total\s+)?cost\s+of|\b(?:contract|deal|agreement)\s*\("
    # "contracted vehicle maintenance to Acme Ltd for £2.4m", "the contract with CGI ... cost £178m"
    r"|\b(?:contracted|outsourced)(?:\s+[\w'’&,-]+){0,10}?\s+for"
    r"|\b(?:contracts?|deals?|agreements?)\b(?:\s+[\w'’&,()-]+){0,8}?\s+cost)"
    rf"{_QUALIFIER}\s*$",
    re.IGNORECASE,
)
# An amount measured against a plan is an overrun, not a value: "the contract was £2m over budget".
_AGAINST_PLAN = re.compile(
    r"^\s*(?:(?:over|above|under|below)\s+(?:the\s+)?(?:budget|estimate|forecast|plan)|(?:more|less|higher|lower)\s+than)",
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
    """(contract value, savings) from prose; the first clear one of each, unclear amounts ignored.

    Wrapped lines are joined first, so "worth\n£30m" reads as it was meant.
    """
    text = unwrap(text[:MAX_PROSE])
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
        elif (
            contract is None
            and (_CONTRACT_BEFORE.search(before) or _CONTRACT_AFTER.match(after))
            and not _AGAINST_PLAN.match(after)
        ):
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
    m = search_near_years(_PERIOD_RANGE, text)
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
    m = search_near_years(_PERIOD_DURATION, text, before=200, after=10)
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
    # "keep my name out of it", "leave my name off", "I'd rather not be named"
    r"|\b(?:keep|leave)\s+my\s+name\s+(?:out|off)\b|\b(?:rather|prefer)\s+not\s+(?:to\s+)?be\s+named\b"
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
# Where a request can start: the first word of each alternative above (bot.parsing.scan).
_CONFIDENTIAL = Anchored(_CONFIDENTIAL_REQUESTS, word_starts([
    "please", r"do(?=\s+not)", "don", r"not(?=\s+to)", "wish", "want", "would", "prefer", "ask", "need", "like",
    "remain", "keep", "leave", "rather", "treat", "hold", r"not(?=\s+for)", r"off(?=\s+the)", "submit", "send", "writ",
    r"in(?=\s+(?:strict\s+)?confidence)", "my",
]))
_YES = re.compile(r"^(?:yes|y|true|please|confidential|anonymous|yes\b.*)$", re.IGNORECASE)
_NO = re.compile(r"^(?:no|n|false|none|not\s+confidential|no\b.*|happy\s+to\s+be\s+named.*)$", re.IGNORECASE)


_NOT_FOR_PUBLICATION = re.compile(
    r"\bnot\s+for\s+publication\b|\boff\s+the\s+record\b|\bdo\s+not\s+publish\s+(?:this|it|any\s+of\s+this)\b"
    r"|\bfor\s+the\s+(?:group|committee|members)'?s?\s+eyes\s+only\b",
    re.IGNORECASE,
)


_NOT_PUBLISHED = Anchored(_NOT_FOR_PUBLICATION, word_starts(
    [r"not(?=\s+for)", r"off(?=\s+the)", r"do(?=\s+not)", r"for(?=\s+the)"]))


class _Requests:
    """What the prose asks about publication: both patterns tried from one scan of the text."""

    _starts = re.compile(_CONFIDENTIAL.starts.pattern + "|" + _NOT_PUBLISHED.starts.pattern)

    def __init__(self, text: str) -> None:
        low = text.lower()
        if len(low) != len(text):
            self.confidential = _CONFIDENTIAL_REQUESTS.search(text) is not None
            self.not_published = _NOT_FOR_PUBLICATION.search(text) is not None
            return
        starts = [m.start() for m in self._starts.finditer(low)]
        self.confidential = next(finditer_at(_CONFIDENTIAL_REQUESTS, text, starts), None) is not None
        self.not_published = next(finditer_at(_NOT_FOR_PUBLICATION, text, starts), None) is not None

    @property
    def publication(self) -> str:
        if self.not_published:
            return "not_for_publication"
        return "anonymous" if self.confidential else "named"


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
    if _NOT_PUBLISHED.search(text):
        return "not_for_publication"
    return "anonymous" if is_confidential_request(text) else "named"


def is_confidential_request(text: str) -> bool:
    """An explicit request to keep the submission or the sender's name out of publication.

    Generic statements that something "is confidential" (e-mail disclaimers) do not count.
    """
    return _CONFIDENTIAL.search(text) is not None


# ---------------------------------------------------------------------------------------------


def _pick_body(bodies: list[Found]) -> str | None:
    """The first full name, else the first initials."""
    full = [b for b in bodies if not b.initials]
    pick = full or bodies
    return pick[0].text if pick else None


def _pick_supplier(suppliers: list[Found], public_body: str | None) -> str | None:
    candidates = [s for s in suppliers if s.text != public_body]
    return candidates[0].text if candidates else None


def prose_of(text: str) -> str:
    """The text without its template lines ("Supplier: Veolia"), and nothing inferred from it."""
    return _split_template(text)[1]


def extract_fields(text: str, subject: str | None = None) -> Fields:
    """All evidence fields from clean plain text; template lines first, the prose fills the gaps.

    `subject` is the message's subject line (reply and tag prefixes removed): it is read as a
    headline for the outcome, and names the public body or supplier when the text does not.
    Inference from prose reads the first MAX_PROSE characters only.
    """
    template, prose = _split_template(text)
    fields = Fields(prose=prose)
    subject = (subject or "")[:500]
    prose = prose[:MAX_PROSE]

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
        fields.outcome = infer_outcome(prose, headline=subject or None)

    confidential = template.get("confidential", "").strip()
    requests = _Requests(prose)
    if confidential and _NO.match(confidential):
        fields.confidential = False
    elif confidential and _YES.match(confidential):
        fields.confidential = True
    else:
        fields.confidential = requests.confidential

    chosen = publication_from_value(template["publication"]) if "publication" in template else None
    if chosen is None and confidential and _NO.match(confidential):
        chosen = "named"  # the template's explicit "Confidential: no" beats wording in the prose
    if chosen is None:
        chosen = requests.publication
        if chosen == "named" and fields.confidential:
            chosen = "anonymous"  # "Confidential: yes" asks at least that the name be kept out
    fields.publication = chosen
    # Asking not to be named, or not to be published, is a request for confidentiality.
    fields.confidential = fields.confidential or chosen != "named"

    bodies = find_public_bodies(prose)
    if fields.public_body is None:
        fields.public_body = _pick_body(bodies)
    if fields.supplier is None:
        fields.supplier = _pick_supplier(find_suppliers(prose, bodies), fields.public_body)
    if subject and (fields.public_body is None or fields.supplier is None):
        # "Re: Kent CC waste contract" and a body that only says "the council": the subject names it.
        subject_bodies = find_public_bodies(subject)
        if fields.public_body is None:
            fields.public_body = _pick_body(subject_bodies)
        if fields.supplier is None:
            fields.supplier = _pick_supplier(find_suppliers(subject, subject_bodies), fields.public_body)
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
