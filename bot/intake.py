"""The intake workflow shared by every door: store raw first, then parse, file and acknowledge.

Storing and understanding are separate steps on purpose: a door answers only for the durable
raw copy; parsing runs afterwards from that copy, so a parser bug can never lose a submission.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session, col

from bot import acks, campaigns, filing, finding, wishes, withdraw
from bot.convert import attachment_rows
from bot.filed import (
    LONG_TEXT,
    Filed,
    Parsed,
    Stored,
    ToParse,
    ack_decision,
    door_of,
    new_submission_values,
)
from bot.outbox_kinds import SLACK_DM, SLACK_FILES, SLACK_SUMMARY, SLACK_THREAD, SLACK_UPDATE
from bot.parsing.email_message import parse_email
from bot.parsing.slack_form import record_from_form
from bot.record import EvidenceRecord, Kind, Status, for_storage, storable, usable_address
from bot.references import format_reference
from bot.settings import Settings
from bot.templating import render
from storage import repo
from storage.db import unit_of_work
from storage.filing import claim_many
from storage.models import FollowUp, Inbound, Submission
from storage.outbox import enqueue
from storage.repo import InboundDraft

log = logging.getLogger(__name__)

def parse_stored(job: ToParse) -> tuple[EvidenceRecord | None, str | None]:
    """(record, None), or (None, error) when the parser itself failed. Pure: no database."""
    try:
        if job.channel == "slack":
            form = json.loads(job.raw)
            rec = record_from_form(form["values"], user_id=form["user_id"], user_name=form.get("user_name"),
                                   received_at=job.received_at)
            return storable(rec), None
        rec = parse_email(job.raw, reference_prefix=job.reference_prefix, received_at=job.received_at,
                          envelope_from=job.envelope_from)
        rec.received_at = job.received_at
        return storable(rec), None
    except Exception as exc:  # a parser bug must not lose the message: keep it, marked
        # The type only at ERROR: a parser's exception text can quote the evidence. The whole
        # error is kept with the message (inbound.error); the traceback is for DEBUG.
        log.error("parsing inbound %s failed: %s", job.inbound_id, type(exc).__name__,
                  extra={"door": door_of(job.peer, job.channel)})
        log.debug("the parser's failure in full", exc_info=True)
        return None, for_storage(f"{type(exc).__name__}: {exc}")[:500]


def load_received(engine: Engine, settings: Settings, *, inbound_id: int) -> tuple[Stored, ToParse] | None:
    """A stored message still waiting to be filed; None if filed.

    The raw copy is read on its own (_read_raw): a plain SELECT of a 20 MB message cost twice to
    five times the message at once (see there)."""
    found = list(_load(engine, settings, [inbound_id]))
    return found[0] if found else None


_STORED = (col(Inbound.id), col(Inbound.channel), col(Inbound.received_at), col(Inbound.envelope_from),
           col(Inbound.message_id), col(Inbound.peer), col(Inbound.helo))


def _load(engine: Engine, settings: Settings, inbound_ids: Sequence[int]) -> Iterator[tuple[Stored, ToParse]]:
    """The waiting ones of these messages, in order, in one read transaction: their rows in one
    query, each raw copy read as it is asked for (so a batch holds one raw message at a time)."""
    with unit_of_work(engine, read_only=True) as s:
        stmt = (select(*_STORED).where(col(Inbound.id).in_(list(inbound_ids)), col(Inbound.state) == "received")
                .order_by(col(Inbound.id)))
        for i, channel, received_at, envelope_from, message_id, peer, helo in s.execute(stmt).all():
            raw = _read_raw(s, i)
            job = ToParse(i, channel, raw, received_at, envelope_from, settings.reference_prefix, peer=peer, helo=helo)
            del raw  # the job holds the only copy, and goes with it
            yield Stored(i, channel, received_at, envelope_from, message_id, peer), job
            del job


# The raw copy is read in pieces of this size where there is no blob reader (PostgreSQL).
RAW_PIECE = 1 << 20


def _read_raw(s: Session, inbound_id: int) -> bytes:
    """inbound.raw of one row, held once while it is read.

    SQLite: its blob reader writes straight into one bytes object (a plain SELECT had SQLite build
    the whole value in its own memory before Python copied it: 2x). PostgreSQL: a plain SELECT
    holds the value in libpq's result as hex text (2x), unescaped (1x), then copied into bytes
    (1x), about 5x in all at the peak; here it comes a piece at a time into one io.BytesIO, whose
    getvalue() is its own bytes object, not a copy. (A value PostgreSQL compressed is decompressed
    up to the end of each piece, in the database server; mail attachments seldom compress.)"""
    if s.get_bind().dialect.name == "sqlite":
        dbapi = s.connection().connection.driver_connection
        try:
            with dbapi.blobopen("inbound", "raw", inbound_id, readonly=True) as blob:  # type: ignore[union-attr]
                return bytes(blob.read())
        except (AttributeError, Exception):  # noqa: BLE001 - an SQLite without blobs: in pieces
            pass
    out = io.BytesIO()
    while True:
        piece = s.scalar(select(func.substring(col(Inbound.raw), out.tell() + 1, RAW_PIECE))
                         .where(col(Inbound.id) == inbound_id))
        if piece:
            out.write(piece)
        if not piece or len(piece) < RAW_PIECE:
            return out.getvalue()


def file_parsed(
    engine: Engine, settings: Settings, inbound: Stored, rec: EvidenceRecord | None, error: str | None,
    authenticity: dict[str, Any] | None = None,
) -> Filed | None:
    """Files a parsed message in one transaction; None when another process filed it first."""
    with unit_of_work(engine) as s:
        assert inbound.id is not None
        if not repo.claim_inbound(s, inbound_id=inbound.id, state="failed" if error else "processed", error=error):
            return None
        if rec is None:
            rec = _fallback_record(inbound)
        if authenticity is not None:
            rec.authenticity = authenticity
        return _file(s, settings, inbound, rec, error)


def check_sender(settings: Settings, job: ToParse) -> dict[str, Any] | None:
    """SPF, DKIM and DMARC for an e-mail (bot.sender_check); None for a Slack submission.
    Outside any transaction, like parsing: its DNS look-ups take up to a few seconds."""
    if job.channel == "slack":
        return None
    from bot import sender_check  # not at the top: the CLI's other commands need no DNS libraries

    return sender_check.checker_for(settings).check(job.raw, peer=job.peer, helo=job.helo,
                                                    envelope_from=job.envelope_from)


def _fallback_record(inbound: Stored) -> EvidenceRecord:
    """What we can say of a message the parser could not read: who sent it, and when."""
    return EvidenceRecord(
        message_id=inbound.message_id,
        submitter_email=usable_address(inbound.envelope_from),
        received_at=inbound.received_at,
        body=None,
        summary="(the message could not be parsed; the raw copy is stored)",
    )


def process_inbound(engine: Engine, settings: Settings, *, inbound_id: int) -> Filed | None:
    """Parses one stored message and files it, in this thread (the CLI; the service uses a worker
    process, see bot.runtime.processor). Parsing happens outside any transaction, and the raw copy is let
    go before filing (parse_received)."""
    parsed = parse_received(engine, settings, inbound_id=inbound_id)
    if parsed is None:
        return None
    filed = file_batch(engine, settings, [parsed])
    return filed[0] if filed else None


def parse_received(engine: Engine, settings: Settings, *, inbound_id: int) -> Parsed | None:
    """Loads, parses and checks one waiting message outside any transaction; None if filed.

    The raw copy is read here and let go as soon as the parse is done (a batch holds one raw
    message at a time, however many it files)."""
    loaded = load_received(engine, settings, inbound_id=inbound_id)
    if loaded is None:
        return None
    parsed = _parse(settings, *loaded)
    _add_campaign_keys([parsed])
    return parsed


def _parse(settings: Settings, stored: Stored, job: ToParse) -> Parsed:
    rec, error = parse_stored(job)
    return Parsed(stored, rec, error, check_sender(settings, job))


def _add_campaign_keys(parsed: Sequence[Parsed]) -> None:
    """campaigns.keys_for of each evidence record's text, worked out together (it is CPU work,
    done before the filing transaction; numpy takes a batch of texts as cheaply as one)."""
    wanted = [p for p in parsed if p.rec is not None and p.rec.kind == Kind.EVIDENCE]
    try:
        found = campaigns.keys_for_many([p.rec.body for p in wanted if p.rec is not None])
    except Exception:  # noqa: BLE001 - worked out again while filing, where a failure counts
        return
    for p, keys in zip(wanted, found, strict=True):
        p.campaign_keys = keys


def file_batch(engine: Engine, settings: Settings, parsed: Sequence[Parsed]) -> list[Filed]:
    """Files parsed messages in ONE transaction (one commit, one fsync for all); reference numbers
    still come from the counter inside it, in order. New records by e-mail are filed in runs, a
    few statements per table for each (bot.filing); a follow-up or a Slack submission between
    them with _file. If that transaction fails, each is filed in a transaction of its own, so one
    bad message cannot keep the others out."""
    if not parsed:
        return []
    try:
        with unit_of_work(engine) as s:
            claimed = _claim(s, parsed)
            known: dict[int, Any] = {}  # campaign candidates read so far (bot.campaigns.BatchMatch)
            done: list[Filed] = []
            run: list[tuple[Parsed, EvidenceRecord]] = []
            for p in parsed:
                if p.inbound.id not in claimed:
                    continue  # another process filed it first
                rec = p.rec if p.rec is not None else _fallback_record(p.inbound)
                if p.authenticity is not None:
                    rec.authenticity = p.authenticity
                if filing.can_bulk_file(p, rec):
                    run.append((p, rec))
                    continue
                done += filing.file_run(s, settings, run, known)  # the records before it first: references in order
                run = []
                done.append(_file(s, settings, p.inbound, rec, p.error, p.campaign_keys))
            return done + filing.file_run(s, settings, run, known)
    except Exception as exc:
        if _unavailable(exc):
            raise  # nothing is wrong with the messages: all of them wait for the next pass
        log.warning("filing %d message(s) together failed (%s); filing them one by one", len(parsed),
                    type(exc).__name__)
    out = []
    for p in parsed:
        res = _file_alone(engine, settings, p)
        if res is not None:
            out.append(res)
    return out


def _unavailable(exc: BaseException) -> bool:
    """The database is down or the connection broke (try again later), rather than a message
    whose record the database refuses (file that one without its parsed record)."""
    return isinstance(exc, (OperationalError, InterfaceError)) or bool(getattr(exc, "connection_invalidated", False))


def _file_alone(engine: Engine, settings: Settings, p: Parsed) -> Filed | None:
    """One message in a transaction of its own. If the database refuses its parsed record (a
    value no column takes, a bug of ours), it is filed as the parser's failures are: unparsed,
    with the error, so the reviewers see it. Left `received`, it would be the first message of
    every later pass and hold up all mail behind it."""
    try:
        return file_parsed(engine, settings, p.inbound, p.rec, p.error, p.authenticity)
    except Exception as exc:
        if _unavailable(exc):
            raise
        log.error("filing message %s failed (%s); filed without its parsed record", p.inbound.id,
                  type(exc).__name__)
        error = f"filing the parsed record failed: {type(exc).__name__}"
    return file_parsed(engine, settings, p.inbound, None, error)


def _claim(s: Session, parsed: Sequence[Parsed]) -> set[int]:
    """repo.claim_inbound for each message, the ones parsed without an error in one UPDATE."""
    ok = [p.inbound.id for p in parsed if not p.error and p.inbound.id is not None]
    claimed = claim_many(s, inbound_ids=ok, state="processed")
    for p in parsed:
        if p.error and p.inbound.id is not None and repo.claim_inbound(
                s, inbound_id=p.inbound.id, state="failed", error=p.error):
            claimed.add(p.inbound.id)
    return claimed


def file_many(engine: Engine, settings: Settings, inbound_ids: Sequence[int]) -> list[Filed]:
    """Parses the waiting messages one after another (outside any transaction) and files them
    together (file_batch); the ones already filed are skipped."""
    parsed = [p for i in inbound_ids if (p := parse_received(engine, settings, inbound_id=i)) is not None]
    return file_batch(engine, settings, parsed)


def _file(s: Session, settings: Settings, inbound: Stored, rec: EvidenceRecord, error: str | None,
          campaign_keys: campaigns.Keys | None = None) -> Filed:
    assert inbound.id is not None
    if rec.kind == Kind.FOLLOW_UP and rec.in_reply_to_reference:
        parent = repo.get_submission(s, reference=rec.in_reply_to_reference)
        if parent is not None and parent.id is not None:
            fu = FollowUp(
                submission_id=parent.id,
                inbound_id=inbound.id,
                message_id=rec.message_id,
                sender_email=rec.submitter_email,
                sender_name=rec.submitter_name,
                subject=rec.title,
                body=rec.body,
                received_at=inbound.received_at,
            )
            repo.add_followup(s, followup=fu, attachments=attachment_rows(rec))
            # The submitter's "WITHDRAW" first, so a withdrawn record is not put back in review below.
            withdraw.from_followup(s, settings, parent, fu, thread_ids=rec.thread_ids)
            # "Please leave my name out of it": a stricter wish is honoured at once (bot.wishes).
            wishes.from_followup(s, parent, fu, publication=rec.publication)
            _after_followup(s, parent, fu, actor=f"submitter:{rec.submitter_email or '?'}")
            finding.refresh(s, submission_id=parent.id)  # the follow-up's text and attachments become findable
            return Filed(inbound.id, "follow_up", parent.reference, door_of(inbound.peer, inbound.channel))
        rec.kind = Kind.EVIDENCE  # an unknown reference starts a record of its own
    sub = new_submission(settings, inbound, rec, error)
    if rec.kind != Kind.AUTOMATIC:
        sub.ref_no = repo.next_counter(s, name="reference")
        sub.reference = format_reference(settings.reference_prefix, sub.ref_no)
    repo.add_submission(s, submission=sub, attachments=attachment_rows(rec))
    if rec.kind != Kind.AUTOMATIC:
        finding.refresh(s, submission_id=sub.id or 0)  # search index and corroboration keys
        # A campaign member is acknowledged like any record, but shows only on its campaign's card.
        joined = campaigns.match(s, sub, precomputed=campaign_keys)
        if inbound.channel == "slack":
            _enqueue_slack_receipt(s, settings, sub)
        else:
            _enqueue_ack(s, settings, sub, inbound, rec)
        if joined is None:
            enqueue_summary(s, sub, files=bool(rec.attachments) or len(rec.body or "") > LONG_TEXT)
        else:
            campaigns.enqueue_card_update(s, first_id=joined.first_id)
    return Filed(inbound.id, str(rec.kind), sub.reference, door_of(inbound.peer, inbound.channel))


def new_submission(settings: Settings, inbound: Stored, rec: EvidenceRecord, error: str | None) -> Submission:
    """The record's row before it has a reference number."""
    return Submission(**new_submission_values(settings, inbound, rec, error))


def enqueue_summary(s: Session, sub: Submission, *, files: bool = False) -> None:
    """Every new evidence record, whatever its door, gets one summary in the review channel;
    with `files`, its attachments (and a text too long to read in a modal) follow in the thread."""
    enqueue(s, key=f"{SLACK_SUMMARY}:{sub.reference}", kind=SLACK_SUMMARY, payload={"reference": sub.reference},
            submission_id=sub.id)
    if files:
        enqueue(s, key=f"{SLACK_FILES}:{sub.reference}", kind=SLACK_FILES, payload={"reference": sub.reference},
                submission_id=sub.id)


def _after_followup(s: Session, parent: Submission, fu: FollowUp, *, actor: str) -> None:
    """A follow-up shows under the summary; an answer to "needs info" puts the record back in review."""
    assert parent.id is not None
    if parent.status == Status.NEEDS_INFO and repo.set_status_if(
        s, submission_id=parent.id, expected=Status.NEEDS_INFO, values={"status": Status.RECEIVED}
    ):
        repo.add_audit(s, submission_id=parent.id, actor=actor, action="info_received",
                       before={"status": "needs_info"}, after={"status": "received"})
        enqueue(s, key=f"{SLACK_UPDATE}:{parent.reference}:fu{fu.id}", kind=SLACK_UPDATE,
                payload={"reference": parent.reference}, submission_id=parent.id)
    enqueue(s, key=f"{SLACK_THREAD}:{parent.reference}:{fu.id}", kind=SLACK_THREAD,
            payload={"reference": parent.reference, "followup_id": fu.id}, submission_id=parent.id)


def _enqueue_ack(s: Session, settings: Settings, sub: Submission, inbound: Stored, rec: EvidenceRecord) -> None:
    to, why_not = ack_decision(settings, rec, inbound.envelope_from, lambda r: repo.count_recent_outbox(
        s, kind=acks.KIND, recipient=r, since=timedelta(hours=1)))
    if why_not is not None or to is None:
        log.info("%s: no acknowledgement (%s)", sub.reference, why_not,
                 extra={"reference": sub.reference, "door": door_of(inbound.peer, inbound.channel)})
        return
    payload = acks.build(settings, sub, to=to, original_message_id=rec.message_id)
    enqueue(s, key=f"ack:{sub.reference}", kind=acks.KIND, payload=payload, submission_id=sub.id, recipient=to)


def _enqueue_slack_receipt(s: Session, settings: Settings, sub: Submission) -> None:
    """The Slack door's acknowledgement: the reference, privately, to the person who submitted."""
    assert sub.slack_user_id
    text = render("receipt_slack.txt.j2", reference=sub.reference, title=sub.title or "your evidence",
                  inquiry_title=settings.inquiry_title)
    enqueue(s, key=f"{SLACK_DM}:receipt:{sub.reference}", kind=SLACK_DM, submission_id=sub.id,
            recipient=sub.slack_user_id, payload={"user": sub.slack_user_id, "text": text})


_WORKER_ENGINES: dict[str, Engine] = {}


def process_in_worker(settings: Settings, inbound_id: int) -> Filed | None:
    """process_inbound, run inside the parser's worker process with an engine of its own there:
    parsing and filing then cost the service's process (and its GIL) nothing."""
    return process_inbound(_worker_engine(settings), settings, inbound_id=inbound_id)


def _worker_engine(settings: Settings) -> Engine:
    from storage.db import make_engine

    engine = _WORKER_ENGINES.get(settings.database_url)
    if engine is None:
        engine = _WORKER_ENGINES[settings.database_url] = make_engine(settings.database_url)
        if engine.dialect.name == "sqlite":
            from sqlalchemy import event

            @event.listens_for(engine, "connect")
            def _small_cache(dbapi_conn: Any, _rec: Any) -> None:
                # A big message's pages pass through the page cache on their way in and out (the
                # blob read, the state UPDATE that rewrites the row): a small cache keeps the
                # worker's memory near one copy of the message. The worker's queries are few.
                dbapi_conn.execute("PRAGMA cache_size=-512")
    return engine


def forget_worker_engines() -> None:
    """Before a fork: closes the engines this process opened for worker work, so that no
    connection is shared with the child (which opens its own)."""
    while _WORKER_ENGINES:
        _WORKER_ENGINES.popitem()[1].dispose()


def parse_many_in_worker(settings: Settings, inbound_ids: Sequence[int]) -> list[Parsed]:
    """parse_received for each, in a worker process (the import's pool): the raw copies are read
    there from the database; what comes back is the parsed record, not the bytes."""
    return parse_many(_worker_engine(settings), settings, inbound_ids)


def parse_many(engine: Engine, settings: Settings, inbound_ids: Sequence[int]) -> list[Parsed]:
    """parse_received for many messages, in order, with one read transaction for all (_load): a
    transaction and an ORM load per message cost as much as parsing a short one."""
    out = []
    for stored, job in _load(engine, settings, inbound_ids):
        out.append(_parse(settings, stored, job))
        del job  # before the next raw copy is read
    _add_campaign_keys(out)
    return out


def file_many_in_worker(settings: Settings, inbound_ids: Sequence[int]) -> list[Filed]:
    """file_many inside a worker process (the service's parser, the import's pool): each message
    is read from the database there, so no raw copy is ever pickled across."""
    return file_many(_worker_engine(settings), settings, inbound_ids)


FILE_BATCH = 50  # messages per filing transaction (process_pending)


def process_pending(engine: Engine, settings: Settings, *, limit: int = 50, batch: int = FILE_BATCH) -> list[Filed]:
    """Files stored messages still waiting (after a crash, or new), oldest first, `batch` per
    filing transaction."""
    with unit_of_work(engine) as s:
        ids = repo.pending_inbound_ids(s, limit=limit)
    done = []
    for k in range(0, len(ids), batch):
        done.extend(file_many(engine, settings, ids[k : k + batch]))
    return done


def store_many(engine: Engine, drafts: Sequence[InboundDraft]) -> list[tuple[int, bool]]:
    """Stores drafts in one transaction, one multi-row INSERT (the import; the doors' group commit
    does the same); (id, created) per draft, in order."""
    if not drafts:
        return []
    with engine.begin() as conn:
        return repo.FastInboundInsert(conn.dialect)(conn, drafts)


def store_now(engine: Engine, d: InboundDraft) -> tuple[int, bool]:
    """Stores one draft in its own transaction (the CLI import; the SMTP door batches instead)."""
    with unit_of_work(engine) as s:
        return repo.insert_inbound(s, draft=d)

