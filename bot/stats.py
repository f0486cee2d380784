"""Where the call for evidence stands: counts by status, outcome and channel, and the longest wait.

`collect` reads (through storage.stats); everything else is pure, so `/evidence stats`, the App Home
tab and any later report word the same numbers the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from bot import mrkdwn
from storage import stats as queries

STATUS_ORDER = ("received", "needs_info", "approved", "rejected", "withdrawn")
STATUS_LABELS = {"received": "Waiting for review", "needs_info": "Waiting for the submitter",
                 "approved": "Approved", "rejected": "Rejected", "withdrawn": "Withdrawn"}
OUTCOME_ORDER = ("success", "failure", "mixed", "unknown")
CHANNEL_LABELS = {"email": "E-mail", "slack": "Slack"}


@dataclass(frozen=True)
class Waiting:
    reference: str
    title: str | None
    received_at: datetime
    waited: timedelta


@dataclass(frozen=True)
class Stats:
    total: int
    by_status: dict[str, int] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, int] = field(default_factory=dict)
    oldest_pending: Waiting | None = None


def _aware(when: datetime) -> datetime:
    # SQLite hands datetimes back naive; they were written in UTC.
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def collect(session: Session, *, now: datetime | None = None) -> Stats:
    now = now or datetime.now(UTC)
    by_status = queries.counts_by(session, column="status")
    oldest = queries.oldest_waiting(session, status="received")
    waiting = None
    if oldest is not None:
        reference, title, received_at = oldest
        waiting = Waiting(reference, title, received_at, max(timedelta(0), now - _aware(received_at)))
    return Stats(total=sum(by_status.values()), by_status=by_status,
                 by_outcome=queries.counts_by(session, column="outcome"),
                 by_channel=queries.counts_by(session, column="channel"), oldest_pending=waiting)


def duration_text(d: timedelta) -> str:
    """A wait as people say it: "3 days 4 hours", "5 hours 10 minutes", "under a minute"."""
    minutes = int(d.total_seconds() // 60)
    days, rem = divmod(minutes, 24 * 60)
    hours, mins = divmod(rem, 60)

    def unit(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    if days:
        return unit(days, "day") + (f" {unit(hours, 'hour')}" if hours else "")
    if hours:
        return unit(hours, "hour") + (f" {unit(mins, 'minute')}" if mins else "")
    return unit(mins, "minute") if mins else "under a minute"


def ordered(counts: dict[str, int], order: tuple[str, ...]) -> list[tuple[str, int]]:
    """Known keys in `order` (zeros included), then anything else the data holds."""
    known = [(k, counts.get(k, 0)) for k in order]
    return known + sorted((k, n) for k, n in counts.items() if k not in order)


def status_lines(s: Stats) -> list[str]:
    return [f"{STATUS_LABELS.get(k, k.replace('_', ' ').capitalize())}: {n}" for k, n in
            ordered(s.by_status, STATUS_ORDER)]


def outcome_lines(s: Stats) -> list[str]:
    return [f"{k.capitalize()}: {n}" for k, n in ordered(s.by_outcome, OUTCOME_ORDER)]


def channel_lines(s: Stats) -> list[str]:
    return [f"{CHANNEL_LABELS.get(k, k)}: {n}" for k, n in ordered(s.by_channel, tuple(CHANNEL_LABELS))]


def waiting_line(s: Stats) -> str:
    w = s.oldest_pending
    if w is None:
        return "Nothing is waiting for review."
    title = mrkdwn.safe(w.title or "(no title)", 150)
    return (f"Oldest waiting for review: *{w.reference}* · {title}, received "
            f"{_aware(w.received_at):%d %b %Y %H:%M} UTC, waiting {duration_text(w.waited)}")


def as_text(s: Stats) -> str:
    """mrkdwn for `/evidence stats` (every piece of record text escaped)."""
    return "\n".join([
        f"*Evidence so far: {s.total}*",
        "*By status*  " + " · ".join(status_lines(s)),
        "*By outcome*  " + " · ".join(outcome_lines(s)),
        "*By channel*  " + " · ".join(channel_lines(s)),
        waiting_line(s),
    ])
