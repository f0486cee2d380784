"""Between the typed record and the stored rows, in both directions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from bot.record import AttachmentInfo, Channel, EvidenceRecord, Kind, Outcome
from storage.models import Attachment, Submission

_COPIED = (
    "message_id", "submitter_name", "submitter_email", "title", "project", "public_body", "supplier",
    "service_area", "contract_value_gbp", "savings_gbp", "period", "confidential", "declared_interests",
    "summary", "body", "publication", "late",
)


def submission_from_record(rec: EvidenceRecord) -> Submission:
    return Submission(**submission_values(rec))


def submission_values(rec: EvidenceRecord) -> dict[str, Any]:
    """The Submission's column values that come from the record (the rest keep their defaults)."""
    values = {
        "kind": str(rec.kind),
        "status": rec.status or "received",
        "channel": str(rec.channel),
        "outcome": str(rec.outcome),
        "automatic_reason": rec.automatic_reason,
        "authenticity": json.dumps(rec.authenticity, sort_keys=True) if rec.authenticity is not None else None,
        **{k: getattr(rec, k) for k in _COPIED},
    }
    if rec.received_at is not None:
        values["received_at"] = rec.received_at
    return values


def attachment_rows(rec: EvidenceRecord) -> list[Attachment]:
    return [
        Attachment(
            submission_id=0,  # set by the repository when the parent row has its id
            filename=a.filename,
            content_type=a.content_type,
            size=a.size,
            sha256=a.sha256,
            text=a.text,
        )
        for a in rec.attachments
    ]


def record_from_submission(sub: Submission, attachments: Sequence[Attachment] = (),
                           campaign: Mapping[str, object] | None = None) -> EvidenceRecord:
    """`campaign`: the record's campaign as bot.campaigns.info gives it (it needs the first record)."""
    return EvidenceRecord(
        campaign=dict(campaign) if campaign is not None else None,
        kind=Kind(sub.kind),
        channel=Channel(sub.channel),
        reference=sub.reference,
        status=sub.status,
        outcome=Outcome(sub.outcome),
        received_at=sub.received_at,
        automatic_reason=sub.automatic_reason,
        # Stored as "cli:NAME" so the audit trail never mistakes a typed name for a Slack user ID;
        # the record says the name as it was given.
        decided_by=sub.decided_by.removeprefix("cli:") if sub.decided_by else None,
        decided_at=sub.decided_at,
        decision_reason=sub.decision_reason,
        submitter_slack_id=sub.slack_user_id,
        authenticity=json.loads(sub.authenticity) if sub.authenticity else None,
        attachments=[
            AttachmentInfo(a.filename, a.content_type, a.size, a.sha256, a.text) for a in attachments
        ],
        **{k: getattr(sub, k) for k in _COPIED},
    )
