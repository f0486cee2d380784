"""The SMTP door, driven over real TCP with smtplib against the real service and database."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Engine
from sqlmodel import col

from bot.runtime.service import Service
from bot.settings import Settings
from storage.db import make_engine, unit_of_work
from storage.migrate import NotMigrated, upgrade
from storage.models import FollowUp, Inbound, OutboxItem, Submission
from tests.conftest import make_settings
from tests.support.full_disk import nearly_full_engine
from tests.support.sink import Sink
from tests.support.waiting import wait_for

ACK = col(OutboxItem.kind) == "ack_email"


def evidence(i: int = 1, *, sender: str = "ann@example.org", subject: str | None = None, **headers: str) -> bytes:
    m = EmailMessage()
    m["From"] = f"Ann Example <{sender}>"
    m["To"] = "evidence@localhost"
    m["Subject"] = subject or f"Evidence: payroll contract {i}"
    m["Message-ID"] = f"<msg-{i}@example.org>"
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content(
        f"Project: Payroll {i}\nPublic body: Exampleton Borough Council\nSupplier: Example Services Ltd\n"
        "Contract value: £2m\nOutcome: Success\n\nThe service improved after the move.\n"
    )
    return bytes(m)


async def send(port: int, raw: bytes, *, sender: str = "ann@example.org", to: str = "evidence@localhost") -> Any:
    def _go() -> Any:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            return c.sendmail(sender, [to], raw)

    return await asyncio.to_thread(_go)


def count(engine: Engine, model: type, *where: Any) -> int:
    # Read-only: on SQLite a counting poll must not queue for the write lock behind the filing
    # (which files a batch per transaction and would starve it until the backlog is done).
    with unit_of_work(engine, read_only=True) as s:
        return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


@pytest.fixture
def sink() -> Any:
    with Sink() as s:
        yield s


@pytest.fixture
async def service(db_url: str, sink: Sink) -> AsyncIterator[Service]:
    async with Service(make_settings(db_url, EVIDENCE_RELAY_URL=sink.url)) as svc:
        yield svc


async def test_message_is_stored_parsed_and_acknowledged_once(service: Service, sink: Sink) -> None:
    refused = await send(service.smtp_port, evidence(1))
    assert refused == {}
    await wait_for(lambda: len(sink.messages) == 1)
    ack = cast(EmailMessage, sink.messages[0].message)
    assert ack["To"] == "ann@example.org"
    assert ack["Subject"].startswith("[EV-000001] Received:")
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == "<msg-1@example.org>"
    assert ack["References"] == "<msg-1@example.org>"
    assert sink.messages[0].mail_from in ("", "<>")  # null envelope sender: receipts never bounce back
    body = ack.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "EV-000001" in text and "not acceptance" in text
    with unit_of_work(service.engine) as s:
        sub = s.execute(select(Submission)).scalar_one()
    assert (sub.reference, sub.kind, sub.status) == ("EV-000001", "evidence", "received")
    assert sub.public_body == "Exampleton Borough Council"
    assert sub.contract_value_gbp == 2_000_000
    await asyncio.sleep(0.5)
    assert len(sink.messages) == 1


async def test_rcpt_for_another_address_is_refused_with_550(service: Service) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        await send(service.smtp_port, evidence(1), to="someone@elsewhere.example")
    code, msg = e.value.recipients["someone@elsewhere.example"]
    assert code == 550 and msg.startswith(b"5.1.1")
    assert count(service.engine, Inbound) == 0


async def test_ehlo_advertises_size_and_smtputf8(service: Service) -> None:
    def _ehlo() -> tuple[int, dict[str, str]]:
        with smtplib.SMTP("127.0.0.1", service.smtp_port, timeout=10) as c:
            code, _ = c.ehlo()
            return code, dict(c.esmtp_features)

    code, features = await asyncio.to_thread(_ehlo)
    assert code == 250
    assert features["size"] == str(service.settings.max_message_bytes)
    assert "smtputf8" in features


async def test_oversize_message_gets_552(db_url: str, sink: Sink) -> None:
    settings = make_settings(db_url, EVIDENCE_RELAY_URL=sink.url, EVIDENCE_MAX_MESSAGE_BYTES=10_000)
    async with Service(settings) as svc:
        big = evidence(1) + b"x" * 20_000 + b"\r\n"
        with pytest.raises(smtplib.SMTPException) as e:
            await send(svc.smtp_port, big)
        assert getattr(e.value, "smtp_code", None) == 552 or "552" in str(e.value)
        assert count(svc.engine, Inbound) == 0


async def test_connections_past_the_cap_get_421(db_url: str) -> None:
    async with Service(make_settings(db_url, EVIDENCE_SMTP_MAX_CONNECTIONS=2)) as svc:
        held = [socket.create_connection(("127.0.0.1", svc.smtp_port)) for _ in range(2)]
        try:
            for s in held:
                assert (await asyncio.to_thread(s.recv, 200)).startswith(b"220")
            third = socket.create_connection(("127.0.0.1", svc.smtp_port))
            assert (await asyncio.to_thread(third.recv, 200)).startswith(b"421 4.7.0")
            third.close()
        finally:
            for s in held:
                s.close()
        await asyncio.sleep(0.2)  # the closed slots are free again
        assert await send(svc.smtp_port, evidence(1)) == {}


async def test_same_message_twice_is_stored_once(service: Service, sink: Sink) -> None:
    raw = evidence(7)
    await send(service.smtp_port, raw)
    # A second delivery through another relay adds trace headers; it is still the same message.
    await send(service.smtp_port, b"Received: from mx2.example.org by us; Tue, 1 Dec 2026\r\n" + raw)
    await wait_for(lambda: len(sink.messages) == 1)
    assert count(service.engine, Inbound) == 1
    assert count(service.engine, Submission) == 1


async def test_same_message_id_with_other_content_is_a_new_message(service: Service, sink: Sink) -> None:
    await send(service.smtp_port, evidence(3))
    await send(service.smtp_port, evidence(3).replace(b"improved", b"worsened"))
    await wait_for(lambda: count(service.engine, Submission) == 2)


async def test_follow_up_is_attached_to_its_record(service: Service, sink: Sink) -> None:
    await send(service.smtp_port, evidence(1))
    await wait_for(lambda: len(sink.messages) == 1)
    ack = sink.messages[0].message
    reply = EmailMessage()
    reply["From"] = "Ann Example <ann@example.org>"
    reply["To"] = "evidence@localhost"
    reply["Subject"] = "Re: " + ack["Subject"]
    reply["Message-ID"] = "<reply-1@example.org>"
    reply["In-Reply-To"] = ack["Message-ID"]
    reply.set_content("One more thing: the contract was extended in 2021.\n")
    await send(service.smtp_port, bytes(reply))
    await wait_for(lambda: count(service.engine, FollowUp) == 1)
    assert count(service.engine, Submission) == 1
    with unit_of_work(service.engine) as s:
        fu = s.execute(select(FollowUp)).scalar_one()
    assert "extended in 2021" in (fu.body or "")
    await asyncio.sleep(0.3)
    assert len(sink.messages) == 1  # follow-ups are not acknowledged as new evidence


async def test_automatic_mail_is_filed_and_never_acknowledged(service: Service, sink: Sink) -> None:
    await send(service.smtp_port, evidence(1, subject="Automatic reply: away", Auto_Submitted="auto-replied"))
    await send(service.smtp_port, evidence(2, sender="noreply@example.org"), sender="noreply@example.org")
    await send(service.smtp_port, evidence(3), sender="")  # null sender, as bounces have
    await wait_for(lambda: count(service.engine, Inbound, Inbound.state == "processed") == 3)
    with unit_of_work(service.engine) as s:
        kinds = sorted(s.execute(select(col(Submission.kind))).scalars())
    assert kinds == ["automatic", "automatic", "evidence"]  # a null sender is a bounce: automatic
    await asyncio.sleep(0.5)
    assert sink.messages == []
    assert count(service.engine, OutboxItem, ACK) == 0


async def test_acknowledgements_are_rate_limited_per_sender(db_url: str, sink: Sink) -> None:
    settings = make_settings(db_url, EVIDENCE_RELAY_URL=sink.url, EVIDENCE_ACKS_PER_SENDER_PER_HOUR=2)
    async with Service(settings) as svc:
        for i in range(4):
            await send(svc.smtp_port, evidence(i))
        await wait_for(lambda: count(svc.engine, Submission) == 4)
        await wait_for(lambda: len(sink.messages) == 2)
        await asyncio.sleep(0.5)
        assert len(sink.messages) == 2


async def test_without_a_relay_acknowledgements_wait_in_the_outbox(db_url: str, sink: Sink) -> None:
    async with Service(make_settings(db_url)) as svc:
        await send(svc.smtp_port, evidence(1))
        await wait_for(lambda: count(svc.engine, OutboxItem, ACK, OutboxItem.status == "pending") == 1)
    # Restarted with a relay, the queued receipt goes out once.
    async with Service(make_settings(db_url, EVIDENCE_RELAY_URL=sink.url)) as svc:
        await wait_for(lambda: len(sink.messages) == 1)
        await wait_for(lambda: count(svc.engine, OutboxItem, ACK, OutboxItem.status == "done") == 1)
    async with Service(make_settings(db_url, EVIDENCE_RELAY_URL=sink.url)):
        await asyncio.sleep(1.0)
    assert len(sink.messages) == 1


async def test_relay_failure_is_retried_later_and_sent_once(service: Service, sink: Sink) -> None:
    sink.fail("451 4.3.0 try later")
    await send(service.smtp_port, evidence(1))
    await wait_for(lambda: count(service.engine, OutboxItem, ACK, OutboxItem.attempts == 1) == 1)
    with unit_of_work(service.engine) as s:
        item = s.execute(select(OutboxItem).where(ACK)).scalar_one()
        assert item.status == "pending" and item.next_attempt_at > item.created_at
        assert "451" in (item.last_error or "")
        item.next_attempt_at = item.created_at  # the backoff has passed
        s.add(item)
    sink.fail(None)
    service.worker.wake()
    await wait_for(lambda: len(sink.messages) == 1)
    await wait_for(lambda: count(service.engine, OutboxItem, ACK, OutboxItem.status == "done") == 1)


async def test_database_full_answers_451_and_stores_nothing(tmp_path: Path) -> None:
    """SQLite's max_page_count makes a real "database or disk is full" error, as a full disk would."""
    db_url, engine = nearly_full_engine(tmp_path / "full.db")

    async with Service(make_settings(db_url), engine=engine) as svc:
        big = evidence(1) + (b"A" * 76 + b"\r\n") * 5000
        with pytest.raises(smtplib.SMTPDataError) as e:
            await send(svc.smtp_port, big)
        assert e.value.smtp_code == 451 and b"4.3.0" in e.value.smtp_error
        assert b"full" not in e.value.smtp_error  # no internal detail leaks to the sender
        assert count(svc.engine, Inbound) == 0
        assert await send(svc.smtp_port, evidence(2)) == {}  # a small one still fits
        assert count(svc.engine, Inbound) == 1


async def test_database_outage_answers_451() -> None:
    """The door against a database that refuses connections: 451, and the client may retry."""
    from handlers.smtp import EvidenceHandler, protocol_factory
    from storage.writer import GroupCommitter

    # Port 9 (discard) has no server here: every connection attempt is refused, as in an outage.
    dead = make_engine("postgresql+psycopg://postgres@127.0.0.1:9/none")
    committer = GroupCommitter(dead)
    committer.start()
    handler = EvidenceHandler(addresses=["evidence@localhost"], committer=committer)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol_factory(handler, max_connections=5, data_size_limit=10**6),
                                      "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(smtplib.SMTPDataError) as e:
            await send(port, evidence(1))
        assert e.value.smtp_code == 451
    finally:
        server.close()
        await committer.stop()
        dead.dispose()


def slow_inbound_inserts(engine: Engine, seconds: float) -> None:
    """Every row stored in `inbound` takes `seconds` inside the door's transaction, on either
    database and whichever path the door takes (SQLAlchemy or its raw SQLite connection)."""
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _slow(dbapi_conn: Any, _rec: Any) -> None:
            dbapi_conn.create_function("slow_disk", 0, lambda: time.sleep(seconds))

        ddl = ["CREATE TRIGGER slow_disk AFTER INSERT ON inbound"
               " BEGIN SELECT slow_disk(); INSERT INTO slow_disk_log VALUES (NEW.id); END"]
    else:
        ddl = [
            "CREATE FUNCTION slow_disk() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_sleep({seconds}); INSERT INTO slow_disk_log VALUES (NEW.id); RETURN NEW; END $$",
            "CREATE TRIGGER slow_disk AFTER INSERT ON inbound FOR EACH ROW EXECUTE FUNCTION slow_disk()",
        ]
    ddl.insert(0, "CREATE TABLE slow_disk_log (inbound_id INTEGER)")  # which inserts went the slow way
    with engine.begin() as conn:
        for stmt in ddl:
            conn.exec_driver_sql(stmt)


async def test_commit_survives_a_client_that_hangs_up(db_url: str) -> None:
    engine = make_engine(db_url)
    slow_inbound_inserts(engine, 0.5)  # a slow disk: the client is gone before the commit returns
    async with Service(make_settings(db_url), engine=engine) as svc:
        def _send_and_vanish() -> None:
            s = socket.create_connection(("127.0.0.1", svc.smtp_port))
            f = s.makefile("rb")
            f.readline()
            for cmd in (b"EHLO me", b"MAIL FROM:<ann@example.org>", b"RCPT TO:<evidence@localhost>", b"DATA"):
                s.sendall(cmd + b"\r\n")
                while True:
                    line = f.readline()
                    if line[3:4] != b"-":
                        break
            s.sendall(evidence(5) + b"\r\n.\r\n")
            s.close()

        await asyncio.to_thread(_send_and_vanish)
        await wait_for(lambda: count(svc.engine, Submission) == 1)
        assert count(svc.engine, Inbound) == 1
        with unit_of_work(svc.engine) as s:  # the message went in through the slow insert
            assert s.execute(text("SELECT count(*) FROM slow_disk_log")).scalar_one() == 1


async def test_sessions_go_on_while_another_writer_holds_the_sqlite_lock(tmp_path: Path) -> None:
    """A CLI command or the parser holding SQLite's write lock must not stall the event loop:
    other sessions are answered meanwhile, and the waiting message is stored once the lock is free."""
    import sqlite3

    db_url = f"sqlite:///{tmp_path}/locked.db"
    upgrade(db_url)
    async with Service(make_settings(db_url)) as svc:
        holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            pending = asyncio.ensure_future(send(svc.smtp_port, evidence(7)))
            await asyncio.sleep(0.3)  # the door has tried to commit by now and found the lock taken
            assert not pending.done()

            def _noop() -> tuple[int, bytes]:
                with smtplib.SMTP("127.0.0.1", svc.smtp_port, timeout=10) as c:
                    return c.noop()

            assert (await asyncio.to_thread(_noop))[0] == 250
            assert not pending.done()  # still waiting for the lock, not refused
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert await asyncio.wait_for(pending, 30) == {}
        assert count(svc.engine, Inbound) == 1


async def test_a_stop_leaves_the_backlog_for_the_next_start(db_url: str) -> None:
    """SIGTERM with hundreds of messages still to parse: the service stops after the batch in
    hand (a Procfile host kills it 30 s later otherwise), and the next start files the rest."""
    from bot import drafts, intake

    engine = make_engine(db_url)
    backlog = 400
    for i in range(backlog):
        intake.store_now(engine, drafts.draft(evidence(1000 + i), envelope_from="ann@example.org",
                                              rcpts=["evidence@localhost"]))
    async with Service(make_settings(db_url), engine=engine, smtp=False) as svc:
        await wait_for(lambda: count(svc.engine, Submission) >= 1)
    engine = make_engine(db_url)
    left = count(engine, Inbound, Inbound.state == "received")
    # It stopped after the batch in hand, not after the backlog: a few batches of 20 may have been
    # filed between the first one landing and the stop (this test polls every 50 ms, and a fast
    # machine files a batch in less), never most of the 400.
    assert backlog * 5 // 8 <= left < backlog
    async with Service(make_settings(db_url), engine=engine, smtp=False) as svc:
        await wait_for(lambda: count(svc.engine, Inbound, Inbound.state == "received") == 0, timeout=120)
        assert count(svc.engine, Submission) == backlog  # each filed once, across the two runs


async def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    with pytest.raises(NotMigrated, match="evidence-bot db upgrade"):
        async with Service(make_settings(f"sqlite:///{tmp_path}/new.db")):
            pass


async def test_serve_on_a_database_from_a_newer_version_says_so(tmp_path: Path) -> None:
    """Not "run db upgrade", which would fail in its turn ("Can't locate revision")."""
    url = f"sqlite:///{tmp_path}/newer.db"
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(NotMigrated, match=r"\(9999\) is from a newer evidence-bot"):
        async with Service(make_settings(url)):
            pass


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )
    return cert, key


async def test_starttls_when_a_certificate_is_configured(db_url: str, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    settings: Settings = make_settings(db_url, EVIDENCE_SMTP_TLS_CERT=str(cert), EVIDENCE_SMTP_TLS_KEY=str(key))
    async with Service(settings) as svc:
        def _go() -> tuple[bool, dict[str, Any]]:
            ctx = ssl.create_default_context(cafile=str(cert))
            ctx.check_hostname = False
            with smtplib.SMTP("127.0.0.1", svc.smtp_port, timeout=10) as c:
                c.ehlo()
                has = c.has_extn("starttls")
                c.starttls(context=ctx)
                c.ehlo()
                return has, c.sendmail("ann@example.org", ["evidence@localhost"], evidence(1))

        has_tls, refused = await asyncio.to_thread(_go)
        assert has_tls and refused == {}
        await wait_for(lambda: count(svc.engine, Submission) == 1)


async def test_the_submitter_hears_the_decision_on_their_thread(service: Service, sink: Sink) -> None:
    from bot.decisions import decide
    from bot.review import Action

    await send(service.smtp_port, evidence(1))
    await wait_for(lambda: len(sink.messages) == 1)
    await asyncio.to_thread(decide, service.engine, service.settings, reference="EV-000001",
                            action=Action.REJECT, actor="cli:Sam", reason="It is about a grant, not a contract.")
    service.worker.wake()
    await wait_for(lambda: len(sink.messages) == 2)
    notice = cast(EmailMessage, sink.messages[1].message)
    assert notice["Subject"] == "[EV-000001] Your evidence: not accepted"
    assert notice["In-Reply-To"] == "<msg-1@example.org>" and notice["To"] == "ann@example.org"
    assert notice["Auto-Submitted"] == "auto-replied"
    body = notice.get_body(("plain",))
    assert body is not None
    assert "It is about a grant, not a contract." in body.get_content()
