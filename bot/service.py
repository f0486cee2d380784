"""The running service: the SMTP door, the processor and the outbox worker on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web as aioweb
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.processor import Processor
from bot.review import Reviewers
from bot.services import ReviewerDirectory, Services
from bot.settings import Settings
from bot.slack_app import build_app, build_web, make_client
from bot.slack_outbox import SlackPerformer
from bot.worker import OutboxWorker
from handlers.smtp import EvidenceHandler, protocol_factory, tls_context
from storage.db import make_engine
from storage.migrate import NotMigrated, is_up_to_date
from storage.repo import InboundDraft
from storage.writer import GroupCommitter, Stored

log = logging.getLogger(__name__)


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
    ) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.want_smtp = smtp
        self.want_web = web
        self.committer = GroupCommitter(self.engine)
        self.processor = Processor(self.engine, settings)
        self.slack_client = make_client(settings) if settings.slack_enabled else None
        # Slack allows about one post per second per channel; tests with a faster stand-in shorten it.
        performers = (
            SlackPerformer(self.engine, settings, self.slack_client, post_interval=slack_post_interval).performers()
            if self.slack_client
            else {}
        )
        self.worker = OutboxWorker(self.engine, settings, performers=performers)
        self._server: asyncio.Server | None = None
        self._web: aioweb.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._wake_processor = asyncio.Event()
        self._stopping = asyncio.Event()
        # Each mail door beyond SMTP reports its state here for /healthz ("ok", "off", "error: …").
        self._door_health: dict[str, Callable[[], str]] = {}

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
        return Services(self.engine, self.settings, directory, wake_outbox=self.worker.wake)

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
            runner = aioweb.AppRunner(build_web(app if s.slack_signing_secret else None, self.health),
                                   access_log=None)
            await runner.setup()
            await aioweb.TCPSite(runner, s.web_host, s.web_port).start()
            self._web = runner
            log.info("web listening on %s:%d (/healthz%s)", s.web_host, self.web_port,
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
            raise NotMigrated("the database is not migrated; run: evidence-bot db upgrade")
        loop = asyncio.get_running_loop()
        self.committer.start()
        self._tasks.append(loop.create_task(self._process_loop(), name="processor"))
        if self.slack_client is not None and self.slack_client.session is None:
            # One connection pool for every Web API call. Without it slack_sdk opens a session,
            # a TCP connection and (against slack.com) a TLS handshake per call, on this loop.
            self.slack_client.session = aiohttp.ClientSession()
        self._tasks.append(loop.create_task(self.worker.run(self._stopping), name="outbox-worker"))
        await self._start_slack_and_web()
        if self.want_smtp:
            s = self.settings
            handler = EvidenceHandler(addresses=s.evidence_addresses, committer=self.committer,
                                      on_stored=self._stored)
            tls = tls_context(str(s.smtp_tls_cert), str(s.smtp_tls_key)) if s.smtp_tls_cert else None
            # aiosmtpd would otherwise look up the machine's FQDN for every connection.
            hostname = s.smtp_hostname or await asyncio.to_thread(socket.getfqdn)
            factory = protocol_factory(handler, max_connections=s.smtp_max_connections,
                                       data_size_limit=s.max_message_bytes, hostname=hostname,
                                       tls_context=tls)
            self._server = await loop.create_server(factory, host=s.smtp_host, port=s.smtp_port)
            log.info("SMTP door listening on %s:%d for %s", s.smtp_host, self.smtp_port,
                     ", ".join(s.evidence_addresses))

    async def intake(self, draft: InboundDraft) -> Stored:
        """The one way in for every door: commit the raw message (group commit), then wake the parser.

        Returns only once the bytes are durable; raises StoreFailed (or anything else) if they
        are not, and the door must then answer with its "try again" (451, 503)."""
        stored = await self.committer.store(draft)
        self._stored(stored)
        return stored

    def _stored(self, stored: Stored) -> None:
        if stored.created:
            self._wake_processor.set()

    async def _process_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake_processor.clear()
            try:
                filed = await self.processor.process_pending(stop=self._stopping)
            except Exception:
                log.exception("processing stored messages failed; trying again shortly")
                filed = []
            for f in filed:
                log.info("filed message %d as %s %s", f.inbound_id, f.outcome, f.reference or "")
            if filed:
                self.worker.wake()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_processor.wait(), timeout=2.0)

    async def stop(self) -> None:
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
