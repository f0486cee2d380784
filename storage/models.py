"""SQLModel tables: raw inbound messages, evidence records, attachments, follow-ups, the outbox."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Inbound(SQLModel, table=True):
    """Every message exactly as it arrived, committed before the door says 250.

    `dedupe_key` makes a second delivery of the same message (same Message-ID, same content)
    a no-op; `state` drives processing: received -> processed | failed.
    """

    __tablename__ = "inbound"

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(default="email", max_length=16)
    dedupe_key: str = Field(max_length=64, unique=True)
    message_id: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    envelope_from: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    envelope_to: str = Field(default="", sa_column=Column(Text, nullable=False))
    peer: str | None = Field(default=None, max_length=128)
    helo: str | None = Field(default=None, max_length=255)  # the SMTP client's HELO/EHLO name (SPF)
    size: int = 0
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, index=True)
    state: str = Field(default="received", max_length=16, index=True)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    processed_at: datetime | None = None


class Submission(SQLModel, table=True):
    """One evidence record (or one automatic message kept for the record)."""

    __tablename__ = "submission"
    __table_args__ = (Index("ix_submission_corroboration", "body_key", "supplier_key"),)

    id: int | None = Field(default=None, primary_key=True)
    ref_no: int | None = Field(default=None, unique=True)
    reference: str | None = Field(default=None, max_length=32, unique=True)
    kind: str = Field(max_length=16, index=True)
    status: str = Field(max_length=16, index=True)
    channel: str = Field(default="email", max_length=16)
    inbound_id: int | None = Field(default=None, foreign_key="inbound.id", index=True)
    message_id: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    submitter_name: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    submitter_email: str | None = Field(default=None, max_length=320, index=True)
    title: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    project: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    public_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    supplier: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    service_area: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    outcome: str = Field(default="unknown", max_length=16)
    # Whole pounds; BigInteger because national contracts run past 2**31 pounds.
    contract_value_gbp: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    savings_gbp: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    period: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    confidential: bool = False
    declared_interests: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    summary: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    automatic_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    parse_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    received_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # Review: who decided what and why, and where the review summary lives in Slack.
    slack_user_id: str | None = Field(default=None, max_length=32, index=True)
    decided_by: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    decided_at: datetime | None = None
    decision_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    review_channel: str | None = Field(default=None, max_length=32)
    review_ts: str | None = Field(default=None, max_length=32)
    # The submitter's say over publication (named | anonymous | not_for_publication), and
    # whether it arrived after the inquiry's deadline.
    publication: str = Field(default="named", max_length=24)
    late: bool = False
    # Who really sent it (bot.authenticity): the record's `authenticity` as JSON text; None for Slack.
    authenticity: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Normalised public body and supplier (bot.corroboration), so records about the same contract
    # find each other with an index lookup; set whenever the record is filed or edited.
    body_key: str | None = Field(default=None, max_length=255)
    supplier_key: str | None = Field(default=None, max_length=255)
    # Campaigns (bot.campaigns): the first record's id on every record of a campaign, that one's
    # included; NULL for a record that is not (yet) one of many. `campaign_size` is kept on the
    # first record only, counted up in the transaction that files each member.
    campaign_id: int | None = Field(default=None, index=True)
    campaign_size: int | None = None


class CampaignBand(SQLModel, table=True):
    """The MinHash band keys of a record that may start a campaign (bot.similarity), so a new
    record finds its near-identical candidates by index lookups instead of comparing with all."""

    __tablename__ = "campaign_band"

    band_key: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    submission_id: int = Field(foreign_key="submission.id", primary_key=True, index=True)


class Attachment(SQLModel, table=True):
    """An attachment's facts and extracted text; its bytes stay inside the stored raw message."""

    __tablename__ = "attachment"

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    followup_id: int | None = Field(default=None, foreign_key="followup.id")
    position: int = 0
    filename: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    content_type: str = Field(max_length=255)
    size: int
    sha256: str = Field(max_length=64)
    text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class FollowUp(SQLModel, table=True):
    """A later message about an existing record (a reply carrying its reference)."""

    __tablename__ = "followup"

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    inbound_id: int | None = Field(default=None, foreign_key="inbound.id")
    message_id: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sender_email: str | None = Field(default=None, max_length=320)
    sender_name: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    subject: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    received_at: datetime = Field(default_factory=utcnow)


class OutboxItem(SQLModel, table=True):
    """A side effect to perform exactly once: written in the same transaction as its cause.

    `key` is unique, so enqueueing the same effect twice is a no-op. A worker claims an item by
    moving it to `sending` with a lease (`locked_until`); an expired lease is taken over.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    kind: str = Field(max_length=32, index=True)
    submission_id: int | None = Field(default=None, foreign_key="submission.id", index=True)
    recipient: str | None = Field(default=None, max_length=320, index=True)
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    locked_until: datetime | None = None
    locked_by: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, index=True)
    done_at: datetime | None = None


class Counter(SQLModel, table=True):
    """Named counters handed out atomically (evidence reference numbers: no gaps for automatic mail)."""

    __tablename__ = "counter"

    name: str = Field(primary_key=True, max_length=32)
    value: int = 0


class Audit(SQLModel, table=True):
    """Append-only trail of every review action: who, when, what, and the fields before and after."""

    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    actor: str = Field(sa_column=Column(Text, nullable=False))
    action: str = Field(max_length=32)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    before: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    after: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    at: datetime = Field(default_factory=utcnow)


class InboundToken(SQLModel, table=True):
    """A webhook token already used, with the message it carried (replay protection)."""

    __tablename__ = "inbound_token"

    token: str = Field(primary_key=True, max_length=200)
    provider: str = Field(max_length=32)
    dedupe_key: str = Field(max_length=64)
    used_at: datetime = Field(default_factory=utcnow, index=True)


class ImapState(SQLModel, table=True):
    """Where the IMAP reader is in one mailbox: its UIDVALIDITY and the last UID committed."""

    __tablename__ = "imap_state"

    mailbox: str = Field(primary_key=True, max_length=255)
    uidvalidity: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_uid: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    updated_at: datetime = Field(default_factory=utcnow)
