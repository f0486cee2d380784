"""The evidence pack: what the APPG sees, built from the approved records.

`collect()` reads the records with their attachments and follow-ups and applies the export rules;
`render()` turns the result into HTML (print it from a browser for an A4 PDF), Markdown, CSV or
JSONL. The same rules apply to every format, because every format leaves the building:

- withdrawn records are never included, whatever status is asked for;
- records marked "not for publication" are left out, unless `include_unpublished` builds the
  internal pack, in which case they are included and marked "Not for publication" everywhere;
- anonymous (and not-for-publication) records carry no submitter name, e-mail address or Slack
  user, and the name is scrubbed from their own text (summary, body, attachment names and text,
  follow-ups), with the names their address or Slack handle spells ("bob.hidden") and the full
  names of whoever wrote the messages they forwarded; the full names of every contributor who is
  not named go from every record, whatever the status of their own;
- direction overrides (U+202E and kin) are dropped from every text: they make text read as
  something else;
- nobody's e-mail address is exported (named contributors are named, not made contactable), and
  personal contact details in any evidence text become "[contact details removed]" (bot.redact);
- Message-IDs are dropped: they often embed the sender's address and mean nothing to a reader.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot import campaigns, redact
from bot.convert import record_from_submission
from bot.parsing.fields import prose_of
from bot.privacy import ERASED
from bot.record import JSON_KEYS, AttachmentInfo, EvidenceRecord, Status
from bot.settings import Settings, get_settings
from bot.templating import render as render_template
from storage import repo
from storage.db import unit_of_work
from storage.models import FollowUp, Submission

T = TypeVar("T")
Progress = Callable[[Iterable[Any], int], Iterable[Any]]
"""Wraps the records being read (and their count), e.g. in a tqdm bar; must yield them unchanged."""

FORMATS = ("html", "md", "csv", "jsonl")

# Kinds of public body, in the order the overview lists them.
BODY_KINDS: dict[str, str] = {
    "council": "Council",
    "nhs": "NHS",
    "fire": "Fire and rescue",
    "police": "Police",
    "ambulance": "Ambulance",
    "combined_authority": "Combined authority",
    "central_government": "Central government",
    "other": "Other",
}

OUTCOME_LABELS = {"success": "Success", "failure": "Failure", "mixed": "Mixed", "unknown": "Unclear"}

# First match wins, so the more specific kinds come first: "London Ambulance Service NHS Trust" is
# an ambulance service, "County Durham and Darlington Fire and Rescue Service" is fire, not a
# council, and "West Midlands Combined Authority" is not a council either.
_BODY_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        ("ambulance", r"\bambulance\b"),
        ("fire", r"\bfire\b"),
        ("police", r"\b(police|constabulary|crime commissioner)\b"),
        ("nhs", r"\b(nhs|integrated care|icb|ccg|clinical commissioning|hospitals?|health board|primary care"
                r"|health service)\b"),
        # Schools and universities are not what this inquiry means by a public body; an academy
        # *trust* is not an NHS trust, so this comes before the bare "trust" rule.
        ("other", r"\b(academy|academies|school|university|college)\b"),
        ("nhs", r"\btrust\b"),
        ("combined_authority", r"\b(combined (county )?authority|greater london authority|mayoral)\b"),
        ("council", r"\b(council|borough|county|district|city of london corporation|metropolitan|unitary"
                    r"|parish)\b"),
        ("central_government", r"\b(department|dept|ministry|hm|hmrc|hmpps|his majesty'?s|her majesty'?s"
                               r"|home office|cabinet office|foreign office|treasury|agency|dwp|dfe|mod|dhsc"
                               r"|dvla|dvsa|government|prison service|border force|office for|executive)\b"),
    )
)


def classify_public_body(name: str | None) -> str:
    """The kind of a public body from its name: a key of BODY_KINDS ("other" when unsure or unnamed)."""
    if not name or not name.strip():
        return "other"
    for kind, pattern in _BODY_RULES:
        if pattern.search(name):
            return kind
    return "other"


@dataclass(frozen=True)
class Bar:
    label: str
    count: int
    width: float  # in the chart's SVG units, proportional to count


@dataclass(frozen=True)
class Chart:
    title: str
    bars: list[Bar]

    @property
    def height(self) -> int:
        return 12 + 26 * len(self.bars)


@dataclass
class PackAttachment:
    name: str
    size: str


@dataclass
class PackFollowUp:
    received: str
    subject: str | None
    paragraphs: list[str]


@dataclass
class PackRecord:
    """One record as the pack prints it; `record` is the redacted record CSV and JSONL are made from."""

    record: EvidenceRecord
    reference: str
    anchor: str
    heading: str
    contributor: str | None  # None: anonymous
    not_for_publication: bool
    late: bool
    received: str
    summary: str | None
    facts: list[tuple[str, str]]
    paragraphs: list[str]
    attachments: list[PackAttachment]
    followups: list[PackFollowUp]
    body_kind: str
    campaign: PackCampaign | None = None


@dataclass
class PackCampaign:
    """A campaign, shown once: how many of its submissions this pack holds, and the names of the
    contributors who agreed to be named; the others are counted, never named."""

    count: int
    named: list[str]

    @property
    def unnamed(self) -> int:
        return self.count - len(self.named)


@dataclass
class Pack:
    inquiry_title: str
    generated: date
    status: str | None
    include_unpublished: bool
    records: list[PackRecord] = field(default_factory=list)
    period_start: date | None = None
    period_end: date | None = None
    by_outcome: list[tuple[str, int]] = field(default_factory=list)
    by_service_area: list[tuple[str, int]] = field(default_factory=list)
    by_body_kind: list[tuple[str, int]] = field(default_factory=list)

    @property
    def period(self) -> str:
        if self.period_start is None or self.period_end is None:
            return "no evidence yet"
        if self.period_start == self.period_end:
            return long_date(self.period_start)
        return f"{long_date(self.period_start)} to {long_date(self.period_end)}"

    @property
    def generated_text(self) -> str:
        return long_date(self.generated)

    @property
    def counts(self) -> dict[str, int]:
        recs = self.records
        # Submissions, not entries: a campaign is printed once but counts every member.
        total = sum(r.campaign.count if r.campaign else 1 for r in recs)
        named = sum(len(r.campaign.named) if r.campaign else r.contributor is not None for r in recs)
        return {
            "records": total,
            "named": named,
            "anonymous": total - named,
            "late": sum(r.late for r in recs),
            "not_for_publication": sum(r.not_for_publication for r in recs),
            "attachments": sum(len(r.attachments) for r in recs),
            "followups": sum(len(r.followups) for r in recs),
        }

    @property
    def what(self) -> str:
        """How the records were chosen, for the cover ("approved evidence")."""
        return f"{self.status.replace('_', ' ')} evidence" if self.status else "evidence"

    @property
    def charts(self) -> list[Chart]:
        return [
            _chart("By outcome", self.by_outcome),
            _chart("By service area", self.by_service_area),
            _chart("By kind of public body", self.by_body_kind),
        ]


def long_date(d: date | datetime) -> str:
    return f"{d.day} {d:%B %Y}"


def money(v: int | None) -> str:
    return f"£{v:,}" if v is not None else "Not stated"


def file_size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        kb = n / 1024
        return f"{kb:.1f} KB" if kb < 10 else f"{kb:.0f} KB"
    mb = n / (1024 * 1024)
    return f"{mb:.1f} MB"


def paragraphs(text: str | None) -> list[str]:
    """The evidence as paragraphs: split on blank lines, each stripped; lines within one kept."""
    if not text:
        return []
    return [p.strip() for p in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")) if p.strip()]


def evidence_prose(body: str | None) -> str | None:
    """The body without its template lines ("Supplier: Veolia"): those are the key facts table."""
    # Only the split: the pack shows the stored (reviewed) fields, so nothing is inferred again here.
    return prose_of(body) if body else body


def _chart(title: str, counts: Sequence[tuple[str, int]], width: float = 320.0) -> Chart:
    top = max((n for _, n in counts), default=0) or 1
    return Chart(title, [Bar(label if len(label) <= 34 else label[:33] + "…", n, round(width * n / top, 1))
                         for label, n in counts])


def _ranked(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0].lower()))


def _hidden(rec: EvidenceRecord) -> bool:
    """Whether the contributor's identity is kept out: anonymous, and not-for-publication too
    (someone who asked for their evidence not to be published did not ask to be named in it)."""
    return rec.publication != "named"


_TEXT_FIELDS = ("title", "project", "public_body", "supplier", "service_area", "period", "declared_interests",
                "summary", "body", "decision_reason")


@dataclass(frozen=True)
class Elsewhere:
    """The full names of every contributor who is not named (any status: someone whose evidence is
    not for publication, pending or withdrawn must not be named in someone else's), which go from
    every record's text and attachment names, not only their own."""

    names: tuple[str, ...] = ()

    @classmethod
    def of(cls, names: Iterable[str | None]) -> Elsewhere:
        return cls(tuple(n for n in names if n))

    @cached_property
    def patterns(self) -> list[re.Pattern[str]]:
        return redact.name_patterns(self.names, parts=False)

    @cached_property
    def sequences(self) -> frozenset[tuple[str, ...]]:
        return redact.full_names(self.names)

    @cached_property
    def _words(self) -> list[tuple[str, frozenset[str]]]:
        return [(n, frozenset(seq)) for n in self.names for seq in redact.full_names([n])]

    def within(self, texts: Iterable[str | None]) -> Elsewhere:
        """Only the names whose every word is somewhere in `texts`: the others cannot be there. With
        thousands of contributors, one pattern of all their names cost a tenth of a second for
        each record's text; the words are looked up in a set instead."""
        present = redact.word_set(texts)
        return Elsewhere(tuple(n for n, words in self._words if words <= present))


# How the parser heads a forwarded message: "Forwarded message from Robert Hidden <r@x>, subject ...".
_FORWARDED_FROM = re.compile(r"^Forwarded message from ([^<>\n]+?)\s*(?:<[^>\n]*>)?(?:, subject .*)?:$", re.MULTILINE)


def _forwarded_names(rec: EvidenceRecord) -> list[str]:
    """Who wrote the messages an anonymous contributor forwarded: most often themself, at work."""
    return [m.group(1) for m in _FORWARDED_FROM.finditer(rec.body or "")]


@dataclass(frozen=True)
class _Names:
    patterns: list[re.Pattern[str]]
    words: frozenset[str]
    sequences: frozenset[tuple[str, ...]]


def _names(rec: EvidenceRecord, other_names: Iterable[str | None], other_emails: Iterable[str | None],
           elsewhere: Elsewhere) -> _Names:
    if not _hidden(rec):
        return _Names(list(elsewhere.patterns), frozenset(), elsewhere.sequences)
    names = [rec.submitter_name, *other_names]
    emails = [rec.submitter_email, *other_emails]
    # A forwarded author's full name only: the parts of "Capita Customer Services" are not a person's.
    # Full names first: once a part has gone ("Robert [name removed]"), the whole no longer matches.
    forwarded = _forwarded_names(rec)
    pats = redact.name_patterns(forwarded, parts=False) + list(elsewhere.patterns) + redact.name_patterns(names, emails)
    if rec.submitter_slack_id:
        # Their Slack user ID too: their own text may mention it ("<@U0123>", from a message shortcut).
        pats.append(re.compile(rf"(?<![A-Za-z0-9]){re.escape(rec.submitter_slack_id)}(?![A-Za-z0-9])"))
    return _Names(
        pats,
        redact.name_words(names, emails),
        elsewhere.sequences | redact.full_names(forwarded),
    )


def redact_record(rec: EvidenceRecord, *, other_names: Iterable[str | None] = (),
                  other_emails: Iterable[str | None] = (), elsewhere: Elsewhere = Elsewhere()) -> EvidenceRecord:
    """A copy of `rec` fit to leave the service (see the module docstring for the rules).

    `other_names`, `other_emails`: more names and addresses of this record's contributor (how they
    signed a follow-up, and from where).
    `elsewhere`: the names that go from every record (see Elsewhere).
    """
    return _redacted(rec, _names(rec, other_names, other_emails, elsewhere))


def _redacted(rec: EvidenceRecord, names: _Names) -> EvidenceRecord:
    hidden = _hidden(rec)
    pats = names.patterns
    changes: dict[str, Any] = {k: redact.scrub(getattr(rec, k), pats) for k in _TEXT_FIELDS}
    changes["attachments"] = [
        AttachmentInfo(redact.scrub_filename(a.filename, pats, names.words, names.sequences), a.content_type,
                       a.size, a.sha256, redact.scrub(a.text, pats))
        for a in rec.attachments
    ]
    # A Slack user ID identifies its owner as surely as an address: it goes like the address.
    # So does an anonymous contributor's From domain (their employer): only the verdict stays.
    if rec.authenticity is not None and hidden:
        changes["authenticity"] = {**rec.authenticity, "from_domain": None}
    return replace(rec, submitter_name=None if hidden else _display_name(rec.submitter_name), submitter_email=None,
                   submitter_slack_id=None, message_id=None, **changes)


def _display_name(name: str | None) -> str | None:
    """A named contributor's name with any address in it taken out (a From: header with no display
    name gives the address itself as the name); None when nothing but contact details was there."""
    if not name or name.strip() == ERASED:
        return None  # erased: the record reads as an unnamed contributor's, not as "[erased]"'s
    left = " ".join(redact.scrub_contacts(redact.strip_bidi(name)).replace(redact.CONTACT, " ").split())
    left = left.strip(" <>()\"',;")
    return left or None


def _heading(ref: str, contributor: str | None, hidden: bool) -> str:
    who = "an anonymous contributor" if hidden else (contributor or "an unnamed contributor")
    return f"Written evidence submitted by {who} ({ref})"


def _facts(rec: EvidenceRecord) -> list[tuple[str, str]]:
    ns = "Not stated"
    return [
        ("Public body", rec.public_body or ns),
        ("Supplier", rec.supplier or ns),
        ("Project", rec.project or ns),
        ("Service area", rec.service_area or ns),
        ("Outcome", OUTCOME_LABELS.get(str(rec.outcome), str(rec.outcome))),
        ("Contract value", money(rec.contract_value_gbp)),
        ("Savings", money(rec.savings_gbp)),
        ("Period", rec.period or ns),
        ("Declared interests", rec.declared_interests or "None declared"),
    ]


def _pack_record(sub: Submission, rec: EvidenceRecord, followups: Sequence[FollowUp],
                 elsewhere: Elsewhere = Elsewhere()) -> PackRecord:
    hidden = _hidden(rec)
    elsewhere = elsewhere.within([*(getattr(rec, k) for k in _TEXT_FIELDS),
                                  *(t for a in rec.attachments for t in (a.filename, a.text)),
                                  *(t for f in followups for t in (f.subject, f.body))])
    # A follow-up may sign off differently ("A. Example"): those names go too on an anonymous record.
    other = [f.sender_name for f in followups] if hidden else []
    other_emails = [f.sender_email for f in followups] if hidden else []
    names = _names(rec, other, other_emails, elsewhere)  # once: the record and its follow-ups
    clean = _redacted(rec, names)
    pats = names.patterns
    ref = rec.reference or f"record {sub.id}"
    return PackRecord(
        record=clean,
        reference=ref,
        anchor=re.sub(r"[^A-Za-z0-9_-]+", "-", ref),
        heading=_heading(ref, clean.submitter_name, hidden),
        contributor=clean.submitter_name if not hidden else None,
        not_for_publication=rec.publication == "not_for_publication",
        late=bool(rec.late),
        received=long_date(rec.received_at) if rec.received_at else "date not known",
        summary=clean.summary,
        facts=_facts(clean),
        paragraphs=paragraphs(evidence_prose(clean.body)),
        attachments=[PackAttachment(a.filename or "(unnamed attachment)", file_size(a.size))
                     for a in clean.attachments],
        followups=[
            PackFollowUp(long_date(f.received_at), redact.scrub(f.subject, pats),
                         paragraphs(redact.scrub(f.body, pats)))
            for f in followups
        ],
        body_kind=classify_public_body(rec.public_body),
    )


def _as_campaign(entry: PackRecord, group: Sequence[Submission]) -> PackRecord:
    named = [n for x in group if x.publication == "named" and (n := _display_name(x.submitter_name))]
    campaign = PackCampaign(count=len(group), named=named)
    heading = f"Campaign: {len(group)} near-identical submissions ({entry.reference})"
    return replace(entry, campaign=campaign, heading=heading)


def _order(sub: Submission) -> tuple[bool, int, int]:
    return (sub.ref_no is None, sub.ref_no or 0, sub.id or 0)


def collect(
    engine: Engine,
    *,
    status: str | None = "approved",
    include_unpublished: bool = False,
    progress: Progress | None = None,
    settings: Settings | None = None,
    generated: date | None = None,
) -> Pack:
    """The pack of records with `status` (None: every status but withdrawn), in reference order.

    Raises ValueError for a status that does not exist or is never exported (withdrawn).
    """
    if status is not None and status not in {str(s) for s in Status}:
        raise ValueError(f"unknown status {status!r} (one of: {', '.join(s for s in Status)})")
    if status == Status.WITHDRAWN:
        raise ValueError("withdrawn records are never exported")
    settings = settings or get_settings()
    with unit_of_work(engine, read_only=True) as s:
        subs = [x for x in repo.list_submissions(s, status=status)
                if x.status != Status.WITHDRAWN and (include_unpublished or x.publication != "not_for_publication")]
        subs.sort(key=_order)
        ids = [x.id for x in subs if x.id is not None]
        atts = repo.attachments_of(s, submission_ids=ids)
        followups = repo.followups_for(s, submission_ids=ids)
        # Anonymous contributors' full names (only full names: a first name shared with someone
        # else is not theirs) are scrubbed from every record, not only their own; every such
        # contributor's, not only those in this pack (see Elsewhere).
        elsewhere = Elsewhere.of(s.exec(select(Submission.submitter_name).where(
            Submission.publication != "named", col(Submission.submitter_name).is_not(None))).all())
        camp = campaigns.info(s, subs)
        groups: dict[int, list[Submission]] = {}
        for x in subs:
            if x.campaign_id is not None:
                groups.setdefault(x.campaign_id, []).append(x)
        wrapped: Iterable[Submission] = progress(subs, len(subs)) if progress else subs
        records = []
        for sub in wrapped:
            group = groups.get(sub.campaign_id) if sub.campaign_id is not None else None
            if group and len(group) > 1 and sub is not group[0]:
                continue  # a campaign is shown once, as its earliest submission in the pack
            rec = record_from_submission(sub, atts.get(sub.id or 0, []), camp.get(sub.id or 0))
            entry = _pack_record(sub, rec, followups.get(sub.id or 0, []), elsewhere)
            if group and len(group) > 1:
                entry = _as_campaign(entry, group)
            records.append(entry)
    pack = Pack(inquiry_title=settings.inquiry_title, generated=generated or date.today(), status=status,
                include_unpublished=include_unpublished, records=records)
    when = [r.record.received_at for r in records if r.record.received_at]
    if when:
        pack.period_start, pack.period_end = min(when).date(), max(when).date()
    outcomes = Counter(str(r.record.outcome) for r in records)
    pack.by_outcome = [(label, outcomes[k]) for k, label in OUTCOME_LABELS.items() if outcomes[k]]
    pack.by_service_area = _ranked(Counter((r.record.service_area or "Not stated").strip() for r in records))
    kinds = Counter(r.body_kind for r in records)
    pack.by_body_kind = [(label, kinds[k]) for k, label in BODY_KINDS.items() if kinds[k]]
    return pack


# Rendering

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|~#])")
_MD_LINE_START = re.compile(r"^(\s*)([-+=]|\d+[.)])", re.MULTILINE)


def md_escape(text: object) -> str:
    """Text safe inside Markdown: markup characters backslash-escaped (so "<script>" in evidence
    stays text in any renderer), and a line that would start a list or rule escaped too."""
    s = _MD_SPECIAL.sub(r"\\\1", str(text))
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), s)


def md_cell(text: object) -> str:
    return md_escape(" ".join(str(text).split()))


def md_indent(text: str, by: int) -> str:
    """Continuation lines of a list item, indented so Markdown keeps them inside the item."""
    return text.replace("\n", "\n" + " " * by)


CSV_COLUMNS = [k for k in JSON_KEYS if k != "attachments"] + ["attachment_names", "public_body_kind"]


def _csv_safe(v: object) -> object:
    """A text cell a spreadsheet would run as a formula ("=HYPERLINK(...)" from a submitter) gets a
    leading apostrophe, the usual defence: the CSV is opened in Excel by staff."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def render_csv(pack: Pack) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
    w.writeheader()
    for r in pack.records:
        d = r.record.to_json()
        d.pop("attachments")
        d["attachment_names"] = "; ".join(a.name for a in r.attachments)
        d["public_body_kind"] = r.body_kind
        d["authenticity"] = (d["authenticity"] or {}).get("verdict")  # one word per cell: verified, failed…
        # The campaign's first reference: a spreadsheet groups and counts by it.
        d["campaign"] = (d["campaign"] or {}).get("id")
        w.writerow({k: _csv_safe(v) for k, v in d.items()})
    return buf.getvalue()


def render_jsonl(pack: Pack) -> str:
    return "".join(json.dumps(r.record.to_json(), ensure_ascii=False) + "\n" for r in pack.records)


def render(pack: Pack, fmt: str) -> str:
    """The pack as `fmt` (one of FORMATS)."""
    if fmt == "csv":
        return render_csv(pack)
    if fmt == "jsonl":
        return render_jsonl(pack)
    if fmt == "html":
        return render_template("pack.html.j2", pack=pack, body_kinds=BODY_KINDS)
    if fmt == "md":
        return render_template("pack.md.j2", pack=pack, md=md_escape, cell=md_cell, indent=md_indent)
    raise ValueError(f"unknown format {fmt!r}")
