"""Prometheus metrics for one Service: GET /metrics on the web port.

Two kinds of figures:
- what this process did (messages received per door, SMTP replies, records filed, outbox failures,
  Slack API errors, decisions): plain ints bumped on the event loop and exported by a custom
  collector at scrape time, so the SMTP door's hot path pays a dict update, not a lock;
- what the database holds (the filing backlog's age, the outbox queue): read from the database at
  scrape time, in a thread with a short timeout, so every `serve` process reports the same figures.

Each Service has its own CollectorRegistry (a test process starts many services), with the process
and Python collectors on it. `NO_METRICS` is the do-nothing stand-in for Service(metrics=False).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import text
from sqlalchemy.engine import Engine

from storage.db import READ_ONLY

DOORS = ("smtp", "webhook", "imap", "slack", "import")
ACTIONS = ("approve", "reject", "needs_info")
DB_TIMEOUT_SECONDS = 2.0  # a scrape must answer even when the database does not


class Metrics:
    """The counters a Service bumps; every method is cheap and runs on the event loop."""

    enabled = True

    def __init__(self) -> None:
        # Pre-filled so each series exists (at 0) from the start: rate() needs a first sample.
        self.received: dict[str, int] = dict.fromkeys(DOORS, 0)
        self.smtp_replies: dict[str, int] = {}  # handlers.smtp.CappedSMTP bumps this dict itself
        self.filed_kinds: dict[str, int] = {}
        self.outbox_failures: dict[str, int] = {}
        self.slack_errors: dict[str, int] = {}
        self.decisions: dict[str, int] = dict.fromkeys(ACTIONS, 0)

    def message_received(self, door: str) -> None:
        self.received[door] = self.received.get(door, 0) + 1

    def filed(self, kind: str) -> None:
        self.filed_kinds[kind] = self.filed_kinds.get(kind, 0) + 1

    def outbox_failed(self, kind: str) -> None:
        self.outbox_failures[kind] = self.outbox_failures.get(kind, 0) + 1

    def slack_error(self, error: str) -> None:
        self.slack_errors[error] = self.slack_errors.get(error, 0) + 1

    def decided(self, action: str, count: int = 1) -> None:
        self.decisions[action] = self.decisions.get(action, 0) + count


class _NoMetrics(Metrics):
    """Service(metrics=False): nothing counted, no /metrics (the bench's baseline)."""

    enabled = False

    def message_received(self, door: str) -> None:
        pass

    def filed(self, kind: str) -> None:
        pass

    def outbox_failed(self, kind: str) -> None:
        pass

    def slack_error(self, error: str) -> None:
        pass

    def decided(self, action: str, count: int = 1) -> None:
        pass


NO_METRICS: Metrics = _NoMetrics()


def _counter(name: str, doc: str, label: str, values: dict[str, int]) -> CounterMetricFamily:
    fam = CounterMetricFamily(name, doc, labels=[label])
    for key, n in sorted(values.items()):  # a copy per item: the loop may add a key meanwhile
        fam.add_metric([key], n)
    return fam


class _ProcessCounts(Collector):
    def __init__(self, m: Metrics) -> None:
        self.m = m

    def collect(self) -> Iterable[Metric]:
        m = self.m
        yield _counter("evidence_messages_received", "Messages stored by this process, by door.",
                       "door", dict(m.received))
        yield _counter("evidence_smtp_replies", "Replies the SMTP door sent, by reply code.",
                       "code", dict(m.smtp_replies))
        yield _counter("evidence_records_filed", "Stored messages this process filed, by outcome.",
                       "kind", dict(m.filed_kinds))
        yield _counter("evidence_outbox_failures", "Failed outbox attempts (retried or given up), by kind.",
                       "kind", dict(m.outbox_failures))
        yield _counter("evidence_slack_api_errors", "Slack Web API calls that failed, by Slack's error.",
                       "error", dict(m.slack_errors))
        yield _counter("evidence_decisions", "Review decisions taken through this process, by action.",
                       "action", dict(m.decisions))


class _DatabaseFigures(Collector):
    """The backlog and the outbox queue, read at scrape time. A slow or absent database gives
    evidence_database_up 0 within DB_TIMEOUT_SECONDS rather than a hung scrape; one thread only,
    so scrapes against a hung database never pile up connections."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-db")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _query(self) -> tuple[float, dict[tuple[str, str], int]]:
        # Read-only: on SQLite a plain connection would BEGIN IMMEDIATE and take the write lock
        # the SMTP door's commits need (storage.db); this one reads a WAL snapshot beside them.
        with self.engine.execution_options(**{READ_ONLY: True}).connect() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.execute(text(f"SET statement_timeout = {int(DB_TIMEOUT_SECONDS * 1000)}"))
            # Imported mail carries its original date: it would read as a lag of years.
            oldest = conn.execute(text(
                "SELECT min(received_at) FROM inbound WHERE state = 'received' "
                "AND (peer IS NULL OR peer <> 'import')")).scalar()
            rows = conn.execute(text(
                "SELECT kind, status, count(*) FROM outbox WHERE status IN ('pending', 'sending', 'failed') "
                "GROUP BY kind, status")).all()
            conn.rollback()
        lag = 0.0
        if oldest is not None:
            if isinstance(oldest, str):  # SQLite hands back text when read without the ORM
                oldest = datetime.fromisoformat(oldest)
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            lag = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        return lag, {(str(k), str(st)): int(n) for k, st, n in rows}

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        up = GaugeMetricFamily("evidence_database_up", "1 if the database answered this scrape in time.")
        try:
            lag, outbox = self._pool.submit(self._query).result(timeout=DB_TIMEOUT_SECONDS)
        except Exception:  # FutureTimeout included: the query may still be running
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("evidence_filing_lag_seconds",
                                "Age of the oldest stored message not yet filed (0: none waiting).", value=lag)
        pending = GaugeMetricFamily("evidence_outbox_pending", "Outbox items waiting or being sent, by kind.",
                                    labels=["kind"])
        failed = GaugeMetricFamily("evidence_outbox_failed", "Outbox items given up on (status failed), by kind.",
                                   labels=["kind"])
        kinds = sorted({k for k, _ in outbox})
        for k in kinds:
            pending.add_metric([k], outbox.get((k, "pending"), 0) + outbox.get((k, "sending"), 0))
            failed.add_metric([k], outbox.get((k, "failed"), 0))
        yield pending
        yield failed
        yield GaugeMetricFamily("evidence_metrics_db_seconds", "How long this scrape's database queries took.",
                                value=time.monotonic() - started)


class MetricsEndpoint:
    """The registry for one Service and its aiohttp handler."""

    def __init__(self, metrics: Metrics, engine: Engine, *, token: str | None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_ProcessCounts(metrics))
        self._db = _DatabaseFigures(engine)
        self.registry.register(self._db)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._token = token.encode() if token else None

    def close(self) -> None:
        self._db.close()

    def _authorised(self, request: web.Request) -> bool:
        if self._token is None:
            return True
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        # Constant time: the comparison must not tell a guesser how much of the token was right.
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self._token)

    async def handle(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401, text="unauthorised\n", headers={"WWW-Authenticate": "Bearer"})
        # In a thread: the database collector waits on its query, and the loop serves SMTP.
        body = await asyncio.to_thread(generate_latest, self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
