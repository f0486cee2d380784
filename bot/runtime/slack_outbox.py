"""Performs the Slack side effects queued in the outbox: summaries, updates, thread replies, DMs.

Rules that make "exactly once" hold against a real, rate-limited Slack:
- a summary's `ts` is recorded on the record; an item whose record already has one is done;
- a post that may already have happened (timeout, worker died) is looked for by the outbox key it
  carries in its message metadata before it is posted again;
- posts to one channel are paced to Slack's ~1 per second, and a 429 waits Retry-After.
The database is read and written in short units of work, never across a Slack call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine

from bot import campaigns, mrkdwn
from bot.convert import record_from_submission
from bot.corroboration import corroborating
from bot.outbox_kinds import SLACK_DM, SLACK_SUMMARY, SLACK_THREAD, SLACK_UPDATE
from bot.record import EvidenceRecord
from bot.runtime import delivery
from bot.settings import Settings
from handlers.slack.blocks import fallback_blocks, summary_blocks
from handlers.slack.campaign_card import campaign_blocks
from storage import repo
from storage.db import unit_of_work
from storage.models import FollowUp, Submission
from storage.outbox import Claimed

log = logging.getLogger(__name__)

KINDS = (SLACK_SUMMARY, SLACK_UPDATE, SLACK_THREAD, SLACK_DM)
THREAD_POSTED = "posted ts="  # a done SLACK_THREAD item's result: this, then the reply's ts
METADATA_EVENT = "evidence_bot_outbox"
# Errors that no retry will mend: misconfiguration or a message Slack will never accept.
PERMANENT = {"channel_not_found", "not_in_channel", "is_archived", "invalid_blocks", "invalid_auth",
             "not_authed", "account_inactive", "token_revoked", "missing_scope", "msg_too_long",
             "user_not_found", "cannot_dm_bot", "invalid_arguments", "message_not_found"}


class SlackPerformer:
    def __init__(self, engine: Engine, settings: Settings, client: AsyncWebClient, *,
                 post_interval: float = 1.05) -> None:
        self.engine = engine
        self.settings = settings
        self.client = client
        self.post_interval = post_interval
        self._last_post: dict[str, float] = {}
        self._channel_locks: dict[str, asyncio.Lock] = {}
        self._also: dict[int, list[str]] = {}  # submission id -> references corroborating it
        self._cards: dict[int, campaigns.Card] = {}  # a campaign's first record id -> its card's figures
        self._parents: dict[int, tuple[str | None, str | None]] = {}  # member id -> its campaign card
        self._asked: dict[int, str | None] = {}  # submission id -> the question it waits on

    def performers(self) -> dict[str, Any]:
        from bot.runtime.slack_files import SlackFiles  # it builds on this class

        return {SLACK_SUMMARY: self.summary, SLACK_UPDATE: self.update, SLACK_THREAD: self.thread,
                SLACK_DM: self.dm, **SlackFiles(self).performers()}

    # -- Slack calls ------------------------------------------------------------------------------
    async def _call(self, pace_key: str, method: str, /, **kwargs: Any) -> dict[str, Any]:
        """One Web API call, paced per channel, waiting out 429s; errors mapped for the worker."""
        lock = self._channel_locks.setdefault(pace_key, asyncio.Lock())
        async with lock:
            for _ in range(5):
                wait = self._last_post.get(pace_key, 0.0) + self.post_interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._last_post[pace_key] = time.monotonic()
                try:
                    resp = await getattr(self.client, method)(**kwargs)
                    return dict(resp.data) if isinstance(resp.data, dict) else {}
                except SlackApiError as e:
                    status = e.response.status_code
                    if status == 429:
                        retry = float(e.response.headers.get("Retry-After", e.response.headers.get("retry-after", 1)))
                        log.info("Slack rate limit on %s; waiting %.0f s", pace_key, retry)
                        self._last_post[pace_key] = time.monotonic() + retry - self.post_interval
                        continue
                    error = str(e.response.get("error", "")) if isinstance(e.response.data, dict) else ""
                    if status < 500 and error in PERMANENT:
                        raise delivery.PermanentFailure(f"Slack {method}: {error}") from e
                    raise delivery.TemporaryFailure(f"Slack {method}: HTTP {status} {error}") from e
                except (TimeoutError, OSError) as e:
                    raise delivery.TemporaryFailure(f"Slack {method}: {type(e).__name__} {e}") from e
            raise delivery.TemporaryFailure(f"Slack {method}: still rate limited")

    async def _with_blocks(self, pace_key: str, method: str, text: str, blocks: list[dict[str, Any]],
                           **kwargs: Any) -> dict[str, Any]:
        """A summary post or update; if Slack refuses its blocks, once more with the plainest form.

        invalid_blocks is permanent: without this the record would never reach (or never leave)
        review in Slack for one field that broke a Block Kit limit nobody foresaw.
        """
        try:
            return await self._call(pace_key, method, text=text, blocks=blocks, **kwargs)
        except delivery.PermanentFailure as e:
            if "invalid_blocks" not in str(e):
                raise
            log.warning("Slack refused the blocks of %s (%s); sending the plain form", text.split(":", 1)[0], e)
        return await self._call(pace_key, method, text=text, blocks=fallback_blocks(text, blocks), **kwargs)

    async def _find_posted(self, channel: str, key: str, *, thread_ts: str | None = None) -> str | None:
        """The ts of a message we already posted for this outbox key, if an earlier try got through.

        A reply in a thread is not in the channel's history, only in the thread's replies: looked
        for there, or a resumed follow-up or campaign member would be posted a second time."""
        try:
            if thread_ts:
                data = await self._call(channel, "conversations_replies", channel=channel, ts=thread_ts, limit=200,
                                        include_all_metadata=True)
            else:
                data = await self._call(channel, "conversations_history", channel=channel, limit=200,
                                        include_all_metadata=True)
        except delivery.PermanentFailure:
            return None
        for m in data.get("messages", []):
            meta = m.get("metadata") or {}
            if meta.get("event_type") == METADATA_EVENT and (meta.get("event_payload") or {}).get("key") == key:
                return str(m["ts"])
        return None

    # -- loading ----------------------------------------------------------------------------------
    def _load(self, reference: str) -> tuple[Submission, EvidenceRecord]:
        with unit_of_work(self.engine) as s:
            sub = repo.get_submission(s, reference=reference)
            if sub is None or sub.id is None:
                raise delivery.PermanentFailure(f"no record {reference}")
            atts = repo.attachments_of(s, submission_ids=[sub.id])[sub.id]
            # Read with the record, so the summary built from it (see _blocks) is just as fresh.
            self._also[sub.id] = corroborating(s, submission_id=sub.id)
            if (card := campaigns.card(s, sub)) is not None:
                self._cards[sub.id] = card
            if campaigns.is_member(sub):  # its own card goes in its campaign card's thread
                first = repo.get_submission(s, submission_id=sub.campaign_id)
                self._parents[sub.id] = (first.review_channel, first.review_ts) if first else (None, None)
            camp = campaigns.info(s, [sub]).get(sub.id)
            if sub.status == "needs_info":
                # A request for information leaves decision_reason alone (nothing is decided yet):
                # the question is in the audit trail, and the summary shows the latest one.
                asked = [a for a in repo.audit_of(s, submission_id=sub.id) if a.action == "needs_info"]
                self._asked[sub.id] = asked[-1].reason if asked else None
            s.expunge(sub)
            return sub, record_from_submission(sub, atts, camp)

    def _blocks(self, sub: Submission, rec: EvidenceRecord) -> tuple[str, list[dict[str, Any]]]:
        when = f"{sub.decided_at:%d %b %Y %H:%M} UTC" if sub.decided_at else None
        asked = self._asked.pop(sub.id or 0, None)
        kw: dict[str, Any] = {"slack_user_id": sub.slack_user_id, "decided_by": sub.decided_by, "decided_at": when,
                              "reason": asked if sub.status == "needs_info" else sub.decision_reason,
                              "corroborated_by": self._also.pop(sub.id or 0, [])}
        card = self._cards.pop(sub.id or 0, None)
        return campaign_blocks(rec, card, **kw) if card is not None else summary_blocks(rec, **kw)

    # -- performers -------------------------------------------------------------------------------
    async def summary(self, item: Claimed) -> str:
        sub, rec = await asyncio.to_thread(self._load, item.payload["reference"])
        if sub.review_ts:
            return f"already posted as {sub.review_ts}"
        channel = self.settings.review_channel or ""
        thread: dict[str, str] = {}
        if sub.id in self._parents:  # a campaign member, opened on demand: in the campaign card's thread
            parent_channel, parent_ts = self._parents.pop(sub.id)
            if not (parent_channel and parent_ts):
                raise delivery.TemporaryFailure("the campaign's card is not posted yet")
            channel, thread = parent_channel, {"thread_ts": parent_ts}
        ts = await self._find_posted(channel, item.key, thread_ts=thread.get("thread_ts")) if item.resumed else None
        if ts is None:
            text, blocks = self._blocks(sub, rec)
            data = await self._with_blocks(channel, "chat_postMessage", text, blocks, channel=channel,
                                           unfurl_links=False, unfurl_media=False, **thread,
                                           metadata={"event_type": METADATA_EVENT, "event_payload": {"key": item.key}})
            ts = str(data["ts"])
            channel = str(data.get("channel") or channel)
        await asyncio.to_thread(self._save_summary, sub.id or 0, channel, ts)
        return f"posted {ts}"

    def _save_summary(self, submission_id: int, channel: str, ts: str) -> None:
        with unit_of_work(self.engine) as s:
            repo.update_submission(s, submission_id=submission_id, values={"review_channel": channel,
                                                                            "review_ts": ts})

    async def update(self, item: Claimed) -> str:
        sub, rec = await asyncio.to_thread(self._load, item.payload["reference"])
        self._parents.pop(sub.id or 0, None)
        if not (sub.review_ts and sub.review_channel):
            if campaigns.is_member(sub):
                return "no card of its own: the campaign's card shows it"
            raise delivery.TemporaryFailure("the summary is not posted yet")
        text, blocks = self._blocks(sub, rec)
        await self._with_blocks(sub.review_channel, "chat_update", text, blocks, channel=sub.review_channel,
                                ts=sub.review_ts)
        return "updated"

    def _load_followup(self, followup_id: int) -> FollowUp:
        with unit_of_work(self.engine) as s:
            fu = s.get(FollowUp, followup_id)
            if fu is None:
                raise delivery.PermanentFailure(f"no follow-up {followup_id}")
            s.expunge(fu)
            return fu

    def _posted_ts(self, key: str) -> str | None:
        """The ts of the thread reply that outbox item `key` posted; None if it never will be."""
        with unit_of_work(self.engine) as s:
            status, result = repo.outbox_outcome(s, key=key)
        if status in ("pending", "sending"):
            raise delivery.TemporaryFailure("the reply to rewrite is not posted yet")
        if status == "done" and (result or "").startswith(THREAD_POSTED):
            return (result or "").removeprefix(THREAD_POSTED) or None
        return None

    async def thread(self, item: Claimed) -> str:
        sub, rec = await asyncio.to_thread(self._load, item.payload["reference"])
        about = ""
        if not sub.review_ts and sub.id in self._parents:
            # A campaign member with no card of its own: its follow-ups go under the campaign's card.
            sub.review_channel, sub.review_ts = self._parents[sub.id]
            about = f" about {sub.reference}"
        self._parents.pop(sub.id or 0, None)
        if not (sub.review_ts and sub.review_channel):
            raise delivery.TemporaryFailure("the summary is not posted yet")
        fu = await asyncio.to_thread(self._load_followup, int(item.payload["followup_id"]))
        who = "the submitter" if rec.confidential else (fu.sender_name or fu.sender_email or "the submitter")
        text = mrkdwn.cut(f"Follow-up{about} from {mrkdwn.escape(who)}:\n{mrkdwn.escape(fu.body or '(empty)')}",
                          3000)
        if item.payload.get("rewrite_of"):
            # Erasure: the reply already in the thread is rewritten from the scrubbed follow-up.
            ts = await asyncio.to_thread(self._posted_ts, str(item.payload["rewrite_of"]))
            if ts is None:
                return "nothing was posted"
            await self._call(sub.review_channel, "chat_update", channel=sub.review_channel, ts=ts, text=text)
            return "updated"
        if item.resumed and (ts := await self._find_posted(sub.review_channel, item.key, thread_ts=sub.review_ts)):
            return f"{THREAD_POSTED}{ts}"
        posted = await self._call(sub.review_channel, "chat_postMessage", channel=sub.review_channel,
                                  thread_ts=sub.review_ts, text=text,
                                  metadata={"event_type": METADATA_EVENT, "event_payload": {"key": item.key}})
        # The ts is kept in the outbox item's result: erasure finds the reply there to rewrite it.
        return f"{THREAD_POSTED}{posted.get('ts', '')}"

    async def dm(self, item: Claimed) -> str:
        user = str(item.payload["user"])
        opened = await self._call(user, "conversations_open", users=user)
        channel = str((opened.get("channel") or {}).get("id") or user)
        if item.resumed and await self._find_posted(channel, item.key):
            return "sent before"  # an earlier try got through, then its worker died
        await self._call(channel, "chat_postMessage", channel=channel, text=str(item.payload["text"]),
                         metadata={"event_type": METADATA_EVENT, "event_payload": {"key": item.key}})
        return "sent"
