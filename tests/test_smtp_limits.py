"""The SMTP door cannot be held shut: per-client caps, idle timeouts, stress, message rate.

Real sockets against the real Service. Clients bind to loopback source addresses other than
127.0.0.1 (which is trusted, like ::1), so each address is a client of its own (Linux routes the
whole of 127.0.0.0/8 to loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import smtplib
import socket
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.runtime.service import Service
from handlers import smtp_limits
from handlers.smtp_limits import ConnectionGate, MessageRate, client_key, plain_ip
from storage.db import make_engine
from storage.models import Inbound
from tests.conftest import make_settings
from tests.test_smtp_door import count, evidence

TIMEOUT_LINE = b"421 4.4.2 "


def send_from(port: int, source: str, raw: bytes, *, sender: str = "ann@example.org") -> Any:
    with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(source, 0)) as c:
        return c.sendmail(sender, ["evidence@localhost"], raw)


class Line:
    """A raw client socket from one source address, read a line at a time."""

    def __init__(self, port: int, source: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
        self.file = self.sock.makefile("rb")

    def read(self, timeout: float = 10) -> bytes:
        """The next reply line, or b"" once the server has closed the connection."""
        self.sock.settimeout(timeout)
        try:
            return self.file.readline()
        except ConnectionResetError:
            return b""

    def command(self, cmd: bytes) -> bytes:
        """Send a command; its last reply line."""
        self.sock.sendall(cmd + b"\r\n")
        while True:
            line = self.read()
            if line[3:4] != b"-":
                return line

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@contextlib.contextmanager
def lines(port: int, sources: list[str]) -> Iterator[list[Line]]:
    opened: list[Line] = []
    try:
        for s in sources:
            opened.append(Line(port, s))
        yield opened
    finally:
        for c in opened:
            c.close()


async def greetings(conns: list[Line]) -> list[bytes]:
    return await asyncio.to_thread(lambda: [c.read() for c in conns])


@pytest.fixture
def quick_stress(monkeypatch: pytest.MonkeyPatch) -> float:
    """The stress timeout (Postfix's 10 s) at 1 s for the servers a test starts, to keep it short."""
    monkeypatch.setattr(smtp_limits, "STRESS_IDLE_SECONDS", 1.0)
    return 1.0


# ------------------------------------------------------------------ 1. one client, many slots


async def test_one_client_gets_its_share_and_others_still_deliver(db_url: str) -> None:
    settings = make_settings(db_url, EVIDENCE_SMTP_MAX_CONNECTIONS=30)  # per client: 10, the default
    async with Service(settings) as svc:
        with lines(svc.smtp_port, ["127.0.0.5"] * 14) as held:
            said = await greetings(held)
            assert all(g.startswith(b"220") for g in said[:10])
            for g in said[10:]:
                assert g.startswith(b"421 4.7.0 Too many connections from your address")
            assert all(c.read() == b"" for c in held[10:])  # ... and closed
            # Another sender is not affected, at once.
            t0 = time.monotonic()
            assert await asyncio.to_thread(send_from, svc.smtp_port, "127.0.0.2", evidence(1)) == {}
            assert time.monotonic() - t0 < 5
            assert count(svc.engine, Inbound) == 1
        # Its closed connections give the client its share back.
        await asyncio.sleep(0.2)
        with lines(svc.smtp_port, ["127.0.0.5"] * 10) as again:
            assert all(g.startswith(b"220") for g in await greetings(again))


# ------------------------------------------------------------------ 2. many clients, every slot


async def test_idle_holders_on_many_addresses_cannot_keep_a_patient_sender_out(db_url: str) -> None:
    """Twelve addresses, two idle connections each, for twenty slots: every slot is held, and the
    holders reconnect the moment they are cut (those left over retry every 0.1 s). A sender that
    retries once a second, as an MTA would (only more patiently), gets its message in."""
    settings = make_settings(db_url, EVIDENCE_SMTP_MAX_CONNECTIONS=20, EVIDENCE_SMTP_MAX_CONNECTIONS_PER_CLIENT=2)
    async with Service(settings) as svc:
        port = svc.smtp_port
        stop = asyncio.Event()
        cuts: list[bytes] = []

        async def hold(source: str) -> None:
            while not stop.is_set():
                reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
                try:
                    if not (await reader.readline()).startswith(b"220"):
                        await asyncio.sleep(0.1)
                        continue
                    while not stop.is_set():  # idle until cut
                        with contextlib.suppress(TimeoutError):
                            line = await asyncio.wait_for(reader.readline(), 0.2)
                            cuts.append(line)
                            break
                finally:
                    writer.close()
                    with contextlib.suppress(ConnectionError):
                        await writer.wait_closed()

        holders = [asyncio.create_task(hold(f"127.0.0.{10 + i // 2}")) for i in range(24)]
        try:
            await asyncio.sleep(0.5)
            with lines(port, ["127.0.0.3"]) as [probe]:  # the door is shut to everyone else
                assert (await asyncio.to_thread(probe.read)).startswith(b"421 4.7.0 Too many connections")

            def patient() -> tuple[int, float]:
                t0 = time.monotonic()
                for attempt in range(1, 31):
                    try:
                        assert send_from(port, "127.0.0.2", evidence(1)) == {}
                        return attempt, time.monotonic() - t0
                    except OSError:  # 421 at the greeting (smtplib's errors are OSErrors), or a reset
                        time.sleep(1)
                raise AssertionError("the sender never got in")

            attempts, took = await asyncio.to_thread(patient)
            assert took < 30
            assert count(svc.engine, Inbound) == 1
            assert cuts and all(c.startswith(TIMEOUT_LINE) for c in cuts)  # holders were cut, not crashed
        finally:
            stop.set()
            await asyncio.gather(*holders)
    print(f"got in on attempt {attempts} after {took:.1f} s; {len(cuts)} idle sessions cut")


# ------------------------------------------------------------------ 3. message rate, trusted clients


async def test_message_rate_per_client_and_trusted_clients_are_exempt(db_url: str) -> None:
    settings = make_settings(db_url, EVIDENCE_SMTP_MESSAGES_PER_CLIENT_PER_MINUTE=3,
                             EVIDENCE_SMTP_MAX_CONNECTIONS_PER_CLIENT=2, EVIDENCE_SMTP_TRUSTED_CLIENTS="127.0.0.6")
    async with Service(settings) as svc:
        port = svc.smtp_port

        def four_from(source: str, first: int) -> list[Any]:
            results: list[Any] = []
            with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(source, 0)) as c:
                for i in range(first, first + 4):
                    try:
                        results.append(c.sendmail("ann@example.org", ["evidence@localhost"], evidence(i)))
                    except smtplib.SMTPSenderRefused as e:
                        results.append((e.smtp_code, e.smtp_error))
            return results

        fast = await asyncio.to_thread(four_from, "127.0.0.3", 1)
        assert fast[:3] == [{}, {}, {}]
        code, text = fast[3]
        assert code == 450 and text.startswith(b"4.7.1 Too many messages from your address")
        assert count(svc.engine, Inbound) == 3  # the fourth was not stored
        # A new connection does not reset the count.
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            await asyncio.to_thread(send_from, port, "127.0.0.3", evidence(5))
        assert e.value.smtp_code == 450
        # Another client is not affected.
        assert await asyncio.to_thread(send_from, port, "127.0.0.4", evidence(6)) == {}
        # Trusted clients: the configured one and loopback's 127.0.0.1 have no rate...
        assert await asyncio.to_thread(four_from, "127.0.0.6", 10) == [{}] * 4
        assert await asyncio.to_thread(four_from, "127.0.0.1", 20) == [{}] * 4
        assert count(svc.engine, Inbound) == 3 + 1 + 4 + 4
        # ... and no per-client connection cap, which others have (2 here).
        with lines(port, ["127.0.0.6"] * 4 + ["127.0.0.1"] * 4 + ["127.0.0.4"] * 3) as conns:
            said = await greetings(conns)
        assert all(g.startswith(b"220") for g in said[:10])
        assert said[10].startswith(b"421 4.7.0 Too many connections from your address")


def test_message_rate_window_slides_and_forgets_quiet_clients() -> None:
    now = [1000.0]
    rate = MessageRate(3, clock=lambda: now[0])
    assert [rate.take("a") for _ in range(4)] == [True, True, True, False]
    now[0] += 30
    assert rate.take("a") is False  # refused ones are not counted ...
    assert rate.take("b") is True
    now[0] += 29.9
    assert rate.take("a") is False  # ... so the window is still the first three's
    now[0] += 0.2  # the first three are now more than 60 s old
    assert [rate.take("a") for _ in range(4)] == [True, True, True, False]
    # A sliding window: no double burst across a boundary.
    now[0] += 59
    assert rate.take("a") is False
    # Memory: clients whose window has emptied are forgotten, however many there were.
    for i in range(10_000):
        rate.take(f"10.0.{i // 256}.{i % 256}")
    assert len(rate) == 10_001  # "b" went quiet 89 s ago and is gone already
    now[0] += 61
    assert rate.take("c") is True
    assert len(rate) == 1


def test_clients_are_addresses_and_ipv6_sites() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert plain_ip("::ffff:192.0.2.7") == "192.0.2.7"
    # One IPv6 site is one client, as Postfix 3.8 counts them (/84).
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1") == "2001:db8::/84"
    assert client_key("2001:db8:0:1::1") != client_key("2001:db8::1")


# ------------------------------------------------------------------ 4. idle timeout


async def test_idle_sessions_are_cut_after_the_configured_time(db_url: str) -> None:
    async with Service(make_settings(db_url, EVIDENCE_SMTP_IDLE_SECONDS=1)) as svc:
        with lines(svc.smtp_port, ["127.0.0.7", "127.0.0.8"]) as [idle, talking]:
            assert all(g.startswith(b"220") for g in await greetings([idle, talking]))
            t0 = time.monotonic()

            def cut_after() -> tuple[bytes, float]:
                line = idle.read()
                return line, time.monotonic() - t0

            def keep_talking() -> list[bytes]:
                said = []
                for _ in range(5):  # 2 s, never 1 s quiet
                    time.sleep(0.4)
                    said.append(talking.command(b"NOOP"))
                return said

            (cut, after), said = await asyncio.gather(asyncio.to_thread(cut_after), asyncio.to_thread(keep_talking))
            assert cut.startswith(TIMEOUT_LINE) and b"timeout exceeded" in cut
            assert 0.8 < after < 1.9
            assert await asyncio.to_thread(idle.read) == b""  # closed
            assert all(s.startswith(b"250") for s in said)  # the talker was not
            # The talker, quiet from now on, is cut a second after its last command.
            t1 = time.monotonic()
            assert (await asyncio.to_thread(talking.read)).startswith(TIMEOUT_LINE)
            assert 0.8 < time.monotonic() - t1 < 1.9
        assert await asyncio.to_thread(send_from, svc.smtp_port, "127.0.0.7", evidence(1)) == {}
        assert count(svc.engine, Inbound) == 1


# ------------------------------------------------------------------ stress


async def test_under_stress_idle_sessions_are_cut_early(db_url: str, quick_stress: float) -> None:
    """Stress is more than half the slots in use. When it begins, sessions idle for the stress
    timeout are cut at once, the others when they reach it; when it ends, the normal time is back."""
    async with Service(make_settings(db_url, EVIDENCE_SMTP_MAX_CONNECTIONS=8)) as svc:
        port = svc.smtp_port
        with lines(port, [f"127.0.0.{20 + i}" for i in range(4)]) as old:  # half: no stress
            assert all(g.startswith(b"220") for g in await greetings(old))
            await asyncio.sleep(quick_stress + 0.5)
            with lines(port, ["127.0.0.30"]) as [new]:  # five of eight: stress
                t0 = time.monotonic()
                assert (await asyncio.to_thread(new.read)).startswith(b"220")
                cuts = await greetings(old)
                assert all(c.startswith(TIMEOUT_LINE) for c in cuts)
                assert time.monotonic() - t0 < 0.9  # at once, not after a stress timeout of their own
                # With the old four gone, one of eight is no stress: the normal 300 s applies again.
                await asyncio.sleep(quick_stress + 0.5)
                assert (await asyncio.to_thread(new.command, b"NOOP")).startswith(b"250")
            # While stress lasts, a session that arrives and says nothing gets the short timeout;
            # sessions that talk are not cut. (Stress is judged when each deadline comes: cutting
            # one session can end it, and then the others keep the normal time.)
            talkers_at = [f"127.0.0.{40 + i}" for i in range(5)]  # five of eight: stress
            with lines(port, talkers_at) as talkers, lines(port, ["127.0.0.60"]) as [late]:
                assert all(g.startswith(b"220") for g in await greetings([*talkers, late]))
                t0 = time.monotonic()

                def talk_until_late_is_cut() -> tuple[bytes, float]:
                    while time.monotonic() - t0 < quick_stress + 3:
                        for c in talkers:
                            assert c.command(b"NOOP").startswith(b"250")
                        if select.select([late.sock], [], [], 0.2)[0]:
                            return late.read(), time.monotonic() - t0
                    raise AssertionError("the quiet newcomer was not cut")

                cut, after = await asyncio.to_thread(talk_until_late_is_cut)
                assert cut.startswith(TIMEOUT_LINE)
                assert after < quick_stress + 0.8
                for c in talkers:  # still there
                    assert (await asyncio.to_thread(c.command, b"NOOP")).startswith(b"250")
        assert await asyncio.to_thread(send_from, port, "127.0.0.2", evidence(1)) == {}


# ------------------------------------------------------------------ 5. mid-DATA is never cut


@contextlib.contextmanager
def write_lock(db_url: str) -> Iterator[None]:
    """Another writer holds the database (a CLI command, a slow disk): commits wait for it."""
    if db_url.startswith("sqlite:///"):
        con = sqlite3.connect(db_url[len("sqlite:///"):], isolation_level=None)
        con.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            con.execute("ROLLBACK")
            con.close()
        return
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("LOCK TABLE inbound IN EXCLUSIVE MODE")  # inserts wait
            yield
            conn.rollback()
    finally:
        engine.dispose()


async def test_a_session_mid_data_is_not_cut_when_stress_begins(db_url: str, quick_stress: float) -> None:
    async with Service(make_settings(db_url, EVIDENCE_SMTP_MAX_CONNECTIONS=4)) as svc:
        port = svc.smtp_port

        def up_to_data(c: Line) -> None:
            assert c.read().startswith(b"220")
            for cmd in (b"EHLO me", b"MAIL FROM:<ann@example.org>", b"RCPT TO:<evidence@localhost>"):
                assert c.command(cmd).startswith(b"250")
            assert c.command(b"DATA").startswith(b"354")

        with lines(port, ["127.0.0.50", "127.0.0.51"]) as [sending, committing]:
            await asyncio.to_thread(up_to_data, sending)
            await asyncio.to_thread(up_to_data, committing)
            raw = evidence(1)
            with write_lock(db_url):
                sending.sock.sendall(raw[:200])  # half a message, then a pause longer than the stress timeout
                committing.sock.sendall(evidence(2) + b"\r\n.\r\n")  # all of it: now waiting for its commit
                with lines(port, ["127.0.0.52"]) as [idle]:  # three of four: stress
                    assert (await asyncio.to_thread(idle.read)).startswith(b"220")
                    t0 = time.monotonic()
                    assert (await asyncio.to_thread(idle.read, 5)).startswith(TIMEOUT_LINE)  # the idle one
                    assert quick_stress - 0.2 < time.monotonic() - t0 < quick_stress + 0.8
                await asyncio.sleep(0.5)
                # The other two were not cut, and the commit has not answered yet.
                assert select.select([sending.sock, committing.sock], [], [], 0)[0] == []
            sending.sock.sendall(raw[200:] + b"\r\n.\r\n")
            assert (await asyncio.to_thread(committing.read)).startswith(b"250 2.0.0 OK: stored")
            assert (await asyncio.to_thread(sending.read)).startswith(b"250 2.0.0 OK: stored")
            assert (await asyncio.to_thread(sending.command, b"QUIT")).startswith(b"221")
        assert count(svc.engine, Inbound) == 2


# ------------------------------------------------------------------ the gate's state stays bounded


class FakeSession:
    def __init__(self, idle_for: float = 0.0) -> None:
        self.last_active = asyncio.get_running_loop().time() - idle_for
        self.was_cut = False

    def cut(self) -> None:
        self.was_cut = True


async def test_gate_caps_per_client_and_forgets_closed_clients() -> None:
    gate = ConnectionGate(4, per_client=2)
    entered = [FakeSession() for _ in range(4)]
    assert gate.try_enter(entered[0], "a", trusted=False) is None
    assert gate.try_enter(entered[1], "a", trusted=False) is None
    assert gate.try_enter(FakeSession(), "a", trusted=False) == smtp_limits.TOO_MANY_FROM_CLIENT
    assert gate.try_enter(entered[2], "a", trusted=True) is None  # trusted: no per-client cap
    assert gate.try_enter(entered[3], "b", trusted=False) is None
    assert gate.open == 4
    # Full, and nobody idle long enough to give way.
    assert gate.try_enter(FakeSession(), "c", trusted=False) == smtp_limits.TOO_MANY
    for s in entered:
        gate.release(s)
        gate.release(s)  # idempotent: a cut session is released at once and again when lost
    assert gate.open == 0 and gate.clients == 0


async def test_gate_full_gives_the_longest_idle_slot_to_a_newcomer() -> None:
    gate = ConnectionGate(3, per_client=2)
    in_data, idle, idler = FakeSession(idle_for=30), FakeSession(idle_for=3), FakeSession(idle_for=5)
    assert gate.try_enter(in_data, "x", trusted=False) is None
    assert gate.try_enter(idler, "y", trusted=False) is None
    assert gate.try_enter(idle, "y", trusted=False) is None
    gate.busy(in_data)  # mid-DATA: idle longest, but never given away
    assert gate.try_enter(FakeSession(), "z", trusted=False) is None
    assert idler.was_cut and not idle.was_cut and not in_data.was_cut
    assert gate.open == 3
    # "y", just cut, may take a free slot but not take one from anyone in turn.
    assert gate.try_enter(FakeSession(), "y", trusted=False) == smtp_limits.TOO_MANY
    assert gate.try_enter(FakeSession(), "w", trusted=False) is None  # a clean newcomer may
    assert idle.was_cut and not in_data.was_cut
    in_data.last_active = asyncio.get_running_loop().time()  # as CappedSMTP does once DATA is answered
    gate.ready(in_data)  # from now on idle like any other session
    assert gate.try_enter(FakeSession(), "v", trusted=False) == smtp_limits.TOO_MANY


async def test_gate_remembers_cuts_for_a_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smtp_limits, "CUT_MEMORY_SECONDS", 0.2)
    gate = ConnectionGate(1000)
    for i in range(500):  # many clients, each cut once (as idle scanners would be)
        s = FakeSession()
        gate.try_enter(s, f"10.0.{i // 256}.{i % 256}", trusted=False)
        gate.cut(s, asyncio.get_running_loop().time())
    assert gate.open == 0 and 0 < gate.clients <= 500
    await asyncio.sleep(0.3)
    s = FakeSession()
    gate.try_enter(s, "10.1.0.1", trusted=False)
    gate.cut(s, asyncio.get_running_loop().time())
    assert gate.clients == 1  # the older cuts are forgotten
