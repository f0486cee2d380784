"""The SMTP door: an aiosmtpd handler that answers 250 only once the raw bytes are committed.

It accepts mail only for the published evidence addresses (it is not a relay), caps concurrent
connections (in all and per client, see handlers.smtp_limits for how the door cannot be held
shut), and answers every internal failure with 451 so the sender's server tries again:
a message is either stored and acknowledged with 250, or not accepted at all.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, cast

from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from bot.drafts import draft
from handlers.smtp_data import OneBufferDATA, fix_mmap_threshold
from handlers.smtp_limits import TOO_FAST, ConnectionGate, MessageRate, client_key, plain_ip
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
            # aiosmtpd reports the null sender of bounces as "<>"; we store it as "". bytes(raw)
            # is raw itself, no copy: the DATA buffer is bytes already (handlers.smtp_data).
            sender = "" if envelope.mail_from in (None, "<>") else envelope.mail_from
            d = draft(bytes(raw), envelope_from=sender, rcpts=envelope.rcpt_tos, peer=peer, helo=session.host_name)
            stored = await self.committer.store(d)
        except asyncio.CancelledError:
            raise  # the client went away; the commit itself carries on (see GroupCommitter.store)
        except Exception as exc:
            # The type, not the text: a database error may quote the message's own values.
            log.error("could not store a message from %s: %s", peer, type(exc).__name__, extra={"door": "smtp"})
            log.debug("the storing failure in full", exc_info=True)
            return TEMPFAIL
        if self.on_stored is not None:
            self.on_stored(stored)
        note = "stored" if stored.created else "already stored"
        return f"250 2.0.0 OK: {note} as message {stored.inbound_id}"

    async def handle_exception(self, error: Exception) -> str:
        # Only the type at INFO and above: aiosmtpd's errors can quote the command line (addresses).
        log.error("SMTP session error: %s", type(error).__name__, extra={"door": "smtp"})
        log.debug("SMTP session error in full", exc_info=error)
        return "421 4.3.0 Local error, closing connection"


class CappedSMTP(OneBufferDATA):
    """aiosmtpd's SMTP protocol under the door's limits (handlers.smtp_limits): the global and
    per-client connection caps (421 past them), the idle timeout (shorter under stress), the
    per-client message rate (450 past it). DATA reads the message into one buffer
    (handlers.smtp_data)."""

    def __init__(self, handler: Any, *, gate: ConnectionGate, rate: MessageRate | None = None,
                 replies: dict[str, int] | None = None, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._gate = gate
        self._rate = rate
        self._replies = replies  # reply code -> count (bot.runtime.metrics), or None: not counted
        self._holding = False
        self._refused = False
        self._client = ""
        self._trusted = False
        self.last_active = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # connection_made runs again after STARTTLS on the same connection: count it once.
        if self.transport is None and not self._holding:
            peer = transport.get_extra_info("peername")
            if isinstance(peer, tuple):
                ip = plain_ip(peer[0])
                self._client, self._trusted = client_key(ip), self._gate.is_trusted(ip)
            else:
                self._client, self._trusted = "local", True  # a UNIX socket: this machine
            self.last_active = self.loop.time()
            refusal = self._gate.try_enter(self, self._client, trusted=self._trusted)
            if refusal is not None:
                self._refused = True
                self._count(refusal)
                transport.write(refusal)  # type: ignore[attr-defined]
                transport.close()
                return
            self._holding = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        self._gate.release(self)
        super().connection_lost(error)

    # Idle time. aiosmtpd cancels and re-arms a timer on every command; here a command only
    # notes the time, and the one timer, when it fires, re-arms itself for what is left. The
    # stress rule and eviction read the same note (ConnectionGate keeps sessions in its order).

    def _reset_timeout(self, duration: float | None = None) -> None:
        self.last_active = self.loop.time()
        self._gate.touch(self)
        if self._timeout_handle is None or duration is not None:
            super()._reset_timeout(duration)

    def _timeout_cb(self) -> None:
        left = self.last_active + self._timeout_duration - self.loop.time()
        if left > 0:
            self._timeout_handle = self.loop.call_later(left, self._timeout_cb)
            return
        log.info("%r idle for %.0f s, cutting the connection", self._client, self._timeout_duration)
        self._gate.cut(self, self.loop.time())

    def cut(self) -> None:
        """421 and close, for an idle session (ConnectionGate.cut has released its slot)."""
        transport = cast(asyncio.WriteTransport | None, self.transport)
        if transport is None or transport.is_closing():
            return
        transport.write(f"421 4.4.2 {self.hostname} Error: timeout exceeded\r\n".encode())
        self._count(b"421")
        if transport.get_write_buffer_size():
            # A client that does not read would keep a close() waiting, and the socket open.
            transport.abort()
        else:
            transport.close()

    def _count(self, status: str | bytes) -> None:
        # A plain dict update on the loop: this runs for every reply the door sends.
        replies = self._replies
        if replies is not None and status[3:4] not in ("-", b"-"):  # a multi-line reply counts once
            code = status[:3] if isinstance(status, str) else status[:3].decode("ascii", "replace")
            replies[code] = replies.get(code, 0) + 1

    def push(self, status: Any) -> Coroutine[Any, Any, None]:
        # Not a coroutine itself: the parent's coroutine is handed back, so counting adds no frame.
        self._count(status)
        return super().push(status)

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        # Counted at MAIL FROM, the first command of each message and the cheapest place to say
        # no. Every attempt counts, as Postfix's smtpd_client_message_rate_limit counts delivery
        # requests whether or not they are accepted: the limit is on the work a client makes us
        # do, and refused recipients must not make a flood free. A 450 itself is not counted, so
        # the client is back as soon as its window has room. A nested MAIL is aiosmtpd's 503.
        if (self._rate is not None and not self._trusted and self.envelope is not None
                and self.envelope.mail_from is None and not self._rate.take(self._client)):
            await self.push(TOO_FAST)
            return
        await super().smtp_MAIL(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self._gate.busy(self)  # mid-DATA: out of reach of the stress rule and eviction
        try:
            await super().smtp_DATA(arg)
        finally:
            self.last_active = self.loop.time()  # idle from the answer on, not from the DATA command
            self._gate.ready(self)


def protocol_factory(
    handler: EvidenceHandler,
    *,
    max_connections: int,
    data_size_limit: int,
    hostname: str | None = None,
    tls_context: ssl.SSLContext | None = None,
    max_connections_per_client: int | None = None,
    idle_seconds: float = 300.0,
    messages_per_client_per_minute: int | None = None,
    is_trusted: Callable[[str], bool] | None = None,
    replies: dict[str, int] | None = None,
) -> Callable[[], CappedSMTP]:
    """One server's protocol factory; the limits are shared by all its connections.

    `is_trusted(ip)` says which clients (your relay) are exempt from the per-client caps;
    `replies`, when given, counts the replies sent by code (bot.runtime.metrics).
    """
    fix_mmap_threshold()  # big messages' buffers go back to the system when freed (see there)
    gate = ConnectionGate(max_connections, per_client=max_connections_per_client, is_trusted=is_trusted)
    rate = MessageRate(messages_per_client_per_minute) if messages_per_client_per_minute else None

    def make() -> CappedSMTP:
        return CappedSMTP(
            handler,
            gate=gate,
            rate=rate,
            replies=replies,
            data_size_limit=data_size_limit,
            enable_SMTPUTF8=True,
            hostname=hostname,
            tls_context=tls_context,
            # A slow sender has this long between commands (five minutes by default; RFC 5321
            # s.4.5.3.2 suggests more for DATA, but a stuck client must not hold a slot for ever).
            timeout=idle_seconds,
        )

    return make


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx
