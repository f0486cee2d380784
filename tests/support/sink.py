"""A local SMTP sink standing in for the outbound relay: records every message it accepts.

It can be told to answer 4xx or 5xx for a while, to exercise the outbox's retries.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import default

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> Message:
        return message_from_bytes(self.raw, policy=default)


@dataclass
class _Handler:
    messages: list[Received] = field(default_factory=list)
    fail_with: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.fail_with:
            return self.fail_with
        raw = envelope.original_content or b""
        with self.lock:
            self.messages.append(Received(envelope.mail_from or "", list(envelope.rcpt_tos), bytes(raw)))
        return "250 OK"


def free_port() -> int:
    """A loopback port that was free a moment ago (Controller cannot bind port 0 and report it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """`with Sink() as sink:`; point EVIDENCE_RELAY_URL at `sink.url`."""

    def __init__(self) -> None:
        self.handler = _Handler()
        # The sink is test scaffolding, so aiosmtpd's threaded Controller is fine here.
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> Sink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    def fail(self, status: str | None) -> None:
        self.handler.fail_with = status
