"""Personal data on request and on schedule: erasing one person from the store, purging old records.

Erasure (`evidence-bot erase --email ADDRESS | --slack-user U…`) keeps every record but takes the
person out of it:

- records they submitted lose their name, address and Slack user (name -> "[erased]", address and
  user -> NULL: a NULL is never written to, where a placeholder address might be);
- their address and Slack user ID are replaced by "[erased]" wherever they appear, in anyone's
  record (body, summary, fields, attachment text, follow-ups, the audit trail, outbox payloads);
  their name only in the records they submitted or followed up, since the same name elsewhere
  may well be someone else;
- pending e-mails and DMs to them are cancelled (status `skipped`), and every queued payload is
  scrubbed too;
- the stored raw copy of every message they sent is replaced by a short stub that says so: the
  raw copy holds their address in headers we cannot enumerate, their name in encoded forms, and
  their attachments, so redacting bytes in place would leave personal data behind. The parsed
  record, scrubbed, is what remains. Other people's raw messages that merely mention their
  address have those bytes replaced in place (an address inside base64 or quoted-printable parts
  is not found that way: that is the known limit);
- each affected record gets an audit entry (actor "operator", action "erase") that names the
  person only by a SHA-256 of the address or user ID, so the trail can later answer "was this
  person erased?" for someone who already knows the address, and tell nobody else who it was.

The review summaries of affected records are re-rendered in Slack (a queued update), and so are
the follow-ups already posted under them (chat.update of each reply, whose ts the outbox kept).
DMs already sent in Slack went to the person themselves and are not touched.

Purging (`evidence-bot purge --older-than 365d --status rejected,withdrawn`) deletes closed records
whose last decision (or, undecided, their arrival) is older than the given age, with everything
that hangs off them: attachments, follow-ups, audit entries, outbox items and raw messages.

Both run in one transaction each: all of it happens, or none.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot import finding
from bot.outbox_kinds import SLACK_FILES, SLACK_FILES_DELETE, SLACK_THREAD, SLACK_UPDATE
from bot.record import Status
from storage import repo
from storage.db import unit_of_work
from storage.models import Attachment, Audit, CampaignBand, FollowUp, Inbound, OutboxItem, Submission
from storage.outbox import enqueue

ERASED = "[erased]"
CANCELLED = "cancelled: the recipient's personal data was erased"
_SUBMISSION_TEXT = ("title", "project", "public_body", "supplier", "service_area", "period", "declared_interests",
                    "summary", "body", "decision_reason", "parse_error", "automatic_reason", "decided_by")
_SLACK_ID = re.compile(r"[UW][A-Z0-9]{1,20}")
# Statuses a purge may delete: decided or filed. Open records are still someone's work in progress.
PURGEABLE = (Status.REJECTED, Status.WITHDRAWN, Status.APPROVED, Status.FILED)
_CHUNK = 500


class PrivacyError(Exception):
    """Bad input to erase or purge; the message is one line fit for the operator."""


# --------------------------------------------------------------------------- erase


@dataclass(frozen=True)
class Subject:
    """The person to erase: one e-mail address or one Slack user ID."""

    email: str | None = None
    slack_user: str | None = None

    @classmethod
    def of(cls, *, email: str | None = None, slack_user: str | None = None) -> Subject:
        if (email is None) == (slack_user is None):
            raise PrivacyError("name exactly one person: --email ADDRESS or --slack-user U…")
        if email is not None:
            email = email.strip().lower()
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
                raise PrivacyError(f"not an e-mail address: {email!r}")
            return cls(email=email)
        assert slack_user is not None
        slack_user = slack_user.strip()
        if not _SLACK_ID.fullmatch(slack_user):
            raise PrivacyError(f"not a Slack user ID (U… or W…): {slack_user!r}")
        return cls(slack_user=slack_user)

    @property
    def shown(self) -> str:
        return self.email or self.slack_user or "?"

    @property
    def digest(self) -> str:
        """What the audit keeps of the person: a hash, so the trail itself holds no address."""
        ident = f"email:{self.email}" if self.email else f"slack:{self.slack_user}"
        return "sha256:" + hashlib.sha256(ident.encode()).hexdigest()

    def patterns(self) -> list[re.Pattern[str]]:
        """The identifiers that are erased wherever they appear."""
        if self.email:
            return [re.compile(re.escape(self.email), re.IGNORECASE)]
        assert self.slack_user
        return [re.compile(rf"(?<![A-Za-z0-9]){re.escape(self.slack_user)}(?![A-Za-z0-9])")]

    def raw_patterns(self) -> list[re.Pattern[bytes]]:
        return [re.compile(p.pattern.encode(), p.flags & re.IGNORECASE) for p in self.patterns()]


def name_pattern(name: str) -> re.Pattern[str] | None:
    """A name as a whole-word pattern, any whitespace between its parts; None for one too short
    to erase without wrecking unrelated words."""
    parts = name.replace(ERASED, "").split()
    if not parts or len("".join(parts)) < 3:
        return None
    return re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, parts)) + r"(?!\w)", re.IGNORECASE)


def scrub(text: str | None, patterns: Sequence[re.Pattern[str]]) -> str | None:
    if not text:
        return text
    for p in patterns:
        text = p.sub(ERASED, text)
    return text


def _scrub_json(value: Any, patterns: Sequence[re.Pattern[str]]) -> Any:
    if isinstance(value, str):
        return scrub(value, patterns)
    if isinstance(value, list):
        return [_scrub_json(v, patterns) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_json(v, patterns) for k, v in value.items()}
    return value


@dataclass
class Erased:
    records: set[int] = field(default_factory=set)
    followups: set[int] = field(default_factory=set)
    outbox: set[int] = field(default_factory=set)
    inbound: set[int] = field(default_factory=set)

    def line(self) -> str:
        return (f"erased from {len(self.records)} record(s), {len(self.followups)} follow-up(s), "
                f"{len(self.outbox)} outbox item(s), {len(self.inbound)} stored message(s)")


def _set(obj: Any, name: str, value: Any) -> bool:
    if getattr(obj, name) == value:
        return False
    setattr(obj, name, value)
    return True


def _contains(column: Any, needle: str) -> Any:
    # A prefilter only (LIKE's _ matches any character); the patterns decide what is replaced.
    return func.lower(column).contains(needle.lower(), autoescape=True)


def stub(inbound: Inbound, when: datetime) -> bytes:
    """What replaces the raw copy of an erased person's message."""
    if inbound.channel == "slack":
        return json.dumps({"erased": when.isoformat(timespec="seconds")}).encode()
    return (f"From: {ERASED}\r\nSubject: {ERASED}\r\nX-Evidence-Bot-Erased: {when:%Y-%m-%dT%H:%M:%SZ}\r\n\r\n"
            "The original message was removed when its sender's personal data was erased.\r\n"
            "The record filed from it is kept, anonymised.\r\n").encode()


def erase(engine: Engine, who: Subject, *, dry_run: bool = False) -> Erased:
    """Erases `who` everywhere (see the module docstring); with dry_run, counts and rolls back."""
    with unit_of_work(engine, dry_run=dry_run) as s:
        return _erase(s, who)


def _erase(s: Session, who: Subject) -> Erased:
    done = Erased()
    now = datetime.now(UTC)
    ids = who.patterns()
    needle = who.email or who.slack_user or ""

    # Whose is what: the records they submitted and the follow-ups they sent.
    if who.email:
        own = list(s.exec(select(Submission).where(func.lower(Submission.submitter_email) == who.email)).all())
        own_fus = list(s.exec(select(FollowUp).where(func.lower(FollowUp.sender_email) == who.email)).all())
    else:
        own = list(s.exec(select(Submission).where(Submission.slack_user_id == who.slack_user)).all())
        own_fus = []
    names = {n for n in [x.submitter_name for x in own] + [f.sender_name for f in own_fus] if n and n != ERASED}
    theirs = {x.id for x in own} | {f.submission_id for f in own_fus}
    personal = ids + [p for n in sorted(names, key=len, reverse=True) if (p := name_pattern(n))]

    def patterns_for(submission_id: int | None) -> list[re.Pattern[str]]:
        return personal if submission_id in theirs else ids

    # Records mentioning the address or user anywhere, beyond their own.
    mentioned = set(s.exec(select(Submission.id).where(or_(*[_contains(col(getattr(Submission, c)), needle)
                                                             for c in _SUBMISSION_TEXT]))).all())
    mentioned |= set(s.exec(select(Attachment.submission_id).where(or_(
        _contains(col(Attachment.text), needle), _contains(col(Attachment.filename), needle)))).all())
    mentioned |= set(s.exec(select(FollowUp.submission_id).where(or_(
        _contains(col(FollowUp.body), needle), _contains(col(FollowUp.subject), needle),
        _contains(col(FollowUp.sender_name), needle)))).all())
    touched = sorted(i for i in (theirs | mentioned) if i is not None)

    own_ids = {x.id for x in own}
    own_fu_ids = {f.id for f in own_fus}
    raw_ids: set[int] = {i for i in [x.inbound_id for x in own] + [f.inbound_id for f in own_fus] if i}
    for chunk in _chunks(touched):
        for sub in s.exec(select(Submission).where(col(Submission.id).in_(chunk))).all():
            pats = patterns_for(sub.id)
            changed = False
            if sub.id in own_ids:
                changed |= _set(sub, "submitter_name", ERASED if sub.submitter_name else None)
                changed |= _set(sub, "submitter_email", None)
                changed |= _set(sub, "slack_user_id", None)
            for c in _SUBMISSION_TEXT:
                changed |= _set(sub, c, scrub(getattr(sub, c), pats))
            for a in s.exec(select(Attachment).where(Attachment.submission_id == sub.id)).all():
                changed |= _set(a, "text", scrub(a.text, pats)) | _set(a, "filename", scrub(a.filename, pats))
            for fu in s.exec(select(FollowUp).where(FollowUp.submission_id == sub.id)).all():
                fu_changed = False
                if fu.id in own_fu_ids:
                    fu_changed |= _set(fu, "sender_email", None)
                    fu_changed |= _set(fu, "sender_name", ERASED if fu.sender_name else None)
                for c in ("sender_name", "subject", "body"):
                    fu_changed |= _set(fu, c, scrub(getattr(fu, c), pats))
                if fu_changed and fu.id is not None:
                    done.followups.add(fu.id)
                changed |= fu_changed
            # The trail is append-only for reviewers; an erasure request overrides that for the
            # person's identifiers (a withdrawal's actor is "submitter:<address>", for one).
            for entry in s.exec(select(Audit).where(Audit.submission_id == sub.id)).all():
                for c in ("actor", "reason", "before", "after"):
                    changed |= _set(entry, c, scrub(getattr(entry, c), pats))
            if changed and sub.id is not None:
                done.records.add(sub.id)
                sub.updated_at = now

    _erase_outbox(s, who, needle, patterns_for, done)
    _erase_raw(s, who, raw_ids, now, done)

    for sub_id in sorted(done.records):
        repo.add_audit(s, submission_id=sub_id, actor="operator", action="erase",
                       after={"subject": who.digest, "by": "email" if who.email else "slack_user"})
    s.flush()
    for sub_id in sorted(done.records):
        posted = s.get(Submission, sub_id)
        if posted is not None and posted.reference and posted.review_ts:
            # The summary in the review channel shows the submitter; render it again without them.
            enqueue(s, key=f"{SLACK_UPDATE}:{posted.reference}:erase:{now.timestamp():.0f}", kind=SLACK_UPDATE,
                    payload={"reference": posted.reference}, submission_id=posted.id)
            _rewrite_thread_replies(s, posted, now)
        if posted is not None and posted.reference:
            # Files uploaded into the thread are originals, with the person's data in them: they go.
            # The delete names the upload, and waits for it if it is still under way.
            upload_key = f"{SLACK_FILES}:{posted.reference}"
            if repo.outbox_outcome(s, key=upload_key)[0] is not None:
                enqueue(s, key=f"{SLACK_FILES_DELETE}:{posted.reference}:{now.timestamp():.0f}",
                        kind=SLACK_FILES_DELETE, submission_id=posted.id, payload={"of": upload_key})
    _refresh_search(s, done.records)
    return done


def _rewrite_thread_replies(s: Session, sub: Submission, now: datetime) -> None:
    """Follow-ups posted (or about to be posted) under the summary are rewritten in place from their
    scrubbed text. Each rewrite names the original post's outbox item: a post still in flight may
    have read the follow-up before this erasure, so its rewrite waits for it to finish."""
    posts = s.exec(select(OutboxItem).where(OutboxItem.submission_id == sub.id,
                                            OutboxItem.kind == SLACK_THREAD)).all()
    for item in posts:
        payload = json.loads(item.payload or "{}")
        if payload.get("followup_id") and not payload.get("rewrite_of"):
            enqueue(s, key=f"{item.key}:erase:{now.timestamp():.0f}", kind=SLACK_THREAD, submission_id=sub.id,
                    payload={"reference": sub.reference, "followup_id": payload["followup_id"],
                             "rewrite_of": item.key})


def _erase_outbox(s: Session, who: Subject, needle: str, patterns_for: Any, done: Erased) -> None:
    recipient = who.email or who.slack_user or ""
    rows = s.exec(select(OutboxItem).where(or_(
        func.lower(OutboxItem.recipient) == recipient.lower(),
        _contains(col(OutboxItem.payload), needle),
        col(OutboxItem.submission_id).in_(sorted(done.records) or [-1]),
    ))).all()
    for item in rows:
        changed = False
        to_them = (item.recipient or "").lower() == recipient.lower()
        if to_them:
            changed |= _set(item, "recipient", None)
            if item.status in ("pending", "sending"):
                # A worker holding a lease may be sending right now; it cannot finish the item any
                # more (its lease check fails), but a send already under way cannot be recalled.
                item.status, item.result, item.locked_by, item.locked_until = "skipped", CANCELLED, None, None
                item.done_at = datetime.now(UTC)
                changed = True
        payload = json.loads(item.payload or "{}")
        pats = patterns_for(item.submission_id)
        cleaned = _scrub_json(payload, pats)
        if cleaned != payload:
            item.payload = json.dumps(cleaned)
            changed = True
        changed |= _set(item, "last_error", scrub(item.last_error, pats))
        if changed and item.id is not None:
            done.outbox.add(item.id)


def _erase_raw(s: Session, who: Subject, own_raw: set[int], now: datetime, done: Erased) -> None:
    """Their own messages become stubs; others' have the identifiers' bytes replaced."""
    if who.email:
        own_raw |= {i for i in s.exec(select(Inbound.id).where(
            func.lower(Inbound.envelope_from) == who.email)).all() if i is not None}
    else:
        own_raw |= {i for i in s.exec(select(Inbound.id).where(
            Inbound.channel == "slack", Inbound.envelope_from == who.slack_user)).all() if i is not None}
    byte_pats = who.raw_patterns()
    # One message at a time: a raw copy can be 25 MB.
    for inbound_id in [i for i in s.exec(select(Inbound.id).order_by(col(Inbound.id))).all() if i is not None]:
        inbound = s.get(Inbound, inbound_id)
        assert inbound is not None
        if inbound_id in own_raw:
            if inbound.raw.startswith(f"From: {ERASED}\r\n".encode()) or inbound.raw.startswith(b'{"erased"'):
                s.expunge(inbound)  # already a stub: erasing twice changes nothing
                continue
            inbound.raw = stub(inbound, now)
            inbound.envelope_from = None
            if inbound.state == "received":
                # Never file the stub as if it were evidence.
                inbound.state, inbound.error = "failed", "erased before it was filed"
        else:
            raw = inbound.raw
            for bp in byte_pats:
                raw = bp.sub(ERASED.encode(), raw)
            if raw == inbound.raw:
                s.expunge(inbound)
                continue
            inbound.raw = raw
        inbound.size = len(inbound.raw)
        done.inbound.add(inbound_id)
        s.flush()
        s.expunge(inbound)


def _refresh_search(s: Session, ids: Iterable[int]) -> None:
    """The search index holds copies of the text just scrubbed: rebuild those rows too."""
    s.flush()
    for i in ids:
        finding.refresh(s, submission_id=i)


# --------------------------------------------------------------------------- purge


_DURATION = re.compile(r"\s*(\d{1,5})\s*(d|w|m|y)\s*", re.IGNORECASE)
_UNIT_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}


def parse_duration(text: str) -> timedelta:
    """`30d`, `12w`, `6m` (30-day months), `1y` (365 days)."""
    m = _DURATION.fullmatch(text or "")
    if not m or int(m.group(1)) == 0:
        raise PrivacyError(f"--older-than wants a positive age such as 30d, 12w, 6m or 1y, not {text!r}")
    return timedelta(days=int(m.group(1)) * _UNIT_DAYS[m.group(2).lower()])


def parse_statuses(text: str) -> list[str]:
    wanted = [t.strip().lower() for t in (text or "").split(",") if t.strip()]
    allowed = [str(x) for x in PURGEABLE]
    bad = [t for t in wanted if t not in allowed]
    if not wanted or bad:
        raise PrivacyError(f"--status takes closed statuses only ({', '.join(allowed)}), not {text!r}")
    return list(dict.fromkeys(wanted))


@dataclass
class Purged:
    records: int = 0
    followups: int = 0
    attachments: int = 0
    audit: int = 0
    outbox: int = 0
    inbound: int = 0

    def line(self) -> str:
        return (f"purged {self.records} record(s), {self.followups} follow-up(s), {self.attachments} attachment(s), "
                f"{self.audit} audit entries, {self.outbox} outbox item(s), {self.inbound} stored message(s)")


def purge(engine: Engine, *, older_than: timedelta, statuses: Sequence[str], dry_run: bool = False,
          now: datetime | None = None) -> Purged:
    """Deletes closed records older than `older_than` and everything hanging off them."""
    cutoff = (now or datetime.now(UTC)) - older_than
    with unit_of_work(engine, dry_run=dry_run) as s:
        return _purge(s, cutoff, statuses)


def _count(result: Any) -> int:
    return int(result.rowcount or 0)


def _purge(s: Session, cutoff: datetime, statuses: Sequence[str]) -> Purged:
    age = func.coalesce(Submission.decided_at, Submission.received_at)
    ids = [i for i in s.exec(select(Submission.id).where(col(Submission.status).in_(list(statuses)),
                                                        age < cutoff)).all() if i is not None]
    done = Purged(records=len(ids))
    for chunk in _chunks(ids):
        raw = {i for i in s.exec(select(Submission.inbound_id).where(col(Submission.id).in_(chunk))).all() if i}
        raw |= {i for i in s.exec(select(FollowUp.inbound_id).where(col(FollowUp.submission_id).in_(chunk))).all()
                if i}
        done.attachments += _count(s.execute(delete(Attachment).where(col(Attachment.submission_id).in_(chunk))))
        done.outbox += _count(s.execute(delete(OutboxItem).where(col(OutboxItem.submission_id).in_(chunk))))
        done.audit += _count(s.execute(delete(Audit).where(col(Audit.submission_id).in_(chunk))))
        done.followups += _count(s.execute(delete(FollowUp).where(col(FollowUp.submission_id).in_(chunk))))
        s.execute(delete(CampaignBand).where(col(CampaignBand.submission_id).in_(chunk)))
        # Dependent rows kept by other features (the search index) go by their own ON DELETE rules.
        s.execute(delete(Submission).where(col(Submission.id).in_(chunk)))
        if raw:
            still = set(s.exec(select(Submission.inbound_id).where(col(Submission.inbound_id).in_(raw))).all())
            still |= set(s.exec(select(FollowUp.inbound_id).where(col(FollowUp.inbound_id).in_(raw))).all())
            gone = sorted(raw - still)
            if gone:
                done.inbound += _count(s.execute(delete(Inbound).where(col(Inbound.id).in_(gone))))
    return done


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    ids = list(ids)
    for i in range(0, len(ids), _CHUNK):
        yield ids[i:i + _CHUNK]
