"""The IMAP door against a real Dovecot (tests/support/dovecot.py), on SQLite and PostgreSQL.

Each test starts its own Dovecot on a loopback port with a temporary Maildir, puts messages in
by IMAP APPEND, runs the service (in this process, or as a `serve` subprocess for the crash) and
looks at both sides: what the database stored and filed, and what is left in which folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import stat
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from bot import acks
from bot.runtime.service import Service
from bot.settings import Settings
from handlers.imap import reader as imap_reader
from handlers.imap.client import ImapTarget
from handlers.imap.reader import ImapDoor
from storage.db import make_engine, unit_of_work
from storage.models import ImapState, Inbound, OutboxItem, Submission
from tests.conftest import make_settings
from tests.support.dovecot import (
    CAPS_NO_IDLE,
    CAPS_NO_MOVE,
    DOVECOT,
    SKIP_REASON,
    Dovecot,
    HoldingProxy,
    self_signed,
)
from tests.support.sink import Sink
from tests.support.waiting import wait_for

needs_dovecot = pytest.mark.skipif(DOVECOT is None, reason=SKIP_REASON)


def evidence(i: int, tag: str = "t", *, return_path: str | None = "auto", size: int = 0) -> bytes:
    m = EmailMessage()
    m["From"] = f"Witness {i} <witness{i}@example.org>"
    m["To"] = "evidence@localhost"
    m["Subject"] = f"Evidence: shared payroll service {i}"
    m["Message-ID"] = f"<imap-{tag}-{i}@example.org>"
    if return_path is not None:
        m["Return-Path"] = f"<witness{i}@example.org>" if return_path == "auto" else return_path
    m.set_content(
        f"Project: Payroll {i}\nPublic body: Exampleton Borough Council\nSupplier: Example Services Ltd\n"
        "Contract value: £2m\nOutcome: Success\n\nThe service improved after the move.\n" + "x" * size
    )
    return bytes(m)


@pytest.fixture
def dovecots() -> Iterator[list[Dovecot]]:
    """Dovecots a test made; each is stopped and its directory removed at the end."""
    made: list[Dovecot] = []
    yield made
    for d in made:
        d.close()


def dovecot(dovecots: list[Dovecot], **kw: Any) -> Dovecot:
    d = Dovecot(**kw)
    dovecots.append(d)
    d.start()
    return d


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # Seconds instead of minutes, so a refused login or a server outage recovers within a test.
    monkeypatch.setattr(imap_reader, "BACKOFF_FIRST", 0.2)
    monkeypatch.setattr(imap_reader, "BACKOFF_MAX", 0.5)


def imap_settings(db_url: str, d: Dovecot, folder: str = "INBOX", **kw: object) -> Settings:
    values: dict[str, object] = {"EVIDENCE_IMAP_URL": d.url(folder), "EVIDENCE_IMAP_PASSWORD": d.password}
    values.update(kw)
    return make_settings(db_url, **values)


def rows(engine: Engine) -> list[Any]:
    with unit_of_work(engine, read_only=True) as s:
        return list(s.execute(
            select(col(Inbound.id), col(Inbound.message_id), col(Inbound.state), col(Inbound.peer),
                   col(Inbound.envelope_from), col(Inbound.envelope_to), col(Submission.reference))
            .join(Submission, col(Submission.inbound_id) == col(Inbound.id), isouter=True)
            .order_by(col(Inbound.id))
        ).all())


def all_filed(engine: Engine, n: int) -> bool:
    r = rows(engine)
    return len(r) == n and all(x.state == "processed" and x.reference for x in r)


async def drained(d: Dovecot, folder: str = "INBOX") -> None:
    await wait_for(lambda: d.count(folder) == 0)


@needs_dovecot
async def test_drains_oldest_first_stores_once_files_and_moves(db_url: str, dovecots: list[Dovecot]) -> None:
    d = dovecot(dovecots)
    msgs = [evidence(i) for i in range(5)]
    # The same message twice (a resend): stored once, both copies leave the folder.
    d.append([*msgs, msgs[2], evidence(9, return_path=None)])
    settings = imap_settings(db_url, d)
    engine = make_engine(db_url)
    try:
        async with Service(settings, smtp=False, web=False) as svc:
            await drained(d)
            await wait_for(lambda: all_filed(engine, 6))
            assert (await svc.health())["imap"] == "ok"
            r = rows(engine)
            # Oldest first: stored, and so numbered, in the folder's order.
            assert [x.message_id for x in r] == [f"<imap-t-{i}@example.org>" for i in (0, 1, 2, 3, 4, 9)]
            assert [x.reference for x in r] == sorted(x.reference for x in r)
            assert {x.peer for x in r} == {"imap:127.0.0.1"}
            assert r[0].envelope_from == "witness0@example.org"
            assert r[-1].envelope_from is None  # no Return-Path: the parser goes by From
            assert {x.envelope_to for x in r} == {"evidence@localhost"}
            assert d.count("Processed") == 7  # created by the reader; both copies of the resend
            with unit_of_work(engine) as s:
                state = s.get(ImapState, ImapTarget.from_url(settings.imap_url or "").mailbox_key)
                assert state is not None and state.last_uid == 7

            # IDLE: a message arriving while the service waits is taken within seconds.
            started = time.monotonic()
            d.append([evidence(20)])
            await drained(d)
            await wait_for(lambda: all_filed(engine, 7))
            assert time.monotonic() - started < 5
            t0 = time.monotonic()
        assert time.monotonic() - t0 < 3, "stop() must end the IDLE at once"
    finally:
        engine.dispose()


@needs_dovecot
async def test_without_move_copies_flags_and_expunges(db_url: str, dovecots: list[Dovecot]) -> None:
    d = dovecot(dovecots, capabilities=CAPS_NO_MOVE)
    d.append([evidence(i, "nomove") for i in range(3)])
    engine = make_engine(db_url)
    try:
        async with Service(imap_settings(db_url, d, EVIDENCE_IMAP_DONE_FOLDER="Done"), smtp=False, web=False) as svc:
            assert svc._imap is not None
            await drained(d)
            await wait_for(lambda: all_filed(engine, 3))
            mailbox = svc._imap._mailbox
            assert mailbox is not None and not mailbox.has_move and mailbox.has_uidplus
            assert d.count("Done") == 3
    finally:
        engine.dispose()


@needs_dovecot
async def test_polls_without_idle(db_url: str, dovecots: list[Dovecot]) -> None:
    d = dovecot(dovecots, capabilities=CAPS_NO_IDLE)
    engine = make_engine(db_url)
    try:
        async with Service(imap_settings(db_url, d, EVIDENCE_IMAP_POLL_SECONDS=0.3), smtp=False, web=False) as svc:
            await wait_for(lambda: svc._imap is not None and svc._imap._mailbox is not None)
            assert svc._imap is not None and svc._imap._mailbox is not None
            assert not svc._imap._mailbox.has_idle
            d.append([evidence(1, "poll"), evidence(2, "poll")])
            await drained(d)
            await wait_for(lambda: all_filed(engine, 2))
            t0 = time.monotonic()
        assert time.monotonic() - t0 < 3
    finally:
        engine.dispose()


async def healthz(port: int) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as resp:
        return resp.status, await resp.text()


@needs_dovecot
async def test_login_refused_shows_in_healthz_without_the_password_then_recovers(
    db_url: str, dovecots: list[Dovecot]
) -> None:
    d = dovecot(dovecots)
    d.append([evidence(1, "login")])
    wrong = "Wr0ng-pa55word-xyz"
    engine = make_engine(db_url)
    try:
        async with Service(imap_settings(db_url, d, EVIDENCE_IMAP_PASSWORD=wrong), web=True, smtp=False) as svc:
            await wait_for(lambda: svc._imap is not None and "login refused" in svc._imap.health())
            status, body = await healthz(svc.web_port)
            assert status == 503 and '"imap": "error: login refused by 127.0.0.1' in body, body
            assert wrong not in body and "evidence@example.org" not in body
            assert d.count("INBOX") == 1 and rows(engine) == []
            d.set_password(wrong)  # the operator fixes the account; the reader tries again by itself
            await drained(d)
            await wait_for(lambda: all_filed(engine, 1))
            status, body = await healthz(svc.web_port)
            assert status == 200 and '"imap": "ok"' in body
    finally:
        engine.dispose()


@needs_dovecot
async def test_server_down_then_up_recovers(db_url: str, dovecots: list[Dovecot]) -> None:
    d = dovecot(dovecots)
    d.stop()
    engine = make_engine(db_url)
    try:
        async with Service(imap_settings(db_url, d), smtp=False, web=False) as svc:
            def unreachable() -> str | None:
                h = svc._door_health["imap"]()
                return h if "cannot reach" in h else None

            health = await wait_for(unreachable)
            assert health == f"error: cannot reach 127.0.0.1:{d.port} (Connection refused)"
            d.start()
            await wait_for(lambda: svc._door_health["imap"]() == "ok")
            d.append([evidence(1, "down")])
            await drained(d)
            # Down again while the reader waits in IDLE, then up: it reconnects and carries on.
            d.stop()
            await wait_for(lambda: svc._door_health["imap"]().startswith("error: "))
            d.start()
            d.append([evidence(2, "down")])
            await drained(d)
            await wait_for(lambda: all_filed(engine, 2))
            assert svc._door_health["imap"]() == "ok"
    finally:
        engine.dispose()


@needs_dovecot
async def test_uidvalidity_change_rescans_without_duplicates(db_url: str, dovecots: list[Dovecot]) -> None:
    d = dovecot(dovecots)
    old = [evidence(i, "uv") for i in range(3)]
    d.append(old, folder="Evidence")
    settings = imap_settings(db_url, d, folder="Evidence")
    key = ImapTarget.from_url(settings.imap_url or "").mailbox_key
    engine = make_engine(db_url)
    try:
        async with Service(settings, smtp=False, web=False):
            await drained(d, "Evidence")
            await wait_for(lambda: all_filed(engine, 3))
        with unit_of_work(engine) as s:
            before = s.get(ImapState, key)
            assert before is not None and before.last_uid == 3
        # The folder is deleted and made again (a restore): new UIDVALIDITY, UIDs from 1 again.
        # Two new messages take UIDs 1 and 2, under the old position, then two old ones return.
        c = d.client()
        c.delete_folder("Evidence")
        c.create_folder("Evidence")
        c.logout()
        d.append([evidence(10, "uv"), evidence(11, "uv"), old[0], old[1]], folder="Evidence")
        async with Service(settings, smtp=False, web=False):
            await drained(d, "Evidence")
            await wait_for(lambda: all_filed(engine, 5))
        assert sorted(x.message_id for x in rows(engine)) == sorted(
            f"<imap-uv-{i}@example.org>" for i in (0, 1, 2, 10, 11))
        with unit_of_work(engine) as s:
            after = s.get(ImapState, key)
            assert after is not None and after.uidvalidity != before.uidvalidity and after.last_uid == 4
        assert d.count("Processed") == 7
    finally:
        engine.dispose()


@needs_dovecot
async def test_too_large_is_moved_aside_unfetched(db_url: str, dovecots: list[Dovecot],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    d = dovecot(dovecots)
    d.append([evidence(1, "big"), evidence(2, "big", size=3000), evidence(3, "big")])
    engine = make_engine(db_url)
    try:
        async with Service(imap_settings(db_url, d, EVIDENCE_MAX_MESSAGE_BYTES=2048), smtp=False, web=False):
            await drained(d)
            await wait_for(lambda: all_filed(engine, 2))
        assert [x.message_id for x in rows(engine)] == ["<imap-big-1@example.org>", "<imap-big-3@example.org>"]
        assert d.count("Processed.Too-large") == 1 and d.count("Processed") == 2
        assert any("UID 2 is" in r.getMessage() and "Too-large" in r.getMessage() for r in caplog.records)
    finally:
        engine.dispose()


@needs_dovecot
async def test_xoauth2_token_command_rerun_when_refused(db_url: str, dovecots: list[Dovecot], tmp_path: Path) -> None:
    # Dovecot's XOAUTH2 checks the token as the passdb's password: tok-2 is the valid one.
    d = dovecot(dovecots, password="tok-2")
    d.append([evidence(1, "oauth")])
    counter = tmp_path / "runs"
    script = tmp_path / "token.sh"
    # First run: an expired token (tok-1); every later run: a fresh one (tok-2).
    script.write_text(f'#!/bin/sh\necho x >> {counter}\nif [ "$(wc -l < {counter})" -eq 1 ]; then echo tok-1; '
                      'else echo tok-2; fi\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    settings = imap_settings(db_url, d, EVIDENCE_IMAP_PASSWORD=None, EVIDENCE_IMAP_OAUTH2_TOKEN_COMMAND=str(script))
    engine = make_engine(db_url)
    try:
        async with Service(settings, smtp=False, web=False) as svc:
            await drained(d)
            await wait_for(lambda: all_filed(engine, 1))
            assert (await svc.health())["imap"] == "ok"
        assert counter.read_text().count("x") == 2  # refused once, fetched once more, then kept
        assert "method=XOAUTH2" in d.output()

        # A command that only ever gives a refused token: an error, and the token is not shown.
        script.write_text("#!/bin/sh\necho tok-refused-42\n")
        async with Service(settings, smtp=False, web=False) as svc:
            await wait_for(lambda: "login refused" in svc._door_health["imap"]())
            assert "tok-refused-42" not in svc._door_health["imap"]()
    finally:
        engine.dispose()


@needs_dovecot
async def test_imaps_with_a_verified_certificate(db_url: str, dovecots: list[Dovecot], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cert = self_signed(tmp_path)
    if cert is None:
        pytest.skip("needs the openssl command")
    d = dovecot(dovecots, tls=cert)
    d.append([evidence(1, "tls")])
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))  # the test's own CA: ssl.create_default_context reads it
    engine = make_engine(db_url)
    try:
        async with Service(imap_settings(db_url, d), smtp=False, web=False):
            await drained(d)
            await wait_for(lambda: all_filed(engine, 1))
    finally:
        engine.dispose()


def test_target_and_envelope_from_headers() -> None:
    t = ImapTarget.from_url("imaps://evidence@example.org@outlook.office365.com/Evidence%20In")
    assert (t.implicit_tls, t.host, t.port, t.user, t.folder) == (
        True, "outlook.office365.com", 993, "evidence@example.org", "Evidence In")
    assert ImapTarget.from_url("imap://bot@127.0.0.1/").port == 143
    assert ImapTarget.from_url("imap://bot@127.0.0.1/").loopback
    s = make_settings("sqlite:///unused.db", EVIDENCE_IMAP_URL="imap://bot@127.0.0.1:143/INBOX",
                      EVIDENCE_IMAP_PASSWORD="pw")
    door = ImapDoor(s, make_engine("sqlite://"), lambda d: asyncio.sleep(0))  # type: ignore[arg-type,return-value]
    try:
        raw = b"Return-Path: <a@example.net>\r\nTo: Someone <x@example.net>, EVIDENCE@example.org\r\n\r\nbody\r\n"
        assert door._envelope(raw) == ("a@example.net", ["evidence@example.org"])
        assert door._envelope(b"To: x@example.net\r\n\r\nbody") == (None, ["evidence@localhost"])
        assert "pw" not in door._describe(ConnectionRefusedError(111, "Connection refused"))
    finally:
        door.engine.dispose()


# ---------------------------------------------------------------- the crash between commit and move


def scalar(engine: Engine, stmt: Any) -> int:
    with unit_of_work(engine, read_only=True) as s:
        return int(s.execute(stmt).scalar_one())


@pytest.mark.slow
@needs_dovecot
@pytest.mark.parametrize("position_saved", [True, False], ids=["position-saved", "position-lost"])
def test_sigkill_between_commit_and_move_neither_loses_nor_duplicates(
    db_url: str, dovecots: list[Dovecot], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, position_saved: bool
) -> None:
    """The first `serve` commits a batch, its MOVE is held at a proxy, and it is SIGKILLed there.

    With the position saved, the restart moves the batch without fetching it again; with it lost
    (as if the kill came just before the position was written) it fetches the batch again and
    the dedupe key recognises every message. Either way: stored once, filed once, acked once.
    """
    from tests.test_crash import ServeProcess  # a `python -m bot serve` subprocess, killed with SIGKILL

    d = dovecot(dovecots)
    n = 5
    d.append([evidence(i, "crash") for i in range(n)])
    proxy = HoldingProxy(d.port)
    engine = make_engine(db_url)
    log = tmp_path / "serve.stderr"
    procs: list[ServeProcess] = []
    try:
        with Sink() as sink:
            proxy.hold.set()
            monkeypatch.setenv("EVIDENCE_IMAP_URL", d.url(port=proxy.port))
            monkeypatch.setenv("EVIDENCE_IMAP_PASSWORD", d.password)
            monkeypatch.setenv("PORT", "0")  # /healthz on any free port: 3000 may be taken
            first = ServeProcess(db_url, sink.url, log)
            procs.append(first)
            first.wait_ready()
            deadline = time.monotonic() + 20
            while not (proxy.held.is_set() and scalar(engine, select(func.count()).select_from(Inbound)) == n):
                assert time.monotonic() < deadline, "the batch was not committed with its move held"
                time.sleep(0.05)
            first.kill()
            assert d.count("INBOX") == n and d.count("Processed") == 0  # committed, not moved
            if not position_saved:
                with unit_of_work(engine) as s:
                    s.execute(update(ImapState).values(last_uid=0))

            monkeypatch.setenv("EVIDENCE_IMAP_URL", d.url())
            again = ServeProcess(db_url, sink.url, log)
            procs.append(again)
            again.wait_ready()
            deadline = time.monotonic() + 30
            ack_done = select(func.count()).select_from(OutboxItem).where(
                col(OutboxItem.kind) == acks.KIND, col(OutboxItem.status) == "done")
            while not (d.count("INBOX") == 0 and all_filed(engine, n) and scalar(engine, ack_done) == n
                       and len(sink.messages) >= n):
                assert time.monotonic() < deadline, "not drained, filed and acknowledged in time"
                time.sleep(0.1)
            time.sleep(1.0)  # a late duplicate ack would show by now (the outbox polls every second)
            again.kill()

            r = rows(engine)
            assert sorted(x.message_id for x in r) == sorted(f"<imap-crash-{i}@example.org>" for i in range(n))
            assert len({x.reference for x in r}) == n
            assert scalar(engine, select(func.count()).select_from(Submission)) == n
            assert scalar(engine, select(func.count()).select_from(OutboxItem)
                          .where(col(OutboxItem.kind) == acks.KIND)) == n
            assert len(sink.messages) == n  # one acknowledgement each
            assert d.count("Processed") == n and d.count("INBOX") == 0
    except BaseException:
        if log.exists():
            print(f"\n===== {log} =====\n{log.read_text(errors='replace')[-20000:]}", file=sys.stderr)
        raise
    finally:
        for p in procs:
            with contextlib.suppress(Exception):
                p.kill()
        proxy.close()
        engine.dispose()

