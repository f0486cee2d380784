"""DATA read into one buffer (handlers.smtp_data) against aiosmtpd's own smtp_DATA, over real sockets.

The first test runs aiosmtpd's SMTP and OneBufferDATA side by side on generated inputs (dots,
bare CR and LF, lines about the length limit and far over it, data past the size limit, the
whole sent in pieces) and requires the same replies and byte-for-byte the same content handed to
the handler. The others drive the door itself (bot.runtime.service.Service, on each database) with a raw
client and look at what it stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import socket
import struct
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import col

from bot.runtime.service import Service
from handlers.smtp_data import OneBufferDATA, fix_mmap_threshold
from storage.db import unit_of_work
from storage.models import Inbound
from tests.conftest import make_settings
from tests.support.waiting import wait_for

CRLF = b"\r\n"
END = b"\r\n.\r\n"
SIZE_LIMIT = 4000  # small, so that generated data often goes past it


# ---------------------------------------------------------------- the same as aiosmtpd


class Recorder:
    """Keeps what each DATA handed the handler: the original content and the content, with their types."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes, str, Any]] = []

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        self.seen.append((type(envelope.original_content).__name__, envelope.original_content,
                          type(envelope.content).__name__, envelope.content))
        return "250 OK"


# Two settings: the door's (bytes, SMTPUTF8), and decoded text under strict ASCII (its own 500).
CONFIGS: dict[str, dict[str, Any]] = {
    "bytes": {"enable_SMTPUTF8": True},
    "ascii-text": {"enable_SMTPUTF8": False, "decode_data": True},
}
KINDS: dict[str, type[SMTP]] = {"aiosmtpd": SMTP, "one-buffer": OneBufferDATA}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[tuple[str, str], tuple[int, Recorder]]]:
    """(config, kind) -> (port, recorder): every server on one event loop in a thread."""
    loop = asyncio.new_event_loop()
    out: dict[tuple[str, str], tuple[int, Recorder]] = {}
    made: list[asyncio.Server] = []

    async def start() -> None:
        for cfg, options in CONFIGS.items():
            for kind, cls in KINDS.items():
                rec = Recorder()

                def factory(cls: type[SMTP] = cls, rec: Recorder = rec, options: dict[str, Any] = options) -> SMTP:
                    return cls(rec, data_size_limit=SIZE_LIMIT, hostname="test.example", **options)

                srv = await loop.create_server(factory, "127.0.0.1", 0)
                made.append(srv)
                out[cfg, kind] = (srv.sockets[0].getsockname()[1], rec)

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield out
    finally:
        async def stop() -> None:
            for srv in made:
                srv.close()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _reply(f: Any) -> bytes:
    out = b""
    while True:
        line = f.readline()
        out += line
        if not line or line[3:4] != b"-":
            return out


def talk(port: int, wire: bytes, cuts: list[int], *, pause: float = 0.0) -> list[bytes]:
    """One session: EHLO, MAIL, RCPT, DATA, `wire` sent in pieces cut at `cuts`, QUIT; its replies."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each piece its own segment, mostly
    f = s.makefile("rb")
    try:
        replies = [_reply(f)]
        for cmd in (b"EHLO client.example", b"MAIL FROM:<ann@example.org>", b"RCPT TO:<evidence@localhost>",
                    b"DATA"):
            s.sendall(cmd + CRLF)
            replies.append(_reply(f))
        at = 0
        for cut in [*sorted(set(cuts)), len(wire)]:
            if cut > at:
                s.sendall(wire[at:cut])
                at = cut
                if pause:
                    time.sleep(pause)
        replies.append(_reply(f))
        s.sendall(b"QUIT\r\n")
        replies.append(_reply(f))
        return replies
    finally:
        f.close()
        s.close()


def same_as_aiosmtpd(servers: dict[tuple[str, str], tuple[int, Recorder]], wire: bytes, cuts: list[int],
                     *, cfg: str = "bytes") -> bytes:
    """Sends `wire` to aiosmtpd and to OneBufferDATA; requires the same replies and the same
    content handed over, of the same type. Returns the reply to the end of the data."""
    results = {}
    for kind in KINDS:
        port, rec = servers[cfg, kind]
        before = len(rec.seen)
        replies = talk(port, wire, cuts, pause=0.002 if cuts else 0.0)
        results[kind] = (replies, rec.seen[before:])
    want_replies, want_seen = results["aiosmtpd"]
    replies, seen = results["one-buffer"]
    assert replies == want_replies, cfg
    assert seen == want_seen, cfg  # bytes, or text if decoded, the same
    return want_replies[-2]


CUT = None  # in a generated body: send what comes before as a TCP write of its own, then pause
_PIECE = (
    st.sampled_from([b".", b"..", CRLF, b"\n", b"\r", b"x", b"\r\n.", b"\r\n..", b".\n", b"\xff", "é".encode()])
    | st.binary(max_size=16)
    | st.integers(996, 1006).map(lambda n: b"y" * n)  # about the 1001-byte line limit
    | st.sampled_from([b"z" * 3000, b"w" * 70_000])  # over it, and over the StreamReader's buffer
    | st.just(CUT)
)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(_PIECE, max_size=24))
def test_replies_and_content_are_aiosmtpds(
    servers: dict[tuple[str, str], tuple[int, Recorder]], pieces: list[bytes | None]
) -> None:
    body, cuts = b"", []
    for p in pieces:
        if p is CUT:
            cuts.append(len(body))
        else:
            body += p
    wire = body + END
    # Only the final terminator: a "." line inside the body would leave the rest as commands.
    assume((CRLF + wire).find(END) == len(body) + 2)
    for cfg in CONFIGS:
        same_as_aiosmtpd(servers, wire, cuts, cfg=cfg)


LINE = b"y" * 70 + CRLF
EDGES = {  # name: (wire, where to cut it, the reply's start)
    "dot-stuffed": (b"..x\r\n.\r\nok\r\n...\r\n" + END, [], b"250"),
    "bare LF and CR": (b"a\n.\nb\r.\r\n.\n" + END, [], b"250"),
    # aiosmtpd takes a line of 1001 bytes with its CRLF, not 1002 (line_length_limit).
    "longest line": (b"y" * 999 + END, [], b"250"),
    "line one too long": (b"y" * 1000 + END, [], b"500 Line too long"),
    "line too long for the StreamReader": (b"z" * 3000 + END, [], b"500 Line too long"),
    "too much data": (LINE * 60 + END, [], b"552"),
    # The first of the two errors is the one answered, and for a line of 1002-1003 bytes
    # aiosmtpd looks at the size before the length.
    "too much, then too long": (LINE * 60 + b"z" * 3000 + CRLF + END, [], b"552"),
    "too long, then too much": (b"z" * 3000 + CRLF + LINE * 60 + END, [], b"500 Line too long"),
    "too much and too long in one line": ((b"y" * 999 + CRLF) * 3 + b"y" * 1000 + END, [], b"552"),
    # A long line's piece ends with a dot, and its CRLF comes in the next write: ".\r\n" is
    # then the end of that long line, not the end of the data.
    "dot at the end of a long line": (b"z" * 3000 + b".\r\nmore\r\n" + END, [3001], b"500 Line too long"),
    "CRLF split": (b"abc\r\n..d\r\n" + END, [4, 6, 8], b"250"),
}


@pytest.mark.parametrize("name", EDGES)
def test_edge_cases_answer_as_aiosmtpd(servers: dict[tuple[str, str], tuple[int, Recorder]], name: str) -> None:
    wire, cuts, reply = EDGES[name]
    assert same_as_aiosmtpd(servers, wire, cuts).startswith(reply)


def test_strict_ascii_answers_as_aiosmtpd(servers: dict[tuple[str, str], tuple[int, Recorder]]) -> None:
    assert same_as_aiosmtpd(servers, "é".encode() + END, [], cfg="ascii-text").startswith(b"500 Error: strict")
    assert same_as_aiosmtpd(servers, b"plain" + END, [], cfg="ascii-text").startswith(b"250")


# ---------------------------------------------------------------- the door


def stored(svc: Service) -> list[bytes]:
    with unit_of_work(svc.engine, read_only=True) as s:
        return [bytes(r) for r in s.execute(select(col(Inbound.raw)).order_by(col(Inbound.id))).scalars()]


class Client:
    """A raw asyncio SMTP client: every byte of the DATA is the test's own (no dot-stuffing)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = cls(reader, writer)
        try:
            assert (await c.reply()).startswith(b"220")
            await c.command(b"EHLO client.example", b"250")
        except BaseException:
            await c.close()
            raise
        return c

    async def reply(self) -> bytes:
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 30)
            if line[3:4] != b"-":
                return line

    async def command(self, cmd: bytes, code: bytes) -> bytes:
        self.writer.write(cmd + CRLF)
        r = await self.reply()
        assert r.startswith(code), (cmd, r)
        return r

    async def start_data(self) -> None:
        await self.command(b"MAIL FROM:<ann@example.org>", b"250")
        await self.command(b"RCPT TO:<evidence@localhost>", b"250")
        await self.command(b"DATA", b"354")

    async def data(self, wire: bytes, *, piece: int = 0) -> bytes:
        """DATA with `wire` (terminator included) sent whole or `piece` bytes at a time; the reply."""
        await self.start_data()
        if piece:
            for i in range(0, len(wire), piece):
                self.writer.write(wire[i:i + piece])
                await self.writer.drain()
                await asyncio.sleep(0.0005)  # the next piece is a segment of its own
        else:
            self.writer.write(wire)
        return await self.reply()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


RUN = uuid.uuid4().hex


def message(i: int, *lines: bytes) -> bytes:
    head = [b"From: Ann <ann@example.org>", b"To: evidence@localhost", b"Subject: data " + str(i).encode(),
            f"Message-ID: <data-{i}-{RUN}@example.org>".encode(), b""]
    return CRLF.join(head + list(lines)) + CRLF


@pytest.fixture
async def door(db_url: str) -> AsyncIterator[Service]:
    async with Service(make_settings(db_url, EVIDENCE_MAX_MESSAGE_BYTES=10_000_000)) as svc:
        yield svc


async def test_dot_stuffed_lines_arrive_with_one_dot_less(door: Service) -> None:
    c = await Client.open(door.smtp_port)
    sent = message(1, b"..x", b"...", b"..", b".y", b"a.b", b" .c")
    assert (await c.data(sent + b".\r\n")).startswith(b"250")
    await c.close()
    # Every line that starts with a dot loses it, as aiosmtpd does (".y" was not stuffed: "y").
    assert stored(door) == [message(1, b".x", b"..", b".", b"y", b"a.b", b" .c")]


async def test_bare_lf_and_cr_are_data_and_only_crlf_ends_a_line(door: Service) -> None:
    c = await Client.open(door.smtp_port)
    body = b"one\ntwo\n.\nthree\r\n..four\n.five\r\nsix\r.\r\nseven\n..\r\n"
    sent = message(2) + body
    assert (await c.data(sent + b".\r\n")).startswith(b"250")
    await c.close()
    # Neither "\n.\n" nor "\r.\r\n" ends the data; a dot is taken off only after CRLF.
    want = message(2) + b"one\ntwo\n.\nthree\r\n.four\n.five\r\nsix\r.\r\nseven\n..\r\n"
    assert stored(door) == [want]


async def test_a_line_over_the_limit_gets_500_and_nothing_is_stored(door: Service) -> None:
    c = await Client.open(door.smtp_port)
    r = await c.data(message(3, b"a" * 5000, b"after") + b".\r\n")
    assert r.startswith(b"500 Line too long")
    assert (await c.data(message(4, b"short") + b".\r\n")).startswith(b"250")  # the session goes on
    await c.close()
    assert [b"Subject: data 4" in raw for raw in stored(door)] == [True]


async def test_data_past_the_size_limit_gets_552_and_nothing_is_stored(db_url: str) -> None:
    async with Service(make_settings(db_url, EVIDENCE_MAX_MESSAGE_BYTES=10_000)) as svc:
        c = await Client.open(svc.smtp_port)
        r = await c.data(message(5, *[b"x" * 76] * 400) + b".\r\n", piece=4096)
        assert r.startswith(b"552 Error: Too much mail data")
        assert (await c.data(message(6, b"small") + b".\r\n")).startswith(b"250")
        await c.close()
        assert [b"Subject: data 6" in raw for raw in stored(svc)] == [True]


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_client_gone_mid_data_stores_nothing_and_the_door_goes_on(db_url: str, how: str) -> None:
    # One connection slot: the next session gets in only if the lost one gave its slot back.
    async with Service(make_settings(db_url, EVIDENCE_SMTP_MAX_CONNECTIONS=1)) as svc:
        c = await Client.open(svc.smtp_port)
        await c.start_data()
        c.writer.write(message(7, *[b"x" * 76] * 100)[:5000])
        await c.writer.drain()
        if how == "reset":
            # Linger on, for 0 s: close() sends RST, as a client that crashes would.
            c.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await c.close()

        async def deliver() -> bytes:
            c2 = await Client.open(svc.smtp_port)
            try:
                return await c2.data(message(8, b"after") + b".\r\n")
            finally:
                await c2.close()

        async def try_deliver() -> bytes | None:
            try:
                return await deliver()
            except AssertionError:  # 421: the slot is not free yet
                return None

        r = None
        deadline = time.monotonic() + 10
        while r is None and time.monotonic() < deadline:
            r = await try_deliver()
            if r is None:
                await asyncio.sleep(0.05)
        assert r is not None and r.startswith(b"250")
        assert [b"Subject: data 8" in raw for raw in stored(svc)] == [True]


async def test_a_message_in_many_small_writes_is_stored_whole(door: Service) -> None:
    c = await Client.open(door.smtp_port)
    sent = message(9, *[f"line {i} of a message sent a few bytes at a time".encode() for i in range(40)],
                   b"..dotted", b"")
    assert (await c.data(sent + b".\r\n", piece=7)).startswith(b"250")
    await c.close()
    assert stored(door) == [sent.replace(b"\r\n..dotted", b"\r\n.dotted")]


async def test_a_big_message_is_stored_byte_for_byte(door: Service) -> None:
    # Several MB: the buffer grows many times.
    line = bytes(range(33, 111)) + CRLF
    sent = message(10, b"") + line * 60_000
    c = await Client.open(door.smtp_port)
    assert (await c.data(sent + b".\r\n")).startswith(b"250")
    await c.close()
    await wait_for(lambda: len(stored(door)) == 1)
    assert stored(door) == [sent]


async def test_data_cut_short_by_a_lost_transport_is_not_handed_on() -> None:
    """The read loop ending with no terminator (the transport gone): aiosmtpd calls the handler
    with what it has, an empty message here; OneBufferDATA does not call it."""
    seen = {}
    for kind, cls in KINDS.items():
        rec = Recorder()
        proto = cls(rec, hostname="test.example")
        proto.session = Session(asyncio.get_running_loop())
        proto.session.host_name = "client.example"
        proto.envelope = Envelope()
        proto.envelope.mail_from = "ann@example.org"
        proto.envelope.rcpt_tos.append("evidence@localhost")
        replies: list[str] = []

        async def push(status: Any, replies: list[str] = replies) -> None:
            replies.append(status)

        proto.push = push  # type: ignore[method-assign]
        proto._reader = asyncio.StreamReader()  # as connection_made would have set it
        await proto.smtp_DATA("")  # no connection was ever made: transport is None
        seen[kind] = (replies, rec.seen)
    assert seen["aiosmtpd"][1] and seen["aiosmtpd"][1][0][1] == b""
    assert seen["one-buffer"] == (["354 End data with <CR><LF>.<CR><LF>"], [])


def test_the_mmap_threshold_is_fixed_where_glibc_allows() -> None:
    assert fix_mmap_threshold() is (platform.libc_ver()[0] == "glibc")


async def test_an_8bit_or_nul_envelope_sender_is_stored_not_refused_for_ever(door: Service) -> None:
    """aiosmtpd (SMTPUTF8 on) hands an envelope address with invalid UTF-8 over with lone
    surrogates, which no database driver encodes, and PostgreSQL refuses NUL in a text column:
    the commit failed, and the sender's server heard 451 on every retry. Such values are stored
    with U+FFFD (NUL dropped); the raw copy is the message as it came."""
    c = await Client.open(door.smtp_port)
    try:
        for sender, helo in ((b"a\xff\xfe@example.org", b"EHLO client\xff.example"),
                             (b"nul\x00@example.org", b"EHLO client.example")):
            await c.command(helo, b"250")
            await c.command(b"MAIL FROM:<" + sender + b">", b"250")
            await c.command(b"RCPT TO:<evidence@localhost>", b"250")
            await c.command(b"DATA", b"354")
            c.writer.write(message(len(sender)) + b".\r\n")
            assert (await c.reply()).startswith(b"250")
    finally:
        await c.close()
    with unit_of_work(door.engine, read_only=True) as s:
        rows = s.execute(select(col(Inbound.envelope_from), col(Inbound.helo)).order_by(col(Inbound.id))).all()
    assert [tuple(r) for r in rows] == [("a\ufffd\ufffd@example.org", "client\ufffd.example"),
                                        ("nul@example.org", "client.example")]
    assert stored(door) == [message(len(b"a\xff\xfe@example.org")), message(len(b"nul\x00@example.org"))]
