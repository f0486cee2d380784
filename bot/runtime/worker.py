"""The outbox worker: claims queued side effects and performs them (e-mail here, Slack in slack_outbox)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable

from sqlalchemy.engine import Engine

from bot import acks
from bot.outbox_kinds import EMAIL
from bot.runtime import delivery
from bot.settings import Settings
from storage import outbox

log = logging.getLogger(__name__)

Performer = Callable[[outbox.Claimed], Awaitable[str]]


def _context(item: outbox.Claimed) -> dict[str, str | None]:
    """The log's reference key: what an item's payload names (receipts, Slack posts)."""
    ref = item.payload.get("reference")
    if ref is None:  # e-mails carry the reference in their subject: "[EV-000042] …"
        subject = str(item.payload.get("subject") or "")
        ref = subject[1:subject.find("]")] if subject.startswith("[") and "]" in subject else None
    return {"reference": ref}


class OutboxWorker:
    """Claims due items, performs them, records the result. Safe to run in several processes."""

    def __init__(
        self, engine: Engine, settings: Settings, *, poll: float = 1.0, performers: dict[str, Performer] | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.on_failure = on_failure or (lambda kind: None)  # bot.runtime.metrics: failed attempts by kind
        self.settings = settings
        self.poll = poll
        # Names the lease holder in outbox.locked_by (64 characters): a host name may be 64 on its
        # own, and PostgreSQL refused every claim of a worker whose name did not fit.
        self.worker_id = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake = asyncio.Event()
        self._performers: dict[str, Performer] = {}
        if settings.relay_url:
            # Receipts and decision notices are both plain e-mails fixed at enqueue time.
            self._performers[acks.KIND] = self._send_email
            self._performers[EMAIL] = self._send_email
        self._performers.update(performers or {})
        self._warned_queued = -1

    def wake(self) -> None:
        self._wake.set()

    async def _send_email(self, item: outbox.Claimed) -> str:
        assert self.settings.relay_url
        return await asyncio.to_thread(delivery.send, self.settings.relay_url, item.payload)

    async def run_once(self) -> int:
        """One pass over what is due; returns how many items it finished."""
        if acks.KIND not in self._performers:
            await asyncio.to_thread(self._report_queued)
        if not self._performers:
            return 0
        items = await asyncio.to_thread(
            outbox.claim_due, self.engine, worker=self.worker_id, kinds=list(self._performers)
        )
        for item in items:
            # Items wait their turn behind Slack's pacing; act only while the lease is still ours.
            if not await asyncio.to_thread(outbox.renew, self.engine, item_id=item.id, worker=self.worker_id):
                log.warning("outbox %s (%s): lease lost before acting; left to its new holder", item.id, item.key)
                continue
            try:
                result = await self._performers[item.kind](item)
            except delivery.PermanentFailure as e:
                self.on_failure(item.kind)
                log.warning("outbox %s (%s) failed for good: %s", item.id, item.key, e, extra=_context(item))
                await asyncio.to_thread(outbox.mark_failed, self.engine, item=item, worker=self.worker_id,
                                        error=str(e), permanent=True, base=self.settings.retry_base_seconds)
            except Exception as e:  # temporary: network, relay 4xx, anything unexpected
                self.on_failure(item.kind)
                log.warning("outbox %s (%s) will be retried: %s", item.id, item.key, e, extra=_context(item))
                await asyncio.to_thread(outbox.mark_failed, self.engine, item=item, worker=self.worker_id,
                                        error=str(e), base=self.settings.retry_base_seconds)
            else:
                await asyncio.to_thread(outbox.mark_done, self.engine, item_id=item.id, worker=self.worker_id,
                                        result=result)
        return len(items)

    def _report_queued(self) -> None:
        counts = outbox.count_by_status(self.engine, kind=acks.KIND)
        queued = counts.get("pending", 0)
        if queued != self._warned_queued:
            self._warned_queued = queued
            if queued:
                log.info("%d acknowledgement(s) queued; set EVIDENCE_RELAY_URL to send them", queued)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                n = await self.run_once()
            except Exception:
                log.exception("outbox pass failed; trying again shortly")
                n = 0
            if n or stopping.is_set():
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll)
