"""Reviewers read everything in Slack: the "Read in full" modal and the originals in the thread.

The real service against the local Slack stand-in over HTTP: the button is clicked with a signed
block_actions request; uploads go through the stand-in's two-step external upload API; faults,
a lost worker and erasure are played against it. Pure rules (what may be uploaded, how text is
split, where the bytes are found) are tested directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile
from collections import Counter
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from bot import drafts, intake, mrkdwn, outbox_kinds
from bot.parsing.originals import attachment_bytes
from bot.runtime.service import Service
from bot.settings import Settings
from bot.uploads import why_not_upload
from handlers.slack.reading import full_text_view
from storage.db import unit_of_work
from storage.models import Attachment, OutboxItem, Submission, utcnow
from tests.support.slack_api import FakeSlack, validate_view
from tests.support.slack_requests import block_action_payload, interaction_body, post_signed
from tests.test_slack_outbox import CHANNEL, recorded_ts, slack_settings, wait_for

REVIEWER = "U0REV1"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
NOTES = b"Minutes of the contract board, 3 March: payroll errors rose again in February.\n"


def _docm() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
        z.writestr("word/vbaProject.bin", b"\x00macro")
    return buf.getvalue()


def mail_with_attachments(i: int = 1, *, body: str = "The payroll contract failed.", sender: str = "ann@example.org",
                          extra: list[tuple[bytes, str, str, str]] | None = None) -> bytes:
    m = EmailMessage()
    m["From"] = f"Ann Example <{sender}>"
    m["To"] = "evidence@localhost"
    m["Subject"] = f"Evidence: payroll {i}"
    m["Message-ID"] = f"<read-{i}@example.org>"
    m.set_content(f"Public body: Kent County Council\nSupplier: Capita\nOutcome: failure\n\n{body}\n")
    for data, maintype, subtype, name in extra if extra is not None else [
        (NOTES, "text", "plain", "board-minutes.txt"),
        (PNG, "image", "png", "chart.png"),
        (b"MZ\x90\x00" + b"\x00" * 60, "application", "octet-stream", "invoice.exe"),
        (_docm(), "application", "vnd.ms-word.document.macroEnabled.12", "report.docm"),
        (b"PK\x03\x04" + b"\x00" * 30, "application", "zip", "everything.zip"),
    ]:
        if maintype == "text":
            m.add_attachment(data.decode(), subtype=subtype, filename=name)
        else:
            m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return bytes(m)


def file_mail(engine: Engine, settings: Settings, raw: bytes) -> str:
    intake.store_now(engine, drafts.draft(raw, envelope_from="ann@example.org", rcpts=["evidence@localhost"]))
    (filed,) = intake.process_pending(engine, settings, limit=1)
    assert filed.reference
    return filed.reference


def completed(slack: FakeSlack) -> list[dict[str, Any]]:
    return [f for f in slack.files.values() if f.get("completed")]


def thread_of(slack: FakeSlack, ts: str) -> list[dict[str, Any]]:
    return [m for m in slack.posted_messages(CHANNEL) if m.get("thread_ts") == ts]


async def click(svc: Service, ref: str, ts: str, user: str) -> None:
    payload = block_action_payload("review_read", ref, user_id=user, channel_id=CHANNEL, message_ts=ts)
    status, _ = await post_signed(f"http://127.0.0.1:{svc.web_port}/slack/events", interaction_body(payload),
                                  "test-secret")
    assert status == 200


async def test_read_in_full_shows_the_whole_text_and_every_attachment(db_url: str, engine: Engine) -> None:
    long_body = " ".join(f"Paragraph {n} says what happened in month {n}." for n in range(600))
    async with FakeSlack(post_interval=0) as slack:
        settings = slack_settings(db_url, slack)
        ref = file_mail(engine, settings, mail_with_attachments(body=long_body))
        async with Service(settings, smtp=False, slack_post_interval=0) as svc:
            ts = await wait_for(lambda: recorded_ts(engine)[ref])
            summary = slack.messages[(CHANNEL, ts)]
            assert summary["blocks"][0]["accessory"]["action_id"] == "review_read"

            await click(svc, ref, ts, "U9STRANGER")
            await wait_for(lambda: slack.ephemerals)
            assert "Only the named reviewers" in slack.ephemerals[0]["text"]
            assert not slack.calls_to("views.open")

            await click(svc, ref, ts, REVIEWER)
            (call,) = await wait_for(lambda: [c for c in slack.calls_to("views.open") if c.ok])
        view = call.args["view"]
        assert validate_view(view) == []
        text = json.dumps(view, ensure_ascii=False)
        # The whole evidence, in sections within Slack's limits, in order.
        sections = [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"]
        assert all(len(s) <= 3000 for s in sections)
        joined = " ".join(sections)
        assert "Paragraph 0 says" in joined and "Paragraph 599 says what happened in month 599." in joined
        assert joined.index("Paragraph 10 ") < joined.index("Paragraph 500 ")
        # Each attachment: name, type, size and the text read from it.
        headings = [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]
        assert headings == ["Evidence"] + [f"Attachment {i}: {n}" for i, n in enumerate(
            ("board-minutes.txt", "chart.png", "invoice.exe", "report.docm", "everything.zip"), 1)]
        assert f"image/png · {len(PNG)} bytes" in text and "text/plain" in text
        assert "payroll errors rose again in February" in text
        assert "No text could be read from this file" in text  # the image


async def test_originals_go_into_the_thread_and_the_rest_is_listed_with_reasons(db_url: str, engine: Engine) -> None:
    async with FakeSlack(post_interval=0) as slack:
        settings = slack_settings(db_url, slack)
        ref = file_mail(engine, settings, mail_with_attachments())
        async with Service(settings, smtp=False, slack_post_interval=0):
            ts = await wait_for(lambda: recorded_ts(engine)[ref])
            await wait_for(lambda: len(completed(slack)) == 2 and thread_of(slack, ts))
            await wait_for(lambda: _files_item(engine)[0] == "done")
        files = {f["name"]: f for f in completed(slack)}
        assert set(files) == {"board-minutes.txt", "chart.png"}
        for f in files.values():
            assert f["channel_id"] == CHANNEL and f["thread_ts"] == ts
        assert slack.uploads[files["chart.png"]["id"]] == PNG
        assert slack.uploads[files["board-minutes.txt"]["id"]].replace(b"\r\n", b"\n") == NOTES
        (note,) = thread_of(slack, ts)
        assert "invoice.exe: a program or script: never uploaded" in note["text"]
        assert "report.docm: a macro-enabled Office file: never uploaded" in note["text"]
        assert "everything.zip: an archive: never uploaded" in note["text"]
        # The summary came first: every upload completed after it was posted.
        calls = [c.method for c in slack.calls]
        assert calls.index("chat.postMessage") < calls.index("files.completeUploadExternal")


def _files_item(engine: Engine) -> tuple[str, str | None]:
    with unit_of_work(engine) as s:
        row = s.execute(select(col(OutboxItem.status), col(OutboxItem.result))
                        .where(col(OutboxItem.kind) == outbox_kinds.SLACK_FILES)).one()
        return row[0], row[1]


async def test_uploads_happen_once_across_429_5xx_and_a_lost_worker(db_url: str, engine: Engine) -> None:
    async with FakeSlack(post_interval=0) as slack:
        settings = slack_settings(db_url, slack)
        ref = file_mail(engine, settings, mail_with_attachments())
        chart_slot = "att:" + hashlib.sha256(PNG).hexdigest()[:16]
        with unit_of_work(engine) as s:
            notes_sha = s.execute(select(col(Attachment.sha256)).where(col(Attachment.filename) == "board-minutes.txt"))
            notes_slot = "att:" + notes_sha.scalar_one()[:16]
        client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
        # The summary is in the channel (posted by the earlier worker).
        ts = (await client.chat_postMessage(channel=CHANNEL, text=f"{ref}: summary"))["ts"]
        with unit_of_work(engine) as s:
            s.execute(update(Submission).where(col(Submission.reference) == ref)
                      .values(review_channel=CHANNEL, review_ts=ts))
            s.execute(update(OutboxItem).where(col(OutboxItem.kind) == outbox_kinds.SLACK_SUMMARY)
                      .values(status="done"))
        # An earlier worker began both uploads and died: it had completed the chart (Slack shows it)
        # but not the notes. Its lease has run out.
        got = await client.files_getUploadURLExternal(filename="chart.png", length=len(PNG))
        async with aiohttp.ClientSession() as http:
            await (await http.post(got["upload_url"], data=PNG)).release()
        await client.files_completeUploadExternal(files=[{"id": got["file_id"], "title": "chart.png"}],
                                                  channel_id=CHANNEL, thread_ts=ts)
        abandoned = (await client.files_getUploadURLExternal(filename="board-minutes.txt", length=10))["file_id"]
        progress = {"started": {chart_slot: got["file_id"], notes_slot: abandoned}, "done": {}, "left_out_ts": None}
        with unit_of_work(engine) as s:
            s.execute(update(OutboxItem).where(col(OutboxItem.kind) == outbox_kinds.SLACK_FILES).values(
                status="sending", locked_by="dead-worker", locked_until=utcnow(), result=json.dumps(progress)))
        slack.fail_next("files.getUploadURLExternal", status=429, retry_after=1)
        slack.fail_next("files.completeUploadExternal", status=500)
        async with Service(settings, smtp=False, slack_post_interval=0):
            await wait_for(lambda: _files_item(engine)[0] == "done")
        names = Counter(f["name"] for f in completed(slack))
        assert names == Counter({"chart.png": 1, "board-minutes.txt": 1})
        statuses = [c.status for c in slack.calls_to("files.completeUploadExternal")]
        assert statuses.count(500) == 1 and statuses.count(200) == 2  # ours above, then the notes once
        # Ours two, then the notes: a 429 waited out, and a fresh upload after the 500 (the one
        # begun before it was never completed, so Slack drops it).
        assert [c.status for c in slack.calls_to("files.getUploadURLExternal")] == [200, 200, 429, 200, 200]
        assert len(thread_of(slack, ts)) == 1  # the left-out list, once
        assert not slack.calls_to("chat.update")
        done = json.loads(_files_item(engine)[1] or "{}")
        assert set(done["done"]) == {chart_slot, notes_slot} and not done["started"]


async def test_erasure_deletes_the_uploaded_files(db_url: str, engine: Engine) -> None:
    from bot.privacy import Subject, erase

    async with FakeSlack(post_interval=0) as slack:
        settings = slack_settings(db_url, slack)
        ref = file_mail(engine, settings, mail_with_attachments())
        async with Service(settings, smtp=False, slack_post_interval=0) as svc:
            await wait_for(lambda: _files_item(engine)[0] == "done")
            uploaded = {f["id"] for f in completed(slack)}
            assert len(uploaded) == 2
            await asyncio.to_thread(erase, engine, Subject.of(email="ann@example.org"))
            svc.worker.wake()
            await wait_for(lambda: {c.args.get("file") for c in slack.calls_to("files.delete") if c.ok} == uploaded)
        assert not completed(slack) and ref


async def test_text_too_long_for_a_modal_continues_in_the_thread_as_a_file(db_url: str, engine: Engine) -> None:
    body = "\n\n".join(f"Section {n}. " + "The service desk logged every failure in detail. " * 40
                       for n in range(120))
    async with FakeSlack(post_interval=0) as slack:
        settings = slack_settings(db_url, slack)
        ref = file_mail(engine, settings, mail_with_attachments(body=body, extra=[]))
        async with Service(settings, smtp=False, slack_post_interval=0) as svc:
            ts = await wait_for(lambda: recorded_ts(engine)[ref])
            await wait_for(lambda: completed(slack))
            await click(svc, ref, ts, REVIEWER)
            (call,) = await wait_for(lambda: [c for c in slack.calls_to("views.open") if c.ok])
        view = call.args["view"]
        assert validate_view(view) == [] and len(view["blocks"]) <= 100
        assert f"{ref}-full-text.txt" in view["blocks"][-1]["text"]["text"]
        (f,) = completed(slack)
        assert f["name"] == f"{ref}-full-text.txt" and f["thread_ts"] == ts
        assert b"Section 119." in slack.uploads[f["id"]] and b"Section 0." in slack.uploads[f["id"]]


# -- the rules, without servers --------------------------------------------------------------------

@pytest.mark.parametrize(("name", "ctype", "data", "why"), [
    ("a.pdf", "application/pdf", b"%PDF-1.7", None),
    ("photo.JPG", "image/jpeg", b"\xff\xd8\xff", None),
    ("report.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"", None),
    ("setup.exe", "application/octet-stream", b"MZ", "a program or script"),
    ("harmless.pdf", "application/pdf", b"MZ\x90", "a program or script"),  # a program whatever its name
    ("book.xlsm", "application/vnd.ms-excel.sheet.macroEnabled.12", b"PK\x03\x04", "macro-enabled"),
    ("files.7z", "application/x-7z-compressed", b"7z\xbc\xaf", "an archive"),
    ("data.bin", "application/octet-stream", b"\x00\x01", "not a document or image type"),
    ("page.svg", "image/svg+xml", b"<svg", "not a document or image type"),
])
def test_what_may_be_uploaded(name: str, ctype: str, data: bytes, why: str | None) -> None:
    if name == "report.docx":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("word/document.xml", "<w:document/>")
        data = buf.getvalue()
    got = why_not_upload(name, ctype, data, max_bytes=1000)
    assert (got is None) if why is None else (got is not None and why in got)


def test_renamed_macros_and_size_are_refused() -> None:
    assert "macros inside" in (why_not_upload("report.docx", "application/pdf", _docm(), max_bytes=10**6) or "")
    assert "over the" in (why_not_upload("big.pdf", "application/pdf", b"%PDF" + b"x" * 2000, max_bytes=1000) or "")


def test_split_keeps_everything_within_the_limit_and_never_breaks_an_escape() -> None:
    text = ("Costs & delays <rose>. " * 500) + "\n\n" + "x" * 7000
    pieces = mrkdwn.split(text, 3000)
    assert all(len(p) <= 3000 for p in pieces)
    assert "".join(pieces).replace(" ", "").replace("\n", "") == mrkdwn.escape(text).replace(" ", "").replace("\n", "")
    assert not any(p.endswith(("&", "&a", "&am", "&amp", "&l", "&lt", "&g", "&gt")) for p in pieces)


def test_original_bytes_are_found_by_hash_also_in_a_forwarded_message() -> None:
    inner = EmailMessage()
    inner["Subject"] = "fwd"
    inner.set_content("see attached")
    inner.add_attachment(PNG, maintype="image", subtype="png", filename="deep.png")
    outer = EmailMessage()
    outer["Subject"] = "Fwd: fwd"
    outer.set_content("forwarding")
    outer.add_attachment(inner)
    want = hashlib.sha256(PNG).hexdigest()
    assert attachment_bytes(bytes(outer), {want, "0" * 64}) == {want: PNG}


def test_a_short_record_fits_the_modal_without_a_file() -> None:
    from bot.record import EvidenceRecord

    view, overflow = full_text_view(EvidenceRecord(reference="EV-000001", body="Short."))
    assert not overflow and validate_view(view) == []
