"""The SMTP door: an aiosmtpd handler that answers 250 only once the raw bytes are committed.

It accepts mail only for the published evidence addresses (it is not a relay), caps concurrent
connections, and answers every internal failure with 451 so the sender's server tries again:
a message is either stored and acknowledged with 250, or not accepted at all.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Iterable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from bot.intake import draft
from storage.writer import GroupCommitter, Stored

log = logging.getLogger(__name__)

TEMPFAIL = "451 4.3.0 Requested action aborted: local error, please try again later"


class EvidenceHandler:
    """aiosmtpd handler hooks (the contract: return a status line; 250 means we own the message)."""

    def __init__(
        self,
        *,
        addresses: Iterable[str],
        committer: GroupCommitter,
        on_stored: Callable[[Stored], None] | None = None,
    ) -> None:
        self.addresses = {a.lower() for a in addresses}
        self.committer = committer
        self.on_stored = on_stored

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.strip().lower() not in self.addresses:
            return "550 5.1.1 Recipient not accepted: this server only receives evidence"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes | bytearray) or not envelope.rcpt_tos:
            return "554 5.5.1 No valid recipients"
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        try:
            # aiosmtpd reports the null sender of bounces as "<>"; we store it as "".
            sender = "" if envelope.mail_from in (None, "<>") else envelope.mail_from
            d = draft(bytes(raw), envelope_from=sender, rcpts=envelope.rcpt_tos, peer=peer)
            stored = await self.committer.store(d)
        except asyncio.CancelledError:
            raise  # the client went away; the commit itself carries on (see GroupCommitter.store)
        except Exception:
            log.exception("could not store a message from %s", peer)
            return TEMPFAIL
        if self.on_stored is not None:
            self.on_stored(stored)
        note = "stored" if stored.created else "already stored"
        return f"250 2.0.0 OK: {note} as message {stored.inbound_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %r", error)
        return "421 4.3.0 Local error, closing connection"


class ConnectionGate:
    """Counts open connections across all protocol instances of one server."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def try_enter(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def leave(self) -> None:
        self.open -= 1


class CappedSMTP(SMTP):
    """aiosmtpd's SMTP protocol with a cap on concurrent connections (421 past it)."""

    def __init__(self, handler: Any, *, gate: ConnectionGate, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._gate = gate
        self._holding = False
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # connection_made runs again after STARTTLS on the same connection: count it once.
        if self.transport is None and not self._holding:
            if not self._gate.try_enter():
                self._refused = True
                transport.write(b"421 4.7.0 Too many connections, try again later\r\n")  # type: ignore[attr-defined]
                transport.close()
                return
            self._holding = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        if self._holding:
            self._holding = False
            self._gate.leave()
        super().connection_lost(error)


def protocol_factory(
    handler: EvidenceHandler,
    *,
    max_connections: int,
    data_size_limit: int,
    hostname: str | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> Callable[[], CappedSMTP]:
    gate = ConnectionGate(max_connections)

    def make() -> CappedSMTP:
        return CappedSMTP(
            handler,
            gate=gate,
            data_size_limit=data_size_limit,
            enable_SMTPUTF8=True,
            hostname=hostname,
            tls_context=tls_context,
            # A slow sender has five minutes between commands (RFC 5321 s.4.5.3.2 suggests more
            # for DATA, but a stuck client must not hold a connection slot for ever).
            timeout=300,
        )

    return make


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx
