"""Turns one raw e-mail (bytes as received) into an EvidenceRecord.

This is the e-mail door's whole understanding of a message: who sent it, what kind of mail it
is, the evidence text (best body part, cleaned), the attachments and their text, and the
evidence fields.  It never raises: mail from the internet is malformed in every possible way,
and a message we half understood is still worth keeping, so trouble becomes a note in
`parse_warnings` instead.
"""

from __future__ import annotations

import email
import hashlib
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.utils import parseaddr, parsedate_to_datetime

from bot.parsing import fields as fields_mod
from bot.parsing.attachments import DEFAULT_LIMITS, Limits, decode_text, extract_text, over_limit, text_kind
from bot.parsing.classify import automatic_reason, follow_up_reference, header_text
from bot.parsing.cleanup import clean_body
from bot.parsing.html import html_to_text
from bot.parsing.lean import STUB_HEADER, Stub, lean
from bot.parsing.text import join_paragraphs
from bot.record import SUMMARY_MAX, AttachmentInfo, Channel, EvidenceRecord, Kind, Outcome, usable_address

# A single body part larger than this is cut before conversion: nobody types a megabyte of
# evidence into a mail, and html.parser needs about 2 s per MB of dense markup.  The cleaned
# body is cut again, since the field extractor reads all of it.
MAX_BODY_PART_CHARS = 1_000_000
MAX_BODY_CHARS = 300_000
MAX_MULTIPART_DEPTH = 40
NAME_MAX = 200  # characters of a sender's display name kept
COVER_NOTE_MAX = 200  # characters: a body this short beside an attachment with text is a cover note

_MSGIDS = re.compile(r"<[^<>\s]+>")
_STUB = re.compile(
    r"cannot display|can ?not be displayed|view (the|this) (message|e-?mail) in (a|your) (web )?browser"
    r"|html version|does not support html|multi-?part message in mime format|enable html"
    r"|view it (online|in your browser)|requires an html",
    re.IGNORECASE,
)
_SUBJECT_PREFIX_TEMPLATE = (
    r"^\s*(?:(?:re|fwd?|fw|aw|sv|vs|wg|tr|antw|rv|r)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*"
    r"|\[\s*{prefix}-\d+\s*\]\s*|(?:evidence|submission|evidence submission)\s*:\s*)"
)
# C0 controls other than tab and newline: junk from binary parts or broken encodings.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_FORWARD_SUBJECT = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?(fwd?|fw|wg|tr)\s*:", re.IGNORECASE)
_REPLY_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*)?(re|aw|sv|vs|antw|rv|r)\s*(?:\[\d+\])?\s*:", re.IGNORECASE
)
_STUBS: ContextVar[dict[str, Stub]] = ContextVar("stubs", default={})  # noqa: B039 - never mutated
_FIELD_NAMES = ("project", "public_body", "supplier", "service_area", "contract_value_gbp", "savings_gbp",
                "period", "declared_interests")


@dataclass
class _Parsed:
    """What one message level yields before the fields are worked out."""

    body_parts: list[str] = field(default_factory=list)
    attachments: list[AttachmentInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_email(
    raw: bytes,
    *,
    reference_prefix: str = "EV",
    received_at: datetime | None = None,
    envelope_from: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> EvidenceRecord:
    """The evidence record of one raw message; never raises."""
    record = EvidenceRecord(channel=Channel.EMAIL, received_at=received_at)
    try:
        _fill(record, raw, reference_prefix, envelope_from, limits)
    except Exception as exc:  # noqa: BLE001 - the contract is: always a record
        record.parse_warnings.append(f"parser error: {type(exc).__name__}: {str(exc)[:200]}")
    return record


def _fill(record: EvidenceRecord, raw: bytes, prefix: str, envelope_from: str | None, limits: Limits) -> None:
    if not isinstance(raw, bytes | bytearray | memoryview):
        raw = str(raw).encode("utf-8", "replace")
    # A big message's big attachments are taken out first (bot.parsing.lean): the e-mail parser
    # would otherwise hold each several times over.
    slim = lean(bytes(raw))
    if slim is not None:
        token = _STUBS.set(slim.stubs)
        try:
            _fill_parsed(record, email.message_from_bytes(slim.raw, policy=policy.compat32), prefix, envelope_from,
                         limits)
        finally:
            _STUBS.reset(token)
        return
    # compat32 keeps going on malformed headers where policy.default can raise on access.
    _fill_parsed(record, email.message_from_bytes(bytes(raw), policy=policy.compat32), prefix, envelope_from, limits)


def _fill_parsed(record: EvidenceRecord, msg: Message, prefix: str, envelope_from: str | None, limits: Limits) -> None:
    if msg.defects:
        names = sorted({type(d).__name__ for d in msg.defects})
        record.parse_warnings.append("MIME defects: " + ", ".join(names))

    message_id = header_text(msg, "Message-ID").strip()
    record.message_id = message_id or None
    name, addr = _address(msg)
    if addr and not usable_address(addr):
        record.parse_warnings.append(f"the From address is {len(addr)} characters long, longer than any mail "
                                     "system takes: not kept")
        addr = None
    if not addr and envelope_from and envelope_from.strip() not in ("", "<>"):
        addr = usable_address(envelope_from.strip().strip("<>").strip().lower())
    if name and len(name) > NAME_MAX:
        # A display name has no length limit; a name longer than anyone's is cut where it is read,
        # so no summary, receipt or pack has to cope with a page of it.
        record.parse_warnings.append(f"the sender's name is {len(name)} characters long: cut to {NAME_MAX}")
        name = name[:NAME_MAX].rstrip()
    record.submitter_name, record.submitter_email = name, addr
    if record.received_at is None:
        record.received_at = _date(msg)

    reason = _safe(record, "classification", lambda: automatic_reason(msg, envelope_from))
    follow = _safe(record, "follow-up detection", lambda: follow_up_reference(msg, prefix))
    if reason:
        record.kind, record.automatic_reason = Kind.AUTOMATIC, reason
    elif follow:
        record.kind = Kind.FOLLOW_UP
    record.in_reply_to_reference = follow
    record.thread_ids = _MSGIDS.findall(header_text(msg, "In-Reply-To") + " " + header_text(msg, "References"))

    subject = header_text(msg, "Subject")
    forwarded = _treat_as_forward(subject)
    parsed = _Parsed()
    _walk_message(msg, parsed, depth=0, limits=limits)
    record.parse_warnings.extend(parsed.warnings)
    body = _join_parts(parsed.body_parts, forwarded=forwarded)
    if len(body) > MAX_BODY_CHARS:
        record.parse_warnings.append(f"body cut at {MAX_BODY_CHARS} characters")
        body = body[:MAX_BODY_CHARS]
    record.body = body or None
    record.attachments = parsed.attachments
    title = _clean_title(subject, prefix)

    _apply_fields(record, body, title)
    record.title = title or record.project or None


def _treat_as_forward(subject: str) -> bool:
    """Whether an Outlook "From:/Sent:" block in the body starts passed-on content, not history.

    In a reply (Re:) it is the quoted history; in a forward (Fwd:/FW:) it is the evidence; and
    with neither prefix someone has most likely pasted a mail they received under a note, so
    keeping it is the safe side: cutting would lose the evidence.
    """
    return bool(_FORWARD_SUBJECT.match(subject)) or not _REPLY_SUBJECT.match(subject)


def _safe(record: EvidenceRecord, what: str, fn: Callable[[], str | None]) -> str | None:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
        record.parse_warnings.append(f"{what} failed: {type(exc).__name__}")
        return None


def _address(msg: Message) -> tuple[str | None, str | None]:
    try:
        raw_from = msg.get("From")
    except Exception:  # noqa: BLE001
        raw_from = None
    if raw_from is None:
        return None, None
    # Split name and address on the raw header, then decode the name: an encoded word may
    # hide a comma ("Smith, Jane") that would confuse the address parser once decoded.
    raw_text = str(raw_from) if not isinstance(raw_from, str) else raw_from
    raw_text = re.sub(r"\r?\n[ \t]", " ", raw_text)
    name, addr = parseaddr(raw_text)
    if not addr and "@" not in raw_text:
        return None, None
    if not addr:
        m = re.search(r"[^\s<>\"',;]+@[^\s<>\"',;]+", header_text(msg, "From"))
        addr = m.group(0) if m else ""
    if name:
        stub = Message()
        stub["X-Name"] = name
        name = " ".join(header_text(stub, "X-Name").split()).strip().strip('"').strip()
    else:
        # Some clients put the whole "Name <addr>" into one encoded word.
        decoded_name, decoded_addr = parseaddr(header_text(msg, "From"))
        if decoded_addr.lower() == addr.lower():
            name = decoded_name
    addr = addr.encode("utf-8", "surrogateescape").decode("utf-8", "replace").strip().lower()
    return (name or None), (addr or None)


def _date(msg: Message) -> datetime | None:
    value = header_text(msg, "Date").strip()
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)  # RFC 5322 "-0000": time in UTC, zone unknown
    return dt.astimezone(UTC)


def _clean_title(subject: str, prefix: str) -> str:
    title = " ".join(subject.split())
    prefix_re = re.compile(_SUBJECT_PREFIX_TEMPLATE.format(prefix=re.escape(prefix)), re.IGNORECASE)
    for _ in range(20):
        new = prefix_re.sub("", title, count=1)
        if new == title:
            break
        title = new
    # A reference tag anywhere else in the subject is ours, not the sender's words.
    title = re.sub(rf"\[\s*{re.escape(prefix)}-\d+\s*\]", " ", title, flags=re.IGNORECASE)
    return " ".join(title.split()).strip(" -–:")


# -- MIME structure -----------------------------------------------------------------------------------


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:  # noqa: BLE001
        return ""


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = None
    if not name:
        return None
    if not isinstance(name, str):
        name = str(name)
    if "=?" in name:  # RFC 2047 in a parameter: not standard, but what Outlook and Gmail send
        stub = Message()
        stub["X-Filename"] = name
        name = header_text(stub, "X-Filename")
    name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return " ".join(name.replace("\\", "/").rsplit("/", 1)[-1].split()) or None


def _payload_bytes(part: Message, parsed: _Parsed) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:  # noqa: BLE001
        parsed.warnings.append(f"could not decode a {part.get_content_type()} part ({type(exc).__name__})")
        return b""
    if part.defects:
        names = sorted({type(d).__name__ for d in part.defects})
        if any("Base64" in n for n in names):
            parsed.warnings.append(f"bad base64 in a {part.get_content_type()} part: {', '.join(names)}")
    if isinstance(data, bytes):
        return data
    return b""


def _part_text(part: Message, parsed: _Parsed) -> str:
    data = _payload_bytes(part, parsed)
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001
        charset = None
    text = decode_text(data, charset)
    if len(text) > MAX_BODY_PART_CHARS:
        parsed.warnings.append(f"a {part.get_content_type()} part was cut at {MAX_BODY_PART_CHARS} chars")
        text = text[:MAX_BODY_PART_CHARS]
    return text


def _walk_message(msg: Message, parsed: _Parsed, *, depth: int, limits: Limits) -> None:
    _walk(msg, parsed, depth=depth, limits=limits, level=0)


def _walk(part: Message, parsed: _Parsed, *, depth: int, limits: Limits, level: int) -> None:
    if level > MAX_MULTIPART_DEPTH:
        parsed.warnings.append("MIME nesting too deep; the rest was skipped")
        return
    ctype = part.get_content_type()
    if ctype == "message/rfc822" or (ctype.startswith("message/") and ctype not in _MESSAGE_NOT_MAIL):
        _nested(part, parsed, depth=depth, limits=limits)
        return
    if ctype in _MESSAGE_NOT_MAIL:
        return  # delivery-status and the like: machine data, listed by nobody
    if part.is_multipart():
        payload = part.get_payload()
        children = [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
        if ctype == "multipart/alternative":
            _alternative(children, parsed, depth=depth, limits=limits, level=level)
        else:
            for child in children:
                _walk(child, parsed, depth=depth, limits=limits, level=level + 1)
        return
    disposition = _disposition(part)
    filename = _filename(part)
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not (
        filename and disposition != "inline"
    ):
        text = _part_text(part, parsed)
        parsed.body_parts.append(html_to_text(text) if ctype == "text/html" else text)
        return
    if disposition == "attachment" or filename or not ctype.startswith(("image/", "text/")):
        if not filename and disposition != "attachment" and ctype.startswith(("image/", "audio/", "video/")):
            return
        _attachment(part, ctype, filename, parsed, limits)


_MESSAGE_NOT_MAIL = frozenset({
    "message/delivery-status", "message/disposition-notification", "message/feedback-report",
    "text/rfc822-headers", "message/global-delivery-status",
})


def _alternative(children: list[Message], parsed: _Parsed, *, depth: int, limits: Limits, level: int) -> None:
    """Keeps one rendering of the body: the plain text unless it is a stub or much thinner."""
    options: list[tuple[str, _Parsed]] = []
    for child in children:
        sub = _Parsed()
        _walk(child, sub, depth=depth, limits=limits, level=level + 1)
        kind = "html" if _contains_type(child, "text/html") else "plain"
        options.append((kind, sub))
    plain = next((s for k, s in options if k == "plain" and "".join(s.body_parts).strip()), None)
    html = next((s for k, s in reversed(options) if k == "html" and "".join(s.body_parts).strip()), None)
    chosen = plain
    if plain is None:
        chosen = html
    elif html is not None:
        p_text = "\n".join(plain.body_parts).strip()
        h_text = "\n".join(html.body_parts).strip()
        if (len(p_text) < 300 and _STUB.search(p_text)) or (
            len(p_text) < 0.4 * len(h_text) and len(h_text) - len(p_text) > 200
        ):
            chosen = html
    if chosen is None and options:
        chosen = options[-1][1]
    seen: set[tuple[str, str | None]] = set()
    for _, sub in options:
        parsed.warnings.extend(sub.warnings)
        if sub is chosen:
            parsed.body_parts.extend(sub.body_parts)
        for att in sub.attachments:
            key = (att.sha256, att.filename)
            if key not in seen:
                seen.add(key)
                parsed.attachments.append(att)


def _contains_type(part: Message, ctype: str) -> bool:
    try:
        return any(p.get_content_type() == ctype for p in part.walk())
    except Exception:  # noqa: BLE001
        return False


def _stubbed(part: Message, ctype: str, filename: str | None, parsed: _Parsed, limits: Limits) -> bool:
    """A body that bot.parsing.lean took out: listed from its stub, its data decoded only if its
    text is to be read. False if `part` is not a stub."""
    name = part.get(STUB_HEADER)
    stub = _STUBS.get().get(str(name)) if name is not None else None
    if stub is None:
        return False
    text = warning = None
    if text_kind(ctype, filename, stub.head) is not None:
        if stub.size > limits.max_bytes:
            warning = over_limit(filename or ctype or "attachment", stub.size, limits)
        else:
            try:
                charset = part.get_content_charset()
            except Exception:  # noqa: BLE001
                charset = None
            text, warning = extract_text(stub.data(), content_type=ctype, filename=filename, limits=limits,
                                         charset=charset)
    if warning:
        parsed.warnings.append(warning)
    parsed.attachments.append(AttachmentInfo(filename=filename, content_type=ctype, size=stub.size,
                                             sha256=stub.sha256, text=text))
    return True


def _attachment(part: Message, ctype: str, filename: str | None, parsed: _Parsed, limits: Limits) -> None:
    if _stubbed(part, ctype, filename, parsed, limits):
        return
    data = _payload_bytes(part, parsed)
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001
        charset = None
    text, warning = extract_text(data, content_type=ctype, filename=filename, limits=limits, charset=charset)
    if warning:
        parsed.warnings.append(warning)
    parsed.attachments.append(
        AttachmentInfo(filename=filename, content_type=ctype, size=len(data),
                       sha256=hashlib.sha256(data).hexdigest(), text=text)
    )


def _nested(part: Message, parsed: _Parsed, *, depth: int, limits: Limits) -> None:
    """An attached message: its text joins the evidence, its attachments join the list."""
    filename = _filename(part)
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload and isinstance(payload[0], Message) else None
    if inner is None:
        # Not parsed as a message (e.g. base64-encoded, which RFC 2046 forbids but clients do).
        data = _payload_bytes(part, parsed)
        inner = email.message_from_bytes(data, policy=policy.compat32) if data else None
    try:
        data = inner.as_bytes() if inner is not None else b""
    except Exception:  # noqa: BLE001 - as_bytes can fail on odd headers; hash what we can
        data = str(inner).encode("utf-8", "surrogateescape") if inner is not None else b""
    info = AttachmentInfo(filename=filename, content_type="message/rfc822", size=len(data),
                          sha256=hashlib.sha256(data).hexdigest(), text=None)
    parsed.attachments.append(info)
    if inner is None:
        return
    if depth + 1 > limits.max_depth:
        parsed.warnings.append(f"attached message nested deeper than {limits.max_depth}; not read")
        return
    sub = _Parsed()
    _walk(inner, sub, depth=depth + 1, limits=limits, level=0)
    subject = header_text(inner, "Subject")
    text = _join_parts(sub.body_parts, forwarded=_treat_as_forward(subject))
    name, addr = _address(inner)
    who = f"{name} <{addr}>" if name and addr else (addr or name or "unknown sender")
    heading = f"Forwarded message from {who}"
    if subject.strip():
        heading += f', subject "{" ".join(subject.split())}"'
    info.text = text or None
    parsed.body_parts.append(f"{heading}:\n\n{text}" if text else f"{heading}:")
    parsed.attachments.extend(sub.attachments)
    parsed.warnings.extend(sub.warnings)


def _join_parts(parts: list[str], *, forwarded: bool) -> str:
    cleaned: list[str] = []
    for part in parts:
        if part.startswith("Forwarded message from ") and "\n" in part:
            # Already cleaned at its own level; cleaning again could mistake its text for a reply.
            cleaned.append(part)
            continue
        text = clean_body(part, forwarded=forwarded)
        if text:
            cleaned.append(text)
    return normalise_text("\n\n".join(cleaned))


def normalise_text(text: str) -> str:
    """Unix line endings, no trailing spaces, at most one blank line in a row."""
    text = _CONTROL_CHARS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return join_paragraphs(line.rstrip() for line in text.split("\n")).strip()


# -- fields ---------------------------------------------------------------------------------------------


def _apply_fields(record: EvidenceRecord, body: str, title: str) -> None:
    try:
        found = fields_mod.extract_fields(body, subject=title)
    except Exception as exc:  # noqa: BLE001 - a field-extractor bug must not lose the message
        record.parse_warnings.append(f"field extraction failed: {type(exc).__name__}")
        record.summary = _fallback_summary(body) or title or None
        return
    confidential = found.confidential
    # The strictest wish anywhere in the message (body or attachment) is the one honoured.
    strictness = {"named": 0, "anonymous": 1, "not_for_publication": 2}
    publication = found.publication
    attached_prose = ""  # the longest attachment text: the summary's source under a cover note
    for att in record.attachments:
        if not att.text or att.content_type == "message/rfc822":
            continue  # an attached message's text is already in the body
        try:
            extra = fields_mod.extract_fields(att.text)
        except Exception as exc:  # noqa: BLE001
            record.parse_warnings.append(f"field extraction failed on {att.filename}: {type(exc).__name__}")
            continue
        for name in _FIELD_NAMES:
            if getattr(found, name) is None and getattr(extra, name) is not None:
                setattr(found, name, getattr(extra, name))
        if found.outcome == Outcome.UNKNOWN and extra.outcome != Outcome.UNKNOWN:
            found.outcome = extra.outcome
        confidential = confidential or extra.confidential
        if len(extra.prose or "") > len(attached_prose):
            attached_prose = extra.prose or ""
        if strictness[extra.publication] > strictness[publication]:
            publication = extra.publication
    record_fields = {f.name for f in fields(record)}
    for name in _FIELD_NAMES:
        if name in record_fields:
            setattr(record, name, getattr(found, name))
    record.outcome = found.outcome
    record.confidential = bool(confidential)
    record.publication = publication
    source = found.prose or body
    if len(source) < COVER_NOTE_MAX and len(attached_prose) > len(source):
        # "Please find my evidence attached.": the reviewers' summary comes from the attachment.
        source = attached_prose
    try:
        summary = fields_mod.make_summary(source, SUMMARY_MAX)
    except Exception as exc:  # noqa: BLE001
        record.parse_warnings.append(f"summary failed: {type(exc).__name__}")
        summary = _fallback_summary(source)
    record.summary = (summary or "").strip()[:SUMMARY_MAX] or title or None


def _fallback_summary(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= SUMMARY_MAX:
        return text
    return text[: SUMMARY_MAX - 1].rsplit(" ", 1)[0] + "…"
