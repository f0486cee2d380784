"""The intake workflow without a network: store raw, file, and what happens when parsing fails."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col

from bot import drafts, intake
from bot.settings import Settings
from storage.db import unit_of_work
from storage.models import Attachment, Inbound, OutboxItem, Submission

GOOD = (
    b"From: Ann Example <ann@example.org>\r\nTo: evidence@localhost\r\nSubject: Evidence: waste\r\n"
    b"Message-ID: <w-1@example.org>\r\n\r\nPublic body: Kent County Council\r\nSupplier: Veolia\r\n"
    b"Outcome: success\r\n\r\nCollections were more reliable.\r\n"
)


def test_message_id_and_dedupe_key_ignore_transport_differences() -> None:
    assert drafts.message_id_of(GOOD) == "<w-1@example.org>"
    relayed = b"Received: from mx.example.org by us\r\n\tfor <evidence@localhost>\r\n" + GOOD
    assert drafts.dedupe_key(relayed) == drafts.dedupe_key(GOOD)
    assert drafts.dedupe_key(GOOD.replace(b"\r\n", b"\n")) == drafts.dedupe_key(GOOD)
    assert drafts.dedupe_key(GOOD.replace(b"reliable", b"late")) != drafts.dedupe_key(GOOD)
    assert drafts.message_id_of(b"Subject: none\r\n\r\nbody") is None


def test_broken_mime_is_kept_and_flagged(engine: Engine, settings: Settings) -> None:
    raw = (
        b"From: Bob <bob@example.org>\r\nSubject: Evidence\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="nothere"\r\n\r\nno boundary ever appears\r\n'
    )
    intake.store_now(engine, drafts.draft(raw, envelope_from="bob@example.org", rcpts=["evidence@localhost"]))
    filed = intake.process_pending(engine, settings)
    assert [f.outcome for f in filed] == ["evidence"]
    with unit_of_work(engine) as s:
        sub = s.execute(select(Submission)).scalar_one()
    assert sub.reference == "EV-000001" and sub.submitter_email == "bob@example.org"
    assert sub.parse_error and "defect" in sub.parse_error.lower()


def test_a_parser_crash_never_loses_the_message(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A parser bug cannot be produced on demand, so this one is injected.
    def broken(*args: object, **kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    intake.store_now(engine, drafts.draft(GOOD, envelope_from="ann@example.org", rcpts=["evidence@localhost"]))
    monkeypatch.setattr(intake, "parse_email", broken)
    filed = intake.process_pending(engine, settings)
    assert [(f.outcome, f.reference) for f in filed] == [("evidence", "EV-000001")]
    with unit_of_work(engine) as s:
        inbound = s.execute(select(Inbound)).scalar_one()
        sub = s.execute(select(Submission)).scalar_one()
        acks = s.execute(select(OutboxItem).where(col(OutboxItem.kind) == "ack_email")).scalars().all()
    assert inbound.state == "failed" and inbound.raw == GOOD
    assert sub.parse_error == "RecursionError: maximum recursion depth exceeded"
    assert sub.message_id == "<w-1@example.org>" and sub.submitter_email == "ann@example.org"
    assert len(acks) == 1  # the sender still learns the reference their evidence is kept under


def test_processing_twice_files_once(engine: Engine, settings: Settings) -> None:
    intake.store_now(engine, drafts.draft(GOOD, envelope_from="ann@example.org", rcpts=["evidence@localhost"]))
    with unit_of_work(engine) as s:
        (inbound_id,) = s.execute(select(col(Inbound.id))).scalars().all()
    first = intake.process_inbound(engine, settings, inbound_id=inbound_id)
    second = intake.process_inbound(engine, settings, inbound_id=inbound_id)
    assert first is not None and first.reference == "EV-000001"
    assert second is None
    with unit_of_work(engine) as s:
        assert len(s.execute(select(Submission)).scalars().all()) == 1
        kinds = sorted(s.execute(select(col(OutboxItem.kind))).scalars().all())
        assert kinds == ["ack_email", "slack_summary"]


def test_reference_numbers_skip_automatic_mail(engine: Engine, settings: Settings) -> None:
    auto = GOOD.replace(b"Subject: Evidence: waste", b"Auto-Submitted: auto-replied\r\nSubject: Away")
    for raw in [GOOD, auto, GOOD.replace(b"w-1@", b"w-2@")]:
        intake.store_now(engine, drafts.draft(raw, envelope_from="ann@example.org", rcpts=["evidence@localhost"]))
    intake.process_pending(engine, settings)
    with unit_of_work(engine) as s:
        rows = s.execute(select(col(Submission.kind), col(Submission.reference)).order_by(col(Submission.id))).all()
    assert [tuple(r) for r in rows] == [("evidence", "EV-000001"), ("automatic", None), ("evidence", "EV-000002")]


def test_a_batch_with_repeats_stores_each_message_once(engine: Engine) -> None:
    from storage.repo import FastInboundInsert

    insert_inbound_batch = FastInboundInsert(engine.dialect)
    other = GOOD.replace(b"w-1@", b"w-9@")
    first = drafts.draft(GOOD, envelope_from="ann@example.org", rcpts=["evidence@localhost"])
    with engine.begin() as conn:
        before = insert_inbound_batch(conn, [first])
    batch = [drafts.draft(r, envelope_from="a@b.c", rcpts=["evidence@localhost"]) for r in (other, GOOD, other)]
    with engine.begin() as conn:
        result = insert_inbound_batch(conn, batch)
    (first_id, created), = before
    assert created
    assert result[1] == (first_id, False)  # stored by the earlier batch
    assert result[0][1] is True and result[2] == (result[0][0], False)
    with unit_of_work(engine) as s:
        assert len(s.execute(select(col(Inbound.id))).scalars().all()) == 2


async def test_a_parser_that_runs_too_long_is_stopped_and_the_message_kept(engine: Engine, settings: Settings) -> None:
    from bot.runtime.processor import Processor

    intake.store_now(engine, drafts.draft(GOOD, envelope_from="ann@example.org", rcpts=["evidence@localhost"]))
    # A limit no worker process can meet (it has not even started): the parse is abandoned.
    processor = Processor(engine, settings, time_limit=0.001)
    try:
        filed = await processor.process_pending()
    finally:
        processor.close()
    assert [f.reference for f in filed] == ["EV-000001"]
    with unit_of_work(engine) as s:
        inbound = s.execute(select(Inbound)).scalar_one()
        sub = s.execute(select(Submission)).scalar_one()
    assert inbound.state == "failed" and inbound.raw == GOOD
    assert sub.parse_error == "parsing took longer than 0.001 s"


async def test_the_service_processor_files_in_a_worker_process(engine: Engine, settings: Settings) -> None:
    from bot.runtime.processor import Processor

    intake.store_now(engine, drafts.draft(GOOD, envelope_from="ann@example.org", rcpts=["evidence@localhost"]))
    processor = Processor(engine, settings)
    try:
        filed = await processor.process_pending()
    finally:
        processor.close()
    assert [(f.outcome, f.reference) for f in filed] == [("evidence", "EV-000001")]
    with unit_of_work(engine) as s:
        sub = s.execute(select(Submission)).scalar_one()
    assert sub.public_body == "Kent County Council" and sub.supplier == "Veolia" and sub.parse_error is None


async def test_a_parser_process_killed_mid_batch_costs_no_message_and_files_none_twice(
        engine: Engine, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """The OOM killer (or a crash in a C extension) takes the parser process while it files a
    batch: the batch's one transaction is lost whole or kept whole, and every message of it is
    then filed on its own (process_one), each exactly once."""
    import multiprocessing
    import os
    import signal
    import time

    from bot.runtime.processor import Processor

    ids = []
    for i in range(40):
        raw = GOOD.replace(b"<w-1@", f"<w-kill-{i}@".encode()).replace(b"reliable", f"reliable {i}".encode())
        ids.append(intake.store_now(engine, drafts.draft(raw, envelope_from="ann@example.org",
                                                         rcpts=["evidence@localhost"]))[0])
    processor = Processor(engine, settings)
    try:
        batch = asyncio.create_task(processor.process_batch(ids))
        deadline = time.monotonic() + 30
        killed = False
        while not killed and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            for child in multiprocessing.active_children():  # the pool's parser process, once spawned
                if child.pid is not None:
                    os.kill(child.pid, signal.SIGKILL)
                    killed = True
        assert killed, "the parser process never started"
        filed = await asyncio.wait_for(batch, timeout=120)
    finally:
        processor.close()
    assert "the parser process died on a batch of 40 messages; filing them one by one" in caplog.text
    # What the batch reports: each message at most once (one whose record the dead process had
    # already committed is not filed again, so it is not reported again either).
    reported = [f.inbound_id for f in filed]
    assert len(reported) == len(set(reported)) and set(reported) <= set(ids)
    with unit_of_work(engine) as s:
        subs = s.execute(select(col(Submission.inbound_id), col(Submission.reference))).all()
        waiting = s.execute(select(col(Inbound.id)).where(col(Inbound.state) == "received")).scalars().all()
    assert sorted(i for i, _ in subs) == ids  # each message has one record
    assert sorted(r for _, r in subs) == [f"EV-{k:06d}" for k in range(1, 41)]
    assert waiting == []


def _sender(n: int) -> str:
    return "a" * n + "@" + "b" * 200 + ".example.org"


def test_an_address_longer_than_any_mail_system_takes_is_not_kept(engine: Engine, settings: Settings) -> None:
    """Hostile mail: From and envelope sender of 500+ characters. PostgreSQL refuses such a value
    for the submitter's address (and the receipt's recipient): the message must still be filed,
    with no address and no receipt, and the mail behind it too."""
    long_raw = GOOD.replace(b"ann@example.org", _sender(300).encode()).replace(b"<w-1@", b"<w-long@")
    intake.store_now(engine, drafts.draft(long_raw, envelope_from=_sender(290), rcpts=["evidence@localhost"]))
    intake.store_now(engine, drafts.draft(GOOD, envelope_from="ann@example.org", rcpts=["evidence@localhost"]))
    filed = intake.process_pending(engine, settings)
    assert [(f.outcome, f.reference) for f in filed] == [("evidence", "EV-000001"), ("evidence", "EV-000002")]
    with unit_of_work(engine) as s:
        subs = s.execute(select(Submission).order_by(col(Submission.id))).scalars().all()
        acks = s.execute(select(col(OutboxItem.recipient)).where(col(OutboxItem.kind) == "ack_email")).scalars().all()
    assert [sub.submitter_email for sub in subs] == [None, "ann@example.org"]
    assert subs[0].public_body == "Kent County Council"  # the rest of the record is read as usual
    assert acks == ["ann@example.org"]


POISON = "Poison Borough Council"


@pytest.fixture
def refused_record(engine: Engine) -> Iterator[None]:
    """A database that refuses one record (as PostgreSQL refuses a value too long for its column):
    a trigger on the submission table, on both databases."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(f"CREATE TRIGGER poison BEFORE INSERT ON submission WHEN NEW.public_body = "
                                 f"'{POISON}' BEGIN SELECT RAISE(ABORT, 'refused'); END")
        else:
            conn.exec_driver_sql(f"CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.public_body = "
                                 f"'{POISON}' THEN RAISE EXCEPTION 'refused' USING ERRCODE = '22001'; END IF; "
                                 "RETURN NEW; END $$ LANGUAGE plpgsql")
            conn.exec_driver_sql("CREATE TRIGGER poison BEFORE INSERT ON submission FOR EACH ROW "
                                 "EXECUTE FUNCTION poison()")
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS poison" + ("" if engine.dialect.name == "sqlite"
                                                                    else " ON submission"))
            if engine.dialect.name != "sqlite":
                conn.exec_driver_sql("DROP FUNCTION IF EXISTS poison()")


def test_a_record_the_database_refuses_is_filed_unparsed_and_holds_up_nothing(
        engine: Engine, settings: Settings, refused_record: None) -> None:
    """Left `received`, such a message would be first in every later pass and stop all filing
    behind it. It is filed as the parser's failures are: without its parsed record, with the error."""
    for i, body in enumerate(["Kent County Council", POISON, "Essex County Council"]):
        raw = GOOD.replace(b"Kent County Council", body.encode()).replace(b"<w-1@", f"<w-p{i}@".encode())
        intake.store_now(engine, drafts.draft(raw, envelope_from="ann@example.org", rcpts=["evidence@localhost"]))
    filed = intake.process_pending(engine, settings)
    assert [f.reference for f in filed] == ["EV-000001", "EV-000002", "EV-000003"]
    assert intake.process_pending(engine, settings) == []  # nothing waits, nothing is tried again
    with unit_of_work(engine) as s:
        subs = s.execute(select(Submission).order_by(col(Submission.id))).scalars().all()
        states = s.execute(select(col(Inbound.state)).order_by(col(Inbound.id))).scalars().all()
    assert [sub.public_body for sub in subs] == ["Kent County Council", None, "Essex County Council"]
    assert subs[1].parse_error is not None and subs[1].parse_error.startswith("filing the parsed record failed: ")
    assert subs[1].submitter_email == "ann@example.org"  # who sent it is still known
    assert states == ["processed", "failed", "processed"]


def test_nul_characters_cannot_keep_a_message_out(engine: Engine, settings: Settings) -> None:
    """PostgreSQL's text columns refuse NUL. Hostile mail puts it in its headers, and some PDFs'
    extracted text carries it: the raw copy keeps every byte, the texts beside it lose the NULs."""
    raw = (b"From: Ann\x00 Example <ann@example.org>\r\nTo: evidence@localhost\r\nSubject: Evidence:\x00 waste\r\n"
           b"Message-ID: <w-nul\x00@example.org>\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
           b"Public body: Kent County Council\r\nSupplier: Veo\x00lia\r\n\r\nCollections\x00 were late.\r\n"
           b'--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename="notes\x00.txt"\r\n\r\n'
           b"Minutes of the\x00 contract board.\r\n"
           b"--b\r\nContent-Type: application/x-" + b"long" * 100 + b"\r\n\r\nbinary\r\n--b--\r\n")
    intake.store_now(engine, drafts.draft(raw, envelope_from="ann\x00@example.org", rcpts=["evidence@localhost"],
                                          helo="mx\x00.example.org"))
    filed = intake.process_pending(engine, settings)
    assert [(f.outcome, f.reference) for f in filed] == [("evidence", "EV-000001")]
    with unit_of_work(engine) as s:
        inbound = s.execute(select(Inbound)).scalar_one()
        sub = s.execute(select(Submission)).scalar_one()
    assert inbound.raw == raw  # every byte as it came
    assert (inbound.message_id, inbound.envelope_from, inbound.helo) == (
        "<w-nul@example.org>", "ann@example.org", "mx.example.org")
    assert sub.parse_error is None
    assert (sub.public_body, sub.supplier, sub.submitter_name) == ("Kent County Council", "Veolia", "Ann Example")
    assert sub.title is not None and "\x00" not in sub.title and "waste" in sub.title
    assert sub.body is not None and "Collections were late." in sub.body
    with unit_of_work(engine) as s:
        atts = s.execute(select(Attachment).order_by(col(Attachment.position))).scalars().all()
    assert [(a.filename, a.text) for a in atts][0] == ("notes.txt", "Minutes of the contract board.")
    assert len(atts) == 2 and atts[1].content_type == ("application/x-" + "long" * 100)[:255]


def test_a_long_imap_host_name_still_fits_the_peer_column(engine: Engine, settings: Settings) -> None:
    """The IMAP door names itself "imap:" and the server's host name, which may be 253 characters:
    PostgreSQL refused the insert, and every message in the folder waited for ever."""
    host = ".".join(["a" * 60] * 4) + ".example"
    d = drafts.draft(GOOD, envelope_from=None, rcpts=[], peer=f"imap:{host}")
    inbound_id, created = intake.store_now(engine, d)
    assert created
    with unit_of_work(engine) as s:
        inbound = s.get(Inbound, inbound_id)
        assert inbound is not None and inbound.peer == f"imap:{host}"[:drafts.PEER_MAX]
