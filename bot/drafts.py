"""A door's raw message made ready to store: its Message-ID, its dedupe key, its envelope.

Every door (SMTP, webhooks, IMAP, Slack, import) turns what it received into an InboundDraft
here, once, at the edge; nothing in this module touches the database. The dedupe key is what
makes a message that arrives twice (two doors, a provider's retry, a re-import) stored once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import datetime

from bot.record import for_storage
from storage.repo import InboundDraft

# Headers that relays add on the way: two deliveries of one message differ only in these.
# One such header with its folded continuation lines and its line ending, anywhere in the block.
_TRACE = re.compile(
    rb"^(?:received|return-path|delivered-to|x-original-to|x-peer|x-mailfrom|x-rcptto|authentication-results"
    rb"|arc-[a-z-]+|x-received|x-envelope-[a-z-]+|dkim-signature|x-google-smtp-source|x-ms-exchange-[a-z-]+)"
    rb"[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*\n",
    re.IGNORECASE | re.MULTILINE,
)
_MSGID = re.compile(rb"^message-id\s*:\s*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def head_end(raw: bytes) -> tuple[int, int]:
    """(end of the header section, start of the body); no copies, since messages can be 25 MB."""
    crlf = raw.find(b"\r\n\r\n")
    # A bare-LF blank line counts only before the first CRLF one (whichever comes first ends the
    # head), so a CRLF message is not scanned to its end for "\n\n".
    lf = raw.find(b"\n\n", 0, crlf if crlf >= 0 else len(raw))
    if lf >= 0:
        return lf, lf + 2
    if crlf >= 0:
        return crlf, crlf + 4
    return len(raw), len(raw)


def header_block(raw: bytes) -> bytes:
    return raw[: head_end(raw)[0]]


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID header as written (angle brackets kept), found without a full parse."""
    head = header_block(raw)
    m = _MSGID.search(head)
    if not m:
        return None
    value = re.sub(rb"\s+", b" ", m.group(1)).strip().decode("ascii", "replace")
    return value or None


_CHUNK = 1 << 20


def dedupe_key(raw: bytes) -> str:
    """Same Message-ID and same content -> same key; trace headers and line endings don't count.

    The body is hashed in 1 MiB pieces (CRLF folded to LF in each), so a 25 MB message costs a
    megabyte of memory here, not two more copies of itself.
    """
    end, start = head_end(raw)
    h = hashlib.sha256()
    # The header block less its trace headers, every line ended by LF, then the blank line. One
    # regex pass over the block: this runs on the event loop for every message the door takes.
    h.update(_TRACE.sub(b"", raw[:end] + b"\n").replace(b"\r\n", b"\n") + b"\n")
    stop = len(raw)
    while stop > start and raw[stop - 1] in b"\r\n":
        stop -= 1
    view = memoryview(raw)
    pos = start
    while pos < stop:
        nxt = min(pos + _CHUNK, stop)
        if nxt < stop and raw[nxt - 1] == 0x0D:  # don't split a CRLF between two pieces
            nxt += 1
        h.update(bytes(view[pos:nxt]).replace(b"\r\n", b"\n"))
        pos = nxt
    return h.hexdigest()


PEER_MAX = 128  # inbound.peer's column


def draft(
    raw: bytes, *, envelope_from: str | None, rcpts: Sequence[str], peer: str | None = None,
    received_at: datetime | None = None, helo: str | None = None,
) -> InboundDraft:
    """A door's message ready to store; `received_at` only for mail that arrived before (import):
    the doors' own mail arrives now. `helo`: the SMTP client's HELO name, for SPF."""
    msgid = message_id_of(raw)
    # Only the raw copy is kept as it came: the texts beside it go into text columns, which on
    # PostgreSQL refuse NUL (a message that can never be stored would be retried by its sender
    # for days).
    return InboundDraft(
        raw=raw,
        dedupe_key=dedupe_key(raw),
        message_id=for_storage(msgid) if msgid else None,
        envelope_from=for_storage(envelope_from) if envelope_from else envelope_from,
        envelope_to=tuple(for_storage(r) for r in rcpts),
        peer=peer[:PEER_MAX] if peer else peer,  # "imap:" and a host name may be longer
        received_at=received_at,
        helo=for_storage(helo or "")[:255] or None,
    )


def slack_draft(*, view_id: str, user_id: str, user_name: str | None, values: dict[str, str | None]) -> InboundDraft:
    """A Slack modal submission as a stored message. Keyed on the view, so Slack's retries and a
    double submit of the same modal store it once."""
    raw = json.dumps({"view_id": view_id, "user_id": user_id, "user_name": user_name, "values": values},
                     ensure_ascii=False, sort_keys=True).encode()
    return InboundDraft(raw=raw, dedupe_key=hashlib.sha256(b"slack-view:" + view_id.encode()).hexdigest(),
                        message_id=None, envelope_from=user_id, envelope_to=(), peer="slack", channel="slack")
