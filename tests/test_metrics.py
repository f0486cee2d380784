"""GET /metrics: the counts after real mail (SMTP and a webhook), a Slack decision, a Slack API
error and outbox failures, from a Service running against FakeSlack and a relay that refuses."""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from bot.runtime.metrics import Metrics, MetricsEndpoint
from bot.runtime.service import Service
from storage.db import unit_of_work
from storage.models import Inbound, utcnow
from storage.outbox import enqueue
from tests.conftest import make_settings
from tests.support.sink import Sink
from tests.support.slack_api import FakeSlack
from tests.support.slack_requests import block_action_payload, interaction_body, post_signed
from tests.test_slack_flows import REVIEW, REVIEWER, SECRET, wait_until
from tests.test_webhooks import SECRET as WEBHOOK_SECRET
from tests.test_webhooks import raw_headers

TOKEN = "metrics-token-0123456789"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def evidence(i: int) -> bytes:
    m = EmailMessage()
    m["From"] = f"Witness {i} <witness{i}@example.org>"
    m["To"] = "evidence@example.org"
    m["Subject"] = f"Evidence: payroll {i}"
    m["Message-ID"] = f"<metrics-{i}-{time.monotonic_ns()}@example.org>"
    m.set_content(f"Project: Payroll {i}\nSupplier: Capita\n\nStaff were paid late for months.\n")
    return bytes(m)


def smtp_send(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        for i in (1, 2):
            c.sendmail(f"witness{i}@example.org", ["evidence@example.org"], evidence(i))
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            c.sendmail("x@example.org", ["someone@elsewhere.example"], evidence(3))


class Running:
    def __init__(self, svc: Service, slack: FakeSlack, sink: Sink) -> None:
        self.svc, self.slack, self.sink = svc, slack, sink

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.svc.web_port}"

    async def scrape(self, token: str | None = TOKEN) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession() as http, http.get(f"{self.base}/metrics", headers=headers) as r:
            return r.status, await r.text()


@pytest.fixture
async def running(db_url: str) -> AsyncIterator[Running]:
    async with FakeSlack(post_interval=0) as slack:
        with Sink() as sink:
            sink.fail("451 4.3.0 relay busy, try later")  # every receipt fails and waits its retry
            settings = make_settings(db_url, SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET=SECRET,
                                     SLACK_API_URL=slack.api_url, EVIDENCE_REVIEW_CHANNEL=REVIEW,
                                     EVIDENCE_REVIEWERS=REVIEWER, EVIDENCE_RELAY_URL=sink.url,
                                     EVIDENCE_METRICS_TOKEN=TOKEN, EVIDENCE_RETRY_BASE_SECONDS=0.05,
                                     EVIDENCE_INBOUND_SECRET=WEBHOOK_SECRET)
            async with Service(settings, slack_post_interval=0) as svc:
                yield Running(svc, slack, sink)


async def test_counts_after_mail_a_decision_and_failures(running: Running) -> None:
    r = running
    r.slack.fail_next("chat.postMessage", 500)  # the first summary fails once, then goes through
    await asyncio.to_thread(smtp_send, r.svc.smtp_port)
    raw = evidence(4)
    async with aiohttp.ClientSession() as http, http.post(f"{r.base}/inbound/raw", data=raw,
                                                          headers=raw_headers(raw)) as resp:
        assert resp.status == 200, await resp.text()
    posted = await wait_until(lambda: len(r.slack.posted_messages(REVIEW)) >= 3 and r.slack.posted_messages(REVIEW),
                              timeout=20, what="three summaries")
    summary = posted[0]
    ref = next(e["value"] for b in summary["blocks"] if b["type"] == "actions" for e in b["elements"]
               if e["action_id"] == "review_approve")
    status, _ = await post_signed(f"{r.base}/slack/events", interaction_body(block_action_payload(
        "review_approve", ref, user_id=REVIEWER, channel_id=REVIEW, message_ts=summary["ts"])), SECRET)
    assert status == 200
    await wait_until(lambda: r.svc.metrics.decisions["approve"] == 1, what="the decision")
    await r.slack.wait_for_calls("chat.update", timeout=10)

    assert (await r.scrape(None))[0] == 401
    assert (await r.scrape("wrong-token"))[0] == 401
    status, text = await r.scrape()
    assert status == 200
    m = parse(text)
    assert value(m, "evidence_messages_received_total", door="smtp") == 2
    assert value(m, "evidence_messages_received_total", door="webhook") == 1
    assert value(m, "evidence_messages_received_total", door="imap") == 0  # present from the start
    assert value(m, "evidence_smtp_replies_total", code="220") == 1
    assert value(m, "evidence_smtp_replies_total", code="550") == 1
    assert value(m, "evidence_smtp_replies_total", code="354") == 2
    # EHLO, 2 x (MAIL, RCPT, DATA), MAIL, RSET after the refusal: a multi-line EHLO counts once.
    assert value(m, "evidence_smtp_replies_total", code="250") == 1 + 2 * 3 + 2
    assert value(m, "evidence_records_filed_total", kind="evidence") == 3
    assert value(m, "evidence_decisions_total", action="approve") == 1
    assert value(m, "evidence_decisions_total", action="reject") == 0
    assert value(m, "evidence_slack_api_errors_total", error="fatal_error") == 1
    assert value(m, "evidence_outbox_failures_total", kind="slack_summary") == 1
    assert value(m, "evidence_outbox_failures_total", kind="ack_email") >= 3
    assert value(m, "evidence_outbox_pending", kind="ack_email") == 3  # the relay keeps refusing
    assert value(m, "evidence_filing_lag_seconds") == 0
    assert value(m, "evidence_database_up") == 1
    assert value(m, "process_resident_memory_bytes") > 0
    assert any(name == "python_info" for name, _ in m)
    assert "witness" not in text and "@" not in text  # labels are kinds and codes, never people


async def test_two_services_count_apart(db_url: str) -> None:
    """Each Service has its own registry: a test process (or a bench) can run several."""
    s = make_settings(db_url)
    async with Service(s, smtp=True) as a, Service(s, smtp=False) as b:
        await asyncio.to_thread(lambda: smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=5).quit())
        async with aiohttp.ClientSession() as http:
            texts = []
            for svc in (a, b):
                async with http.get(f"http://127.0.0.1:{svc.web_port}/metrics") as resp:
                    assert resp.status == 200  # no token set: open
                    texts.append(parse(await resp.text()))
    assert value(texts[0], "evidence_smtp_replies_total", code="221") == 1
    assert value(texts[1], "evidence_smtp_replies_total", code="221") == 0


async def test_no_metrics_means_no_endpoint(db_url: str) -> None:
    async with Service(make_settings(db_url), smtp=False, metrics=False) as svc:
        url = f"http://127.0.0.1:{svc.web_port}/metrics"
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert resp.status == 404


def test_backlog_and_outbox_come_from_the_database(engine: Engine) -> None:
    now = utcnow()
    with unit_of_work(engine) as s:
        for i, (peer, age) in enumerate([("127.0.0.1", 90), ("import", 86400 * 400), ("webhook:raw", 30)]):
            s.add(Inbound(dedupe_key=f"k{i}", raw=b"x", peer=peer, received_at=now - timedelta(seconds=age)))
        enqueue(s, key="a", kind="ack_email", payload={})
        enqueue(s, key="b", kind="slack_summary", payload={})
        enqueue(s, key="c", kind="slack_summary", payload={})
    endpoint = MetricsEndpoint(Metrics(), engine, token=None)
    try:
        from prometheus_client import generate_latest

        m = parse(generate_latest(endpoint.registry).decode())
    finally:
        endpoint.close()
    # The oldest waiting message that arrived through a door; imported mail keeps its old date.
    assert 90 <= value(m, "evidence_filing_lag_seconds") < 120
    assert value(m, "evidence_outbox_pending", kind="ack_email") == 1
    assert value(m, "evidence_outbox_pending", kind="slack_summary") == 2


def test_an_unreachable_database_answers_quickly() -> None:
    from prometheus_client import generate_latest

    from storage.db import make_engine

    engine = make_engine("postgresql+psycopg://nobody@192.0.2.1:5432/x", connect_args={"connect_timeout": 30})
    endpoint = MetricsEndpoint(Metrics(), engine, token=None)
    started = time.monotonic()
    try:
        m = parse(generate_latest(endpoint.registry).decode())
    finally:
        endpoint.close()
        engine.dispose()
    assert time.monotonic() - started < 4
    assert value(m, "evidence_database_up") == 0
    assert value(m, "evidence_messages_received_total", door="smtp") == 0  # the rest is still there
