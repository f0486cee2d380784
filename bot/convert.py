"""Between the typed record and the stored rows, in both directions."""

from __future__ import annotations

from collections.abc import Sequence

from bot.record import AttachmentInfo, Channel, EvidenceRecord, Kind, Outcome
from storage.models import Attachment, Submission

_COPIED = (
    "message_id", "submitter_name", "submitter_email", "title", "project", "public_body", "supplier",
    "service_area", "contract_value_gbp", "savings_gbp", "period", "confidential", "declared_interests",
    "summary", "body", "publication", "late",
)


def submission_from_record(rec: EvidenceRecord) -> Submission:
    sub = Submission(
        kind=str(rec.kind),
        status=rec.status or "received",
        channel=str(rec.channel),
        outcome=str(rec.outcome),
        automatic_reason=rec.automatic_reason,
        **{k: getattr(rec, k) for k in _COPIED},
    )
    if rec.received_at is not None:
        sub.received_at = rec.received_at
    return sub


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


def record_from_submission(sub: Submission, attachments: Sequence[Attachment] = ()) -> EvidenceRecord:
    return EvidenceRecord(
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
        attachments=[
            AttachmentInfo(a.filename, a.content_type, a.size, a.sha256, a.text) for a in attachments
        ],
        **{k: getattr(sub, k) for k in _COPIED},
    )
