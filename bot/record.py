"""The evidence record: the typed value every door produces and every output prints.

`EvidenceRecord.to_json()` is the one JSON shape that `parse --json`, `show --json`,
`list --json` and `export --format jsonl` print (the contract pinned by the issues).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    EVIDENCE = "evidence"
    FOLLOW_UP = "follow_up"
    AUTOMATIC = "automatic"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    MIXED = "mixed"
    UNKNOWN = "unknown"


class Channel(StrEnum):
    EMAIL = "email"
    SLACK = "slack"


PUBLICATION = ("named", "anonymous", "not_for_publication")


class Status(StrEnum):
    """Where a record stands. `received` waits for review; `filed` is automatic mail kept for the record."""

    RECEIVED = "received"
    FILED = "filed"
    APPROVED = "approved"
    REJECTED = "rejected"
    NEEDS_INFO = "needs_info"
    WITHDRAWN = "withdrawn"


SUMMARY_MAX = 600
# RFC 5321 caps a path at 256 octets with its angle brackets: no mail system sends to or from a
# longer address, so one that is longer (hostile or broken mail) is not kept as the submitter's.
ADDRESS_MAX = 254


def usable_address(addr: str | None) -> str | None:
    """`addr` if it could be a real mailbox's address by its length, else None."""
    return addr if addr and len(addr) <= ADDRESS_MAX else None


def for_storage(text: str) -> str:
    """`text` as both databases store it: no NUL (PostgreSQL's text columns refuse it; hostile
    mail and text pypdf extracts from some fonts carry it), and no lone surrogate (aiosmtpd decodes
    an 8-bit envelope address with surrogateescape, and no driver encodes one): such bytes become
    U+FFFD. The raw copy keeps every byte as it came."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # a surrogate surrogateescape did not make
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


CONTENT_TYPE_MAX = 255  # the attachment table's column; a sender may write any length


def storable(rec: EvidenceRecord) -> EvidenceRecord:
    """The record as both databases store it (in place): every text, its attachments' included,
    through for_storage, and no attachment type longer than its column."""
    for f in fields(rec):
        value = getattr(rec, f.name)
        if isinstance(value, str):
            setattr(rec, f.name, for_storage(value))
        elif isinstance(value, list):
            setattr(rec, f.name, [for_storage(v) if isinstance(v, str) else v for v in value])
    for att in rec.attachments:
        att.filename = for_storage(att.filename) if att.filename else att.filename
        att.text = for_storage(att.text) if att.text else att.text
        att.content_type = for_storage(att.content_type)[:CONTENT_TYPE_MAX]
    return rec


@dataclass
class AttachmentInfo:
    filename: str | None
    content_type: str
    size: int
    sha256: str
    text: str | None = None


@dataclass
class EvidenceRecord:
    """One submission as understood by the parser (and, once stored, with its reference and status)."""

    kind: Kind = Kind.EVIDENCE
    channel: Channel = Channel.EMAIL
    reference: str | None = None
    status: str | None = None
    message_id: str | None = None
    submitter_name: str | None = None
    submitter_email: str | None = None
    title: str | None = None
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
    summary: str | None = None
    body: str | None = None
    attachments: list[AttachmentInfo] = field(default_factory=list)
    received_at: datetime | None = None
    publication: str = "named"
    late: bool = False
    # What happened to it: who decided (a Slack user ID, or the CLI's --as name), when and why,
    # and the Slack user who submitted it (Slack submissions only).
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    submitter_slack_id: str | None = None
    # Who really sent it (bot.authenticity.assess): SPF, DKIM, DMARC, From domain and verdict;
    # None for Slack submissions and for mail filed before the check existed.
    authenticity: dict[str, Any] | None = None
    # The campaign of near-identical submissions this one belongs to (bot.campaigns):
    # {"id": the first record's reference, "size": how many}; None when it stands alone.
    campaign: dict[str, Any] | None = None
    # Not part of the JSON contract: what the parser learnt that the workflow needs.
    in_reply_to_reference: str | None = None
    thread_ids: list[str] = field(default_factory=list)  # the Message-IDs In-Reply-To and References name
    automatic_reason: str | None = None
    parse_warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The pinned JSON shape: plain str/int/bool/None/list values only."""
        return {
            "kind": str(self.kind),
            "reference": self.reference,
            "status": self.status,
            "channel": str(self.channel),
            "message_id": self.message_id,
            "submitter_name": self.submitter_name,
            "submitter_email": self.submitter_email,
            "title": self.title,
            "project": self.project,
            "public_body": self.public_body,
            "supplier": self.supplier,
            "service_area": self.service_area,
            "outcome": str(self.outcome),
            "contract_value_gbp": self.contract_value_gbp,
            "savings_gbp": self.savings_gbp,
            "period": self.period,
            "confidential": bool(self.confidential),
            "declared_interests": self.declared_interests,
            "summary": self.summary,
            "body": self.body,
            "attachments": [asdict(a) for a in self.attachments],
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "publication": self.publication,
            "late": self.late,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "decision_reason": self.decision_reason,
            "submitter_slack_id": self.submitter_slack_id,
            "authenticity": dict(self.authenticity) if self.authenticity is not None else None,
            "campaign": dict(self.campaign) if self.campaign is not None else None,
        }


JSON_KEYS = tuple(EvidenceRecord().to_json().keys())
