"""The IMAP reader: an async loop on the service's event loop, each IMAP step in a thread.

One pass: SELECT the folder, UID SEARCH ALL (UIDs only), then in chunks: RFC822.SIZE, each
body fetched one at a time, a small batch committed together through `Service.intake` (one
group commit), the position saved, the batch moved with one command. Memory holds one batch
(at most BATCH_BYTES plus one message), whatever the folder's size. Between passes it waits
with IDLE (re-issued every IDLE_SECONDS) or polls every EVIDENCE_IMAP_POLL_SECONDS; on any
failure it reconnects after a backoff that doubles from BACKOFF_FIRST to BACKOFF_MAX.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr

from imapclient.exceptions import IMAPClientError, LoginError
from sqlalchemy.engine import Engine

from bot.drafts import draft, header_block
from bot.settings import Settings
from handlers.imap import position
from handlers.imap.client import Credentials, ImapProblem, ImapTarget, Mailbox, close, connect
from storage.repo import InboundDraft
from storage.writer import Stored

log = logging.getLogger(__name__)

SIZES_PER_FETCH = 200  # UIDs whose sizes one FETCH asks for
BATCH_MESSAGES = 20  # committed together (one group commit), then moved with one command
BATCH_BYTES = 8 * 1024 * 1024
PROGRESS_EVERY = 500
# RFC 2177: servers may drop an IDLE after 30 minutes. Shorter still, because the window between
# the NOOP before IDLE and the IDLE itself can hide an arrival, until the next pass finds it.
IDLE_SECONDS = 5 * 60
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
TOO_LARGE = "Too-large"


class ImapDoor:
    """`start()` on the service's loop, `health()` for /healthz, `await stop()` before the committer stops."""

    def __init__(
        self, settings: Settings, engine: Engine, intake: Callable[[InboundDraft], Awaitable[Stored]]
    ) -> None:
        assert settings.imap_url
        self.settings = settings
        self.engine = engine
        self.target = ImapTarget.from_url(settings.imap_url)
        self.creds = Credentials(settings.imap_password, settings.imap_oauth2_token_command)
        self._intake = intake
        self._state = "error: not connected yet"
        self._stop = threading.Event()  # read by the IMAP threads
        self._stop_async = asyncio.Event()
        self._mailbox: Mailbox | None = None
        self._task: asyncio.Task[None] | None = None
        self._addresses = set(settings.evidence_addresses)

    def health(self) -> str:
        return self._state

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="imap-reader")

    async def stop(self) -> None:
        self._stop.set()
        self._stop_async.set()
        if self._mailbox is not None:
            self._mailbox.wake()
        if self._task is not None:
            _, pending = await asyncio.wait({self._task}, timeout=30)
            for t in pending:
                t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        t = self.target
        delay = BACKOFF_FIRST
        while not self._stop.is_set():
            client = None
            try:
                client = await asyncio.to_thread(connect, t, self.creds)
                mailbox = Mailbox(client, t.folder, self.settings.imap_done_folder)
                self._mailbox = mailbox
                await asyncio.to_thread(mailbox.ensure_folder, mailbox.done)
                self._state = "ok"
                log.info("IMAP reader logged in to %s:%d, folder %s (%s, %s)", t.host, t.port, t.folder,
                         "IDLE" if mailbox.has_idle else f"polling every {self.settings.imap_poll_seconds:g} s",
                         "MOVE" if mailbox.has_move else "COPY and expunge")
                while not self._stop.is_set():
                    taken = await self._drain(mailbox)
                    self._state = "ok"
                    delay = BACKOFF_FIRST  # a whole pass worked: the next failure starts afresh
                    if not taken:
                        # Only once a SELECT found the folder empty. Mail that came during a pass
                        # may have been announced in an answer we don't read (UID SEARCH, MOVE),
                        # and IDLE would then not announce it again; after SELECT it will.
                        await self._wait(mailbox)
            except Exception as exc:
                if self._stop.is_set():
                    break
                self._state = "error: " + self._describe(exc)
                if isinstance(exc, IMAPClientError | OSError | ImapProblem):
                    log.warning("IMAP reader: %s; trying again in %.1f s", self._state[7:], delay)
                else:
                    log.exception("IMAP reader failed; trying again in %.1f s", delay)
            finally:
                self._mailbox = None
                if client is not None:
                    await asyncio.to_thread(close, client)
            if self._stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_async.wait(), timeout=delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _wait(self, mailbox: Mailbox) -> None:
        if mailbox.has_idle:
            await asyncio.to_thread(mailbox.wait, IDLE_SECONDS, self._stop)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_async.wait(), timeout=self.settings.imap_poll_seconds)

    async def _drain(self, mb: Mailbox) -> int:
        """One pass: takes every message in the folder, oldest first; how many it took."""
        # SELECT again each pass: it shows what arrived meanwhile and a changed UIDVALIDITY.
        uidvalidity, exists = await asyncio.to_thread(mb.select)
        if not exists:
            return 0
        last = await asyncio.to_thread(position.load, self.engine, self.target.mailbox_key, uidvalidity)
        uids = await asyncio.to_thread(mb.uids)
        if not uids:
            return 0
        counts = {"new": 0, "known": 0, "large": 0}
        log.info("IMAP folder %s: %d message(s) to take", mb.folder, len(uids))
        reported = 0
        for i in range(0, len(uids), SIZES_PER_FETCH):
            if self._stop.is_set():
                return 0
            chunk = uids[i:i + SIZES_PER_FETCH]
            sizes = await asyncio.to_thread(mb.sizes, chunk)
            big = [u for u in chunk if sizes.get(u, 0) > self.settings.max_message_bytes]
            if big:
                await self._set_aside(mb, big, sizes)
                counts["large"] += len(big)
            # At or below the position: committed before a crash or a failed move. Move only.
            again = [u for u in chunk if u in sizes and u <= last and u not in big]
            if again:
                await asyncio.to_thread(mb.move, again, mb.done)
                counts["known"] += len(again)
            batch: list[int] = []
            size = 0
            for u in (u for u in chunk if u in sizes and u > last and u not in big):
                batch.append(u)
                size += sizes[u]
                if len(batch) >= BATCH_MESSAGES or size >= BATCH_BYTES:
                    await self._take(mb, batch, uidvalidity, counts)
                    batch, size = [], 0
            if batch:
                await self._take(mb, batch, uidvalidity, counts)
            done = sum(counts.values())
            if done - reported >= PROGRESS_EVERY:
                reported = done
                log.info("IMAP folder %s: %d of %d taken (%d new, %d already stored, %d too large)",
                         mb.folder, done, len(uids), counts["new"], counts["known"], counts["large"])
        log.info("IMAP folder %s: %d message(s) taken (%d new, %d already stored, %d too large), moved to %s",
                 mb.folder, sum(counts.values()), counts["new"], counts["known"], counts["large"], mb.done)
        return sum(counts.values())

    async def _take(self, mb: Mailbox, uids: list[int], uidvalidity: int, counts: dict[str, int]) -> None:
        """Fetch each, commit the batch, save the position, and only then move the batch."""
        fetched: list[tuple[int, InboundDraft]] = []
        for u in uids:
            if self._stop.is_set():
                return  # nothing of this batch is committed yet: it stays in the folder
            d = await asyncio.to_thread(self._fetch_draft, mb, u)
            if d is not None:
                fetched.append((u, d))
        # Concurrently, so the group committer stores the batch in one transaction (one fsync).
        stored = await asyncio.gather(*(self._intake(d) for _, d in fetched))
        await asyncio.to_thread(position.save, self.engine, self.target.mailbox_key, uidvalidity, max(uids))
        await asyncio.to_thread(mb.move, [u for u, _ in fetched], mb.done)
        new = sum(1 for s in stored if s.created)
        counts["new"] += new
        counts["known"] += len(stored) - new

    async def _set_aside(self, mb: Mailbox, uids: list[int], sizes: dict[int, int]) -> None:
        folder = await asyncio.to_thread(mb.subfolder, mb.done, TOO_LARGE)
        await asyncio.to_thread(mb.ensure_folder, folder)
        await asyncio.to_thread(mb.move, uids, folder)
        for u in uids:
            log.warning("IMAP message UID %d is %d bytes, over EVIDENCE_MAX_MESSAGE_BYTES (%d): not stored, "
                        "moved to %s", u, sizes[u], self.settings.max_message_bytes, folder)

    # ------------------------------------------------------------------ one message

    def _fetch_draft(self, mb: Mailbox, uid: int) -> InboundDraft | None:
        """In a thread: the body, and the draft with its dedupe key (hashing 25 MB takes a while)."""
        raw = mb.body(uid)
        if raw is None:
            return None
        envelope_from, rcpts = self._envelope(raw)
        return draft(raw, envelope_from=envelope_from, rcpts=rcpts, peer=f"imap:{self.target.host}")

    def _envelope(self, raw: bytes) -> tuple[str | None, list[str]]:
        """The sender from Return-Path ("" for a bounce's <>), and which of our addresses it was for."""
        head = BytesHeaderParser(policy=compat32).parsebytes(header_block(raw) + b"\n\n")
        rp = head.get("Return-Path")
        sender: str | None = None
        if rp is not None:
            sender = "" if str(rp).strip() in ("<>", "") else (parseaddr(str(rp))[1] or None)
        seen = [a.lower() for _, a in getaddresses([str(v) for h in ("Delivered-To", "X-Original-To", "To", "Cc")
                                                    for v in head.get_all(h) or []])]
        ours = [a for a in dict.fromkeys(seen) if a in self._addresses]
        if ours:
            return sender, ours
        owner = self.target.user.lower()
        return sender, [owner if "@" in owner else self.settings.evidence_addresses[0]]

    # ------------------------------------------------------------------ reporting

    def _describe(self, exc: BaseException) -> str:
        """One line for /healthz and the log: never the password, the token or the account name."""
        t = self.target
        said = str(exc)
        if said[:2] in ("b'", 'b"'):  # imaplib's answers arrive as repr(bytes)
            said = said[2:-1]
        if isinstance(exc, LoginError):
            text = f"login refused by {t.host} ({said})"
        elif isinstance(exc, ImapProblem):
            text = str(exc)
        elif isinstance(exc, ssl.SSLError):
            text = f"TLS with {t.host}:{t.port} failed ({exc.reason or exc})"
        elif isinstance(exc, TimeoutError | socket.timeout):
            text = f"no answer from {t.host}:{t.port}"
        elif isinstance(exc, OSError):
            text = f"cannot reach {t.host}:{t.port} ({exc.strerror or type(exc).__name__})"
        elif isinstance(exc, IMAPClientError):
            text = f"IMAP error from {t.host} ({said})"
        else:
            text = f"{type(exc).__name__} while reading {t.folder}"
        for secret in [*self.creds.secrets(), t.user]:
            text = text.replace(secret, "***")
        return text[:300]
