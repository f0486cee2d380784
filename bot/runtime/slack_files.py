"""Uploads a record's original attachments into its review summary's thread, exactly once.

Slack's external upload is three steps: files.getUploadURLExternal gives a file id and a URL, the
bytes are POSTed there, and files.completeUploadExternal shares the file in the thread. Only the
last step makes anything visible, so each file's id is noted on the outbox item (note_progress)
before it is completed; a retry (after a 5xx, a timeout or a crash) asks files.info whether that
id was completed and shares it only if not. An upload that was never completed is abandoned:
Slack drops it.

Also in the thread: the list of attachments left out and why (bot.uploads), and, when the
evidence is longer than the "Read in full" modal holds, the whole text as a file.
Erasure deletes every file uploaded for a record (files.delete), after any upload in flight.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.errors import SlackApiError

from bot import mrkdwn
from bot.outbox_kinds import SLACK_FILES, SLACK_FILES_DELETE
from bot.parsing.originals import attachment_bytes
from bot.record import EvidenceRecord
from bot.runtime import delivery
from bot.uploads import why_not_upload
from handlers.slack.reading import full_text_document, full_text_view, overflow_filename
from storage import outbox, repo
from storage.db import unit_of_work

if TYPE_CHECKING:
    from bot.runtime.slack_outbox import SlackPerformer

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """What an upload item has done so far; kept as JSON in the item's result."""

    started: dict[str, str] = field(default_factory=dict)  # slot -> file id, completion maybe not done
    done: dict[str, str] = field(default_factory=dict)  # slot -> file id, shared in the thread
    left_out_ts: str | None = None

    @classmethod
    def load(cls, text: str | None) -> Progress:
        try:
            data = json.loads(text or "{}")
        except ValueError:
            data = {}
        return cls(dict(data.get("started") or {}), dict(data.get("done") or {}), data.get("left_out_ts"))

    def dump(self) -> str:
        return json.dumps({"started": self.started, "done": self.done, "left_out_ts": self.left_out_ts})


@dataclass(frozen=True)
class Plan:
    uploads: list[tuple[str, str, bytes]]  # (slot, filename, bytes)
    left_out: list[tuple[str, str]]  # (filename, why)


def plan(rec: EvidenceRecord, raw: bytes | None, *, max_bytes: int) -> Plan:
    """What goes into the thread for this record (pure: the record and its raw message in hand)."""
    originals = attachment_bytes(raw or b"", {a.sha256 for a in rec.attachments}) if raw else {}
    uploads: list[tuple[str, str, bytes]] = []
    left_out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, a in enumerate(rec.attachments):
        name = a.filename or f"attachment-{i + 1}"
        if a.sha256 in seen:
            continue  # the same file attached twice goes up once
        seen.add(a.sha256)
        data = originals.get(a.sha256)
        if data is None:
            left_out.append((name, "its bytes are no longer in the stored message (erased or unreadable)"))
            continue
        why = why_not_upload(a.filename, a.content_type, data, max_bytes=max_bytes)
        if why:
            left_out.append((name, why))
        else:
            uploads.append((f"att:{a.sha256[:16]}", name, data))
    if full_text_view(rec)[1]:
        uploads.append(("text", overflow_filename(rec.reference or "record"), full_text_document(rec).encode()))
    return Plan(uploads, left_out)


class SlackFiles:
    """The SLACK_FILES and SLACK_FILES_DELETE performers; Slack calls go through the summary
    performer's paced `_call`, so uploads share its rate limiting and error mapping."""

    def __init__(self, performer: SlackPerformer) -> None:
        self.p = performer

    def performers(self) -> dict[str, Any]:
        return {SLACK_FILES: self.upload, SLACK_FILES_DELETE: self.delete}

    def _load(self, reference: str) -> tuple[str | None, str | None, EvidenceRecord, bytes | None]:
        sub, rec = self.p._load(reference)
        raw = None
        if sub.inbound_id is not None and sub.channel == "email":
            with unit_of_work(self.p.engine, read_only=True) as s:
                inbound = repo.get_inbound(s, inbound_id=sub.inbound_id)
                raw = bytes(inbound.raw) if inbound is not None else None
        return sub.review_channel, sub.review_ts, rec, raw

    async def _note(self, item: outbox.Claimed, progress: Progress) -> None:
        if not await asyncio.to_thread(outbox.note_progress, self.p.engine, item_id=item.id, worker=item.worker,
                                       progress=progress.dump()):
            raise delivery.TemporaryFailure("lease lost mid-upload; the new holder carries on")

    async def _completed(self, file_id: str) -> bool:
        """Whether an upload we began was completed (shared) before we lost track of it."""
        try:
            resp = await self.p.client.files_info(file=file_id)
        except SlackApiError as e:
            if e.response.get("error") == "file_not_found":
                return False
            raise delivery.TemporaryFailure(f"Slack files.info: {e.response.get('error')}") from e
        info = resp.get("file") or {}
        return bool(info.get("shares") or info.get("channels"))

    async def _send_bytes(self, url: str, data: bytes) -> None:
        session = self.p.client.session
        own = session is None
        session = session or aiohttp.ClientSession()
        try:
            async with session.post(url, data=data, timeout=aiohttp.ClientTimeout(total=120)) as resp:
                if resp.status != 200:
                    raise delivery.TemporaryFailure(f"Slack upload URL answered HTTP {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise delivery.TemporaryFailure(f"Slack upload: {type(e).__name__} {e}") from e
        finally:
            if own:
                await session.close()

    async def upload(self, item: outbox.Claimed) -> str:
        channel, ts, rec, raw = await asyncio.to_thread(self._load, item.payload["reference"])
        if not (channel and ts):
            raise delivery.TemporaryFailure("the summary is not posted yet")
        todo = await asyncio.to_thread(plan, rec, raw, max_bytes=self.p.settings.slack_attachment_max_bytes)
        progress = Progress.load(item.progress)
        pace = f"files:{channel}"
        for slot, filename, data in todo.uploads:
            if slot in progress.done:
                continue
            began = progress.started.get(slot)
            if began and await self._completed(began):
                progress.done[slot] = progress.started.pop(slot)
                await self._note(item, progress)
                continue
            got = await self.p._call(pace, "files_getUploadURLExternal", filename=filename, length=len(data))
            file_id = str(got["file_id"])
            await self._send_bytes(str(got["upload_url"]), data)
            progress.started[slot] = file_id
            await self._note(item, progress)  # before the step that makes it visible
            await self.p._call(pace, "files_completeUploadExternal", files=[{"id": file_id, "title": filename}],
                               channel_id=channel, thread_ts=ts)
            progress.done[slot] = progress.started.pop(slot)
            await self._note(item, progress)
        if todo.left_out and not progress.left_out_ts:
            key = f"{item.key}:left_out"
            found = await self.p._find_posted(channel, key, thread_ts=ts) if item.resumed else None
            if found is None:
                lines = "\n".join(f"• {mrkdwn.escape(name)}: {mrkdwn.escape(why)}" for name, why in todo.left_out)
                posted = await self.p._call(channel, "chat_postMessage", channel=channel, thread_ts=ts,
                                            text=mrkdwn.cut(f"Attachments not uploaded here:\n{lines}", 3000),
                                            metadata={"event_type": "evidence_bot_outbox",
                                                      "event_payload": {"key": key}})
                found = str(posted.get("ts", ""))
            progress.left_out_ts = found
        return progress.dump()

    def _uploaded(self, key: str) -> list[str]:
        with unit_of_work(self.p.engine, read_only=True) as s:
            status, result = repo.outbox_outcome(s, key=key)
        if status in ("pending", "sending"):
            raise delivery.TemporaryFailure("the upload to undo is still in progress")
        p = Progress.load(result)
        return [*p.done.values(), *p.started.values()]

    async def delete(self, item: outbox.Claimed) -> str:
        files = await asyncio.to_thread(self._uploaded, str(item.payload["of"]))
        for file_id in files:
            try:
                await self.p.client.files_delete(file=file_id)
            except SlackApiError as e:
                if e.response.get("error") not in ("file_not_found", "file_deleted"):
                    raise delivery.TemporaryFailure(f"Slack files.delete: {e.response.get('error')}") from e
        return f"deleted {len(files)} file(s)"
