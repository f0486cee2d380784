"""Acknowledgements: whom to answer, whom never to answer, and the receipt's content."""

from __future__ import annotations

import re
import secrets
from email.utils import format_datetime
from typing import Any

from bot.record import EvidenceRecord, Kind, usable_address
from bot.settings import Settings
from bot.templating import render
from storage.models import Submission

KIND = "ack_email"

# Addresses that never read replies; answering them only feeds loops and bounces.
_NOREPLY = re.compile(
    r"^(no-?reply|do-?not-?reply|donotreply|noreply-[^@]*|mailer-daemon|postmaster|bounces?|bounce-[^@]*"
    r"|notifications?|auto-?reply|autoresponder|listserv|majordomo|[^@]*-bounces?)(\+[^@]*)?@",
    re.IGNORECASE,
)


def is_noreply(address: str) -> bool:
    return bool(_NOREPLY.match(address.strip()))


def recipient(rec: EvidenceRecord, envelope_from: str | None) -> str | None:
    """The From: address; the envelope sender when the header had none (and neither when it is
    longer than any mail system takes: no receipt can reach it)."""
    return usable_address((rec.submitter_email or envelope_from or "").strip().lower())


def why_not_acknowledge(rec: EvidenceRecord, envelope_from: str | None, to: str | None) -> str | None:
    """None when a receipt should go out; otherwise the reason it must not."""
    if rec.kind == Kind.AUTOMATIC:
        return "automatic mail"
    if envelope_from is not None and envelope_from.strip() in ("", "<>"):
        return "null sender"
    if not to or "@" not in to:
        return "no sender address"
    if is_noreply(to):
        return "no-reply address"
    return None


def ack_message_id(reference: str, domain: str) -> str:
    """Our Message-ID; a reply's In-Reply-To carries `ack.REF.` back to us (see parsing.classify)."""
    return f"<ack.{reference}.{secrets.token_hex(6)}@{domain}>"


def build(settings: Settings, sub: Submission, *, to: str, original_message_id: str | None) -> dict[str, Any]:
    """The whole e-mail, fixed at enqueue time so a retry sends exactly what was decided."""
    assert sub.reference
    ctx = {
        "reference": sub.reference,
        "name": sub.submitter_name,
        "title": sub.title or sub.project or "your submission",
        "received": format_datetime(sub.received_at),
        "inquiry_title": settings.inquiry_title,
        "address": settings.sender_address,
        "publication": sub.publication,
    }
    subject_title = (sub.title or "your evidence")[:120]
    return email_payload(settings, sub, to=to, subject=f"Received: {subject_title}", template="ack_email",
                         ctx=ctx, in_reply_to=original_message_id, references=original_message_id or "")


def email_payload(settings: Settings, sub: Submission, *, to: str, subject: str, template: str,
                  ctx: dict[str, Any], in_reply_to: str | None, references: str) -> dict[str, Any]:
    """An outbox e-mail about `sub`: "[EV-…] subject", our own Message-ID, text and HTML from
    `template`.txt.j2 / .html.j2 (receipts, decisions and withdrawal notices alike)."""
    domain = settings.sender_address.rsplit("@", 1)[-1]
    return {
        "from": settings.sender_address,
        "to": to,
        "subject": f"[{sub.reference}] {subject}",
        "message_id": ack_message_id(sub.reference or "", domain),
        "in_reply_to": in_reply_to,
        "references": references,
        "text": render(f"{template}.txt.j2", **ctx),
        "html": render(f"{template}.html.j2", **ctx),
    }
