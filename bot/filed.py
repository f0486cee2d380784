"""What filing takes and gives, shared by one-by-one filing (bot.intake) and runs (bot.filing).

Plain values that cross between a parser process and filing (ToParse, Stored, Parsed, Filed),
and the rules both filing paths apply alike: a new record's column values, whether a receipt goes
out, which door a message came by. Nothing here touches the database.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot import acks, campaigns
from bot.convert import submission_values
from bot.record import EvidenceRecord, Kind, Status
from bot.settings import Settings


def door_of(peer: str | None, channel: str = "email") -> str:
    """Which door a stored message came in by (smtp, webhook, imap, slack, import), from what
    the door wrote in `peer`: for the metrics and the log's `door` key."""
    if channel == "slack":
        return "slack"
    p = peer or ""
    if p == "import":
        return "import"
    if p.startswith("webhook:"):
        return "webhook"
    if p.startswith("imap:"):
        return "imap"
    return "smtp"


@dataclass(frozen=True)
class Filed:
    inbound_id: int
    outcome: str  # evidence | follow_up | automatic | duplicate-work | failed
    reference: str | None = None
    door: str | None = None  # see door_of


@dataclass(frozen=True)
class ToParse:
    """What the parser needs of a stored message: plain values, so it can cross to a worker process."""

    inbound_id: int
    channel: str
    raw: bytes
    received_at: datetime
    envelope_from: str | None
    reference_prefix: str
    peer: str | None = None
    helo: str | None = None


@dataclass(frozen=True)
class Stored:
    """What filing needs of a stored message: plain values, cheap to send back from a parser
    process (the ORM object, pickled there and back, cost as much as filing's own statements)."""

    id: int
    channel: str
    received_at: datetime
    envelope_from: str | None
    message_id: str | None
    peer: str | None


@dataclass
class Parsed:
    """A stored message parsed and checked, ready to file; its raw copy no longer in memory."""

    inbound: Stored
    rec: EvidenceRecord | None
    error: str | None
    authenticity: dict[str, Any] | None
    campaign_keys: campaigns.Keys | None = None  # worked out before filing (campaigns.keys_for)

    def __getstate__(self) -> dict[str, Any]:
        # The shingles cross from a parser process as one array of 64-bit integers: as a
        # frozenset of Python ints they cost 0.2 ms a message to pickle and unpickle.
        state = dict(self.__dict__)
        if self.campaign_keys is not None:
            body, shingles, bands = self.campaign_keys
            state["campaign_keys"] = (body, array("Q", shingles), bands)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("campaign_keys") is not None:
            body, shingles, bands = state["campaign_keys"]
            state["campaign_keys"] = (body, frozenset(shingles), bands)
        self.__dict__.update(state)


def new_submission_values(settings: Settings, inbound: Stored, rec: EvidenceRecord,
                          error: str | None) -> dict[str, Any]:
    """new_submission's values other than the defaults (_file and bot.filing alike)."""
    values = submission_values(rec)
    values["inbound_id"] = inbound.id
    # Accepted all the same, but marked, so the group knows what came after the call closed.
    values["late"] = bool(settings.inquiry_deadline and inbound.received_at.date() > settings.inquiry_deadline)
    if inbound.channel == "slack":
        values["slack_user_id"] = inbound.envelope_from
    # A parser exception, or the parser's own notes (MIME defects, an unreadable attachment):
    # either way the record is kept and flagged for a human to look at the raw copy.
    values["parse_error"] = error or ("; ".join(rec.parse_warnings)[:2000] or None)
    values["status"] = Status.FILED if rec.kind == Kind.AUTOMATIC else Status.RECEIVED
    return values


# Evidence longer than this may not fit the "Read in full" modal (100 blocks of 3,000 characters,
# 120,000 in all, after escaping): the files item then decides whether the text goes up as a file.
LONG_TEXT = 20_000


def ack_decision(settings: Settings, rec: EvidenceRecord, envelope_from: str | None,
                 sent_last_hour: Callable[[str], int]) -> tuple[str | None, str | None]:
    """(whom to acknowledge, why not): why_not None means a receipt goes to `to`.
    `sent_last_hour(to)`: acknowledgements queued for `to` within the hour (the rate limit)."""
    to = acks.recipient(rec, envelope_from)
    why_not = acks.why_not_acknowledge(rec, envelope_from, to)
    if why_not is None and (rec.authenticity or {}).get("verdict") == "failed":
        # The From address is forged: a receipt would go to the person being impersonated.
        why_not = "the sender failed the authenticity check"
    if why_not is None and to is not None:
        sent = sent_last_hour(to)
        if sent >= settings.acks_per_sender_per_hour:
            why_not = f"rate limit: {sent} acknowledgements to this sender in the last hour"
    return to, why_not
