"""The running service: the doors (SMTP, webhooks, IMAP, Slack), the processor and the outbox worker on one loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web as aioweb
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.intake import door_of
from bot.review import Reviewers
from bot.runtime.metrics import NO_METRICS, Metrics, MetricsEndpoint
from bot.runtime.processor import Processor
from bot.runtime.services import ReviewerDirectory, Services
from bot.runtime.slack_app import build_app, build_web, make_client
from bot.runtime.slack_outbox import SlackPerformer
from bot.runtime.worker import OutboxWorker
from bot.settings import Settings
from handlers import webhooks
from handlers.smtp import EvidenceHandler, protocol_factory, tls_context
from storage.db import make_engine
from storage.migrate import is_up_to_date, not_migrated
from storage.repo import InboundDraft
from storage.writer import GroupCommitter, Stored

if TYPE_CHECKING:
    from handlers.imap import ImapDoor

log = logging.getLogger(__name__)

DOOR_QUIET_SECONDS = 0.2  # the doors have stored nothing for this long: filing may run
FILING_MAX_DEFER_SECONDS = 10.0  # during a long burst, still file a batch this often


class Service:
    """Start with `async with Service(settings) as svc:`; `svc.smtp_port` is the bound port."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        smtp: bool = True,
        web: bool = True,
        slack_post_interval: float = 1.05,
        metrics: bool = True,
    ) -> None:
        """`metrics=False` counts nothing and serves no /metrics: the bench's baseline."""
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.want_smtp = smtp
        self.want_web = web
        self.metrics = Metrics() if metrics else NO_METRICS
        self._metrics_endpoint: MetricsEndpoint | None = None
        self.committer = GroupCommitter(self.engine)
        self.processor = Processor(self.engine, settings)
        self.slack_client = (make_client(settings, on_error=self.metrics.slack_error)
                             if settings.slack_enabled else None)
        # Slack allows about one post per second per channel; tests with a faster stand-in shorten it.
        performers = (
            SlackPerformer(self.engine, settings, self.slack_client, post_interval=slack_post_interval).performers()
            if self.slack_client
            else {}
        )
        self.worker = OutboxWorker(self.engine, settings, performers=performers, on_failure=self.metrics.outbox_failed)
        self._server: asyncio.Server | None = None
        self._web: aioweb.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._wake_processor = asyncio.Event()
        self._last_door = 0.0  # loop time a door last stored a message (see _door_quiet)
        self._stopping = asyncio.Event()
        # Each mail door beyond SMTP reports its state here for /healthz ("ok", "off", "error: …").
        self._door_health: dict[str, Callable[[], str]] = {}
        self._imap: ImapDoor | None = None

    @property
    def smtp_port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def web_port(self) -> int:
        assert self._web is not None
        return int(self._web.addresses[0][1])

    def _services(self) -> Services:
        client = self.slack_client

        async def members(group: str) -> list[str]:
            assert client is not None
            resp = await client.usergroups_users_list(usergroup=group)
            return list(resp.get("users") or [])

        directory = ReviewerDirectory(Reviewers.parse(self.settings.reviewers), members if client else None)
        return Services(self.engine, self.settings, directory, wake_outbox=self.worker.wake, metrics=self.metrics)

    async def health(self) -> dict[str, str]:
        def db() -> str:
            try:
                with self.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return "ok"
            except Exception:
                return "error"

        state = {"database": await asyncio.to_thread(db), "smtp": "ok" if self._server else "off"}
        state.update({door: report() for door, report in self._door_health.items()})
        if self._socket is not None:
            state["slack"] = "ok" if await self._socket.client.is_connected() else "error"
        else:
            state["slack"] = "ok" if self.slack_client and self.settings.slack_signing_secret else "off"
        return state

    async def _start_slack_and_web(self) -> None:
        s = self.settings
        app = build_app(self._services(), self.slack_client) if self.slack_client else None
        if self.want_web:
            web_app = build_web(app if s.slack_signing_secret else None, self.health)
            # The inbound-mail webhooks (those whose secret is set) share this app and its port.
            self._door_health.update(
                webhooks.register(web_app, settings=s, intake=self.intake, engine=self.engine))
            if self.metrics.enabled:
                self._metrics_endpoint = MetricsEndpoint(self.metrics, self.engine, token=s.metrics_token)
                web_app.router.add_get("/metrics", self._metrics_endpoint.handle)
            runner = aioweb.AppRunner(web_app, access_log=None)
            await runner.setup()
            await aioweb.TCPSite(runner, s.web_host, s.web_port).start()
            self._web = runner
            log.info("web listening on %s:%d (/healthz%s%s)", s.web_host, self.web_port,
                     ", /metrics" if self._metrics_endpoint else "",
                     ", /slack/events" if app and s.slack_signing_secret else "")
        if app is not None and s.slack_app_token:
            self._socket = AsyncSocketModeHandler(app, s.slack_app_token, web_client=self.slack_client)
            await self._socket.connect_async()
            log.info("Slack Socket Mode connected")

    async def start(self) -> None:
        # The group-commit thread and the event loop share the GIL. With CPython's default 5 ms
        # switch interval each waits up to 5 ms for the other, which adds that to every SMTP
        # answer; a 0.5 ms interval keeps the door's latency close to the disk's.
        sys.setswitchinterval(0.0005)
        if not await asyncio.to_thread(is_up_to_date, self.engine):
            raise await asyncio.to_thread(not_migrated, self.engine)
        loop = asyncio.get_running_loop()
        self.committer.start()
        self._tasks.append(loop.create_task(self._process_loop(), name="processor"))
        if self.slack_client is not None and self.slack_client.session is None:
            # One connection pool for every Web API call. Without it slack_sdk opens a session,
            # a TCP connection and (against slack.com) a TLS handshake per call, on this loop.
            self.slack_client.session = aiohttp.ClientSession()
        self._tasks.append(loop.create_task(self.worker.run(self._stopping), name="outbox-worker"))
        if self.settings.imap_enabled:
            # Imported here: a service without IMAP need not load the client (see serve's gc.freeze).
            from handlers.imap import ImapDoor

            self._imap = ImapDoor(self.settings, self.engine, self.intake)
            self._door_health["imap"] = self._imap.health
            self._imap.start()
        await self._start_slack_and_web()
        if self.want_smtp:
            s = self.settings
            handler = EvidenceHandler(addresses=s.evidence_addresses, committer=self.committer,
                                      on_stored=self._stored_by_smtp)
            tls = tls_context(str(s.smtp_tls_cert), str(s.smtp_tls_key)) if s.smtp_tls_cert else None
            # aiosmtpd would otherwise look up the machine's FQDN for every connection.
            hostname = s.smtp_hostname or await asyncio.to_thread(socket.getfqdn)
            factory = protocol_factory(handler, max_connections=s.smtp_max_connections,
                                       data_size_limit=s.max_message_bytes, hostname=hostname,
                                       tls_context=tls,
                                       max_connections_per_client=s.smtp_max_connections_per_client,
                                       idle_seconds=s.smtp_idle_seconds,
                                       messages_per_client_per_minute=s.smtp_messages_per_client_per_minute,
                                       is_trusted=s.is_trusted_client,
                                       replies=self.metrics.smtp_replies if self.metrics.enabled else None)
            self._server = await loop.create_server(factory, host=s.smtp_host, port=s.smtp_port)
            # The count, not the addresses: the log names no address (bot.runtime.logs).
            log.info("SMTP door listening on %s:%d for %d address(es)", s.smtp_host, self.smtp_port,
                     len(s.evidence_addresses))

    async def intake(self, draft: InboundDraft) -> Stored:
        """The one way in for every door: commit the raw message (group commit), then wake the parser.

        Returns only once the bytes are durable; raises StoreFailed (or anything else) if they
        are not, and the door must then answer with its "try again" (451, 503)."""
        stored = await self.committer.store(draft)
        if stored.created:
            self.metrics.message_received(door_of(draft.peer, draft.channel))
        self._stored(stored)
        return stored

    def _stored_by_smtp(self, stored: Stored) -> None:
        if stored.created:
            self.metrics.message_received("smtp")
        self._stored(stored)

    def _stored(self, stored: Stored) -> None:
        self._last_door = asyncio.get_running_loop().time()
        if stored.created:
            self._wake_processor.set()

    def _door_busy(self) -> bool:
        return asyncio.get_running_loop().time() - self._last_door < DOOR_QUIET_SECONDS

    async def _door_quiet(self) -> bool:
        """Waits while the doors are taking mail; True if it waited so long that a batch is due
        anyway. The doors come first: filing is one SQLite write transaction (and an fsync) per
        message and takes CPU, and each would hold up the doors' group commits in a burst. What
        waits is already stored; it is filed once the burst is over, or a batch every
        FILING_MAX_DEFER_SECONDS while it lasts, so a steady stream never starves the parser."""
        started = asyncio.get_running_loop().time()
        while self._door_busy() and not self._stopping.is_set():
            if asyncio.get_running_loop().time() - started > FILING_MAX_DEFER_SECONDS:
                return True
            await asyncio.sleep(DOOR_QUIET_SECONDS)
        return False

    async def _process_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake_processor.clear()
            overdue = await self._door_quiet()
            try:
                # A batch that is due anyway runs to its end; otherwise the doors' next burst
                # pauses it between messages.
                filed = await self.processor.process_pending(
                    stop=self._stopping, pause=None if overdue else self._door_busy)
            except Exception:
                log.exception("processing stored messages failed; trying again shortly")
                filed = []
            for f in filed:
                # Counted here, in the service's process, from what the worker process reported.
                self.metrics.filed(f.outcome)
                log.info("filed message %d as %s %s", f.inbound_id, f.outcome, f.reference or "",
                         extra={"reference": f.reference, "door": f.door})
            if filed:
                self.worker.wake()
            if filed or self._door_busy():  # more may wait: a full batch, or one the doors paused
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_processor.wait(), timeout=2.0)

    async def stop(self) -> None:
        if self._imap is not None:
            # First, while the committer still runs: a batch being committed finishes, and
            # nothing is moved out of the mailbox that is not committed.
            await self._imap.stop()
            self._imap = None
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close_async()
            self._socket = None
        if self._server is not None:
            self._server.close()
            # Sessions mid-DATA finish their commit before we go (committer.stop drains the queue).
        await self.committer.stop()
        # Let the loops finish the pass they are in: cancelling them would leave a worker thread
        # holding a database connection (and possibly a claimed outbox lease) behind.
        self._stopping.set()
        self._wake_processor.set()
        self.worker.wake()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=30)
            for t in pending:
                t.cancel()
            for t in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        self._tasks.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)
            self._server = None
        if self._web is not None:
            await self._web.cleanup()
            self._web = None
        if self._metrics_endpoint is not None:
            self._metrics_endpoint.close()
            self._metrics_endpoint = None
        await asyncio.to_thread(self.processor.close)
        if self.slack_client is not None and self.slack_client.session is not None:
            await self.slack_client.session.close()
        self.engine.dispose()

    async def __aenter__(self) -> Service:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve(settings: Settings, *, smtp: bool = True, web: bool = True) -> None:
    """Runs until SIGINT or SIGTERM, then stops gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Service(settings, smtp=smtp, web=web):
        # What start-up made (modules, the Slack app, SQLAlchemy's caches) lives as long as the
        # process: frozen, the collector stops re-scanning it in every full collection, which
        # otherwise lands in the middle of request bursts (slack_bench on PostgreSQL: 100
        # concurrent slash commands answered in 0.17 s before, 0.13 s after). Here and not in
        # Service.start: a test process starts many services, and freezing would keep them all.
        gc.collect()
        gc.freeze()
        await stop.wait()
        log.info("stopping")
