"""Outbound e-mail through the relay named by EVIDENCE_RELAY_URL (smtp:// or smtps://)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote, urlsplit


class TemporaryFailure(Exception):
    """Try again later (4xx, connection refused, timeout)."""


class PermanentFailure(Exception):
    """Never going to work for this message (5xx for the recipient)."""


def compose(payload: dict[str, Any]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = payload["from"]
    msg["To"] = payload["to"]
    msg["Subject"] = payload["subject"]
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = payload["message_id"]
    if payload.get("in_reply_to"):
        msg["In-Reply-To"] = payload["in_reply_to"]
    if payload.get("references"):
        msg["References"] = payload["references"]
    # RFC 3834: marks this as an automatic answer so well-behaved auto-responders stay quiet.
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(payload["text"])
    if payload.get("html"):
        msg.add_alternative(payload["html"], subtype="html")
    return msg


def send(relay_url: str, payload: dict[str, Any], *, timeout: float = 30.0) -> str:
    """Sends one message; returns the relay's answer. Raises Temporary/PermanentFailure."""
    u = urlsplit(relay_url)
    host, port = u.hostname or "localhost", u.port or (465 if u.scheme == "smtps" else 25)
    msg = compose(payload)
    try:
        smtp: smtplib.SMTP
        if u.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            smtp.ehlo()
            if u.scheme == "smtp" and smtp.has_extn("starttls") and u.query != "tls=off":
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if u.username:
                smtp.login(unquote(u.username), unquote(u.password or ""))
            # Null envelope sender (RFC 3834 s.3.3): a bounce of a receipt must not come back to us.
            refused = smtp.send_message(msg, from_addr="", to_addrs=[payload["to"]])
    except smtplib.SMTPRecipientsRefused as e:
        code = next(iter(e.recipients.values()))[0]
        raise (PermanentFailure if 500 <= code < 600 else TemporaryFailure)(f"recipient refused: {code}") from e
    except smtplib.SMTPResponseException as e:
        kind = PermanentFailure if 500 <= e.smtp_code < 600 else TemporaryFailure
        raise kind(f"relay answered {e.smtp_code}{_enhanced(e.smtp_error)}") from e
    except OSError as e:
        raise TemporaryFailure(f"{type(e).__name__}: {e.strerror or e}") from e
    except smtplib.SMTPException as e:
        raise TemporaryFailure(type(e).__name__) from e
    if refused:
        raise TemporaryFailure(f"recipient refused: {next(iter(refused.values()))[0]}")
    return "sent"


def _enhanced(reply: bytes | str) -> str:
    """The enhanced status code ("5.1.1") of a relay's reply, never its text: relays quote the
    recipient's address there, and these failures end up in the log and the outbox row."""
    first = (reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply).split(" ", 1)[0]
    parts = first.split(".")
    ok = len(parts) == 3 and all(p.isdigit() for p in parts)
    return f" {first}" if ok else ""
