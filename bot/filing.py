"""Filing parsed e-mails in bulk: what bot.intake._file does for each, done for a run of them.

`_file` costs some fifteen ORM statements a record (the record, read back, its corroboration
keys, its search-index row, the campaign lookup and 32 band keys, the acknowledgement with its
per-sender count, the summary). Here a run of new records (evidence and automatic mail, by
e-mail) takes a few statements per table: reference numbers and ids in one statement each, the
campaign decisions from one read of the batch's band keys (bot.campaigns.BatchMatch), then one
executemany per table. The rows are the ones `_file` would write, in the same order;
tests/test_filing.py files the same mail both ways and compares every table.

Follow-ups and Slack submissions are rarer and touch existing records: bot.intake.file_batch
files them with `_file`, between runs, in the same transaction.

The import's loop, parser processes ahead of this filing, is bot.cli.import_pipeline.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

from sqlmodel import Session, col, select

from bot import acks, campaigns, corroboration
from bot.filed import LONG_TEXT, Filed, Parsed, ack_decision, door_of, new_submission_values
from bot.outbox_kinds import SLACK_FILES, SLACK_SUMMARY, SLACK_UPDATE
from bot.record import EvidenceRecord, Kind
from bot.references import format_reference
from bot.settings import Settings
from storage import filing, search
from storage.models import Attachment, OutboxItem, Submission, utcnow

log = logging.getLogger(__name__)


def can_bulk_file(p: Parsed, rec: EvidenceRecord) -> bool:
    """A new record by e-mail: evidence or automatic mail (a follow-up names an existing one)."""
    return p.inbound.channel != "slack" and rec.kind in (Kind.EVIDENCE, Kind.AUTOMATIC)


def file_run(s: Session, settings: Settings, run: Sequence[tuple[Parsed, EvidenceRecord]],
             known: dict[int, campaigns.Earlier | None] | None = None) -> list[Filed]:
    """Files claimed messages (can_bulk_file) in the caller's transaction, in order. `known`: the
    campaign candidates read by earlier runs of the same transaction (campaigns.BatchMatch)."""
    if not run:
        return []
    subs = [_new_row(settings, p, rec) for p, rec in run]
    refs = iter(filing.take_numbers(s, name="reference", count=sum(rec.kind != Kind.AUTOMATIC for _, rec in run)))
    for (_, rec), sub, sid in zip(run, subs, filing.new_ids(s, table="submission", count=len(subs)), strict=True):
        sub.id = sid
        if rec.kind != Kind.AUTOMATIC:
            sub.ref_no = next(refs)
            sub.reference = format_reference(settings.reference_prefix, sub.ref_no)
            # finding.refresh's keys, written with the row instead of by an UPDATE after it.
            for k, v in corroboration.keys(sub.public_body, sub.supplier).items():
                setattr(sub, k, v)
    filed = [(p, rec, sub) for (p, rec), sub in zip(run, subs, strict=True)]
    evidence = [(p, rec, sub) for p, rec, sub in filed if rec.kind != Kind.AUTOMATIC]
    matcher = campaigns.BatchMatch(s, [k for p, _, sub in evidence if p.campaign_keys is not None
                                       and p.campaign_keys[0] == sub.body for k in p.campaign_keys[2]], known)
    joined = {sub.id: matcher.match(sub, precomputed=p.campaign_keys) for p, _, sub in evidence}

    filing.insert_rows(s, _SUBMISSIONS, [{c: getattr(sub, c) for c in _COLUMNS} for sub in subs])
    filing.insert_rows(s, Attachment.__table__, [  # type: ignore[attr-defined]
        {"submission_id": sub.id, "followup_id": None, "position": pos, "filename": a.filename,
         "content_type": a.content_type, "size": a.size, "sha256": a.sha256, "text": a.text}
        for (_, rec), sub in zip(run, subs, strict=True) for pos, a in enumerate(rec.attachments)])
    search.write_new(s, [
        (sub.id or 0, search.document_from(sub, [(a.filename, a.text) for a in rec.attachments], (),
                                           [v for v in (sub.body_key, sub.supplier_key) if v]))
        for _, rec, sub in evidence if sub.kind == "evidence"])
    matcher.write()
    filing.enqueue_many(s, _outbox(s, settings, evidence, joined))
    return [Filed(p.inbound.id or 0, str(rec.kind), sub.reference, door_of(p.inbound.peer, p.inbound.channel))
            for p, rec, sub in filed]


_SUBMISSIONS = Submission.__table__  # type: ignore[attr-defined]
_COLUMNS = [c.key for c in _SUBMISSIONS.columns]
# The model's defaults as SQLModel fills them in: plain values once, factories (the times) per row.
_FIELDS = Submission.model_fields
_STATIC = {name: f.default for name, f in _FIELDS.items() if f.default_factory is None}
_FACTORIES = [(name, f.default_factory) for name, f in _FIELDS.items() if f.default_factory is not None]


def _new_row(settings: Settings, p: Parsed, rec: EvidenceRecord) -> Submission:
    """intake.new_submission's values as a plain object: building a SQLModel table object costs
    some 0.1-0.3 ms (its ORM instrumentation), more than the rest of filing one record. Only
    ever read like a Submission (bot.campaigns, bot.acks, storage.search) and written as a row,
    so it stands in for one."""
    values = dict(_STATIC)
    values.update((name, factory()) for name, factory in _FACTORIES)  # type: ignore[call-arg]
    values.update(new_submission_values(settings, p.inbound, rec, p.error))
    return cast(Submission, SimpleNamespace(**values))


def _outbox(s: Session, settings: Settings, evidence: list[tuple[Parsed, EvidenceRecord, Submission]],
            joined: dict[int | None, campaigns.Member | None]) -> list[dict[str, Any]]:
    """The effects `_file` queues for each record, in its order: the acknowledgement, then the
    summary (with its files) or, for a campaign member, the campaign card's update."""
    now = utcnow()
    recipients = [acks.recipient(rec, p.inbound.envelope_from) for p, rec, _ in evidence]
    sent = filing.recent_counts(s, kind=acks.KIND, recipients=[r for r in recipients if r], since=timedelta(hours=1))
    firsts = {j.first_id for j in joined.values() if j is not None}
    waiting = _card_updates_waiting(s, firsts)
    rows: list[dict[str, Any]] = []
    for p, rec, sub in evidence:
        to, why_not = ack_decision(settings, rec, p.inbound.envelope_from, lambda r: sent.get(r, 0))
        if why_not is not None or to is None:
            log.info("%s: no acknowledgement (%s)", sub.reference, why_not,
                     extra={"reference": sub.reference, "door": door_of(p.inbound.peer, p.inbound.channel)})
        else:
            payload = acks.build(settings, sub, to=to, original_message_id=rec.message_id)
            rows.append(filing.outbox_row(key=f"ack:{sub.reference}", kind=acks.KIND, payload=payload,
                                          submission_id=sub.id, recipient=to, now=now))
            sent[to] = sent.get(to, 0) + 1
        j = joined[sub.id]
        ref = {"reference": sub.reference}
        if j is None:
            rows.append(filing.outbox_row(key=f"{SLACK_SUMMARY}:{sub.reference}", kind=SLACK_SUMMARY, payload=ref,
                                          submission_id=sub.id, now=now))
            if bool(rec.attachments) or len(rec.body or "") > LONG_TEXT:
                rows.append(filing.outbox_row(key=f"{SLACK_FILES}:{sub.reference}", kind=SLACK_FILES, payload=ref,
                                              submission_id=sub.id, now=now))
        elif j.first_id not in waiting:  # campaigns.enqueue_card_update: one waits at a time
            waiting.add(j.first_id)
            rows.append(filing.outbox_row(
                key=f"{SLACK_UPDATE}:campaign:{j.first_reference}:{uuid.uuid4().hex[:16]}", kind=SLACK_UPDATE,
                payload={"reference": j.first_reference}, submission_id=j.first_id, now=now))
    return rows


def _card_updates_waiting(s: Session, first_ids: set[int]) -> set[int]:
    """The campaigns (first records' ids) whose card already has an update waiting, locked as
    campaigns.enqueue_card_update locks it."""
    if not first_ids:
        return set()
    stmt = select(OutboxItem.submission_id).where(
        col(OutboxItem.submission_id).in_(sorted(first_ids)), OutboxItem.kind == SLACK_UPDATE,
        OutboxItem.status == "pending", col(OutboxItem.key).startswith(f"{SLACK_UPDATE}:campaign:"),
    ).with_for_update()
    return {int(i) for i in s.exec(stmt).all() if i is not None}
