"""Who really sent it, end to end: smtplib -> the SMTP door -> the processor's sender check ->
the record, its acknowledgement (or none), the Slack summary and the CSV export, on both databases."""

from __future__ import annotations

import asyncio
import csv
import io
import smtplib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot import pack
from bot.convert import record_from_submission
from bot.runtime.service import Service
from handlers.slack.blocks import summary_blocks
from storage.db import unit_of_work
from storage.models import Inbound, OutboxItem, Submission
from tests.conftest import make_settings
from tests.support.dkim_keys import publish, sign
from tests.support.dns_server import DnsServer
from tests.support.sink import Sink
from tests.support.waiting import wait_for
from tests.test_sender_check import TRUSTED, message
from tests.test_smtp_door import count

ACK = col(OutboxItem.kind) == "ack_email"


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer() as d:
        publish(d, "kent.gov.uk")
        yield d


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as s:
        yield s


@pytest.fixture
async def service(db_url: str, dns: DnsServer, sink: Sink) -> AsyncIterator[Service]:
    settings = make_settings(db_url, EVIDENCE_RELAY_URL=sink.url, EVIDENCE_DNS_SERVERS=dns.address,
                             EVIDENCE_TRUSTED_AUTHSERV_IDS=TRUSTED)
    async with Service(settings) as svc:
        yield svc


async def send(port: int, raw: bytes, *, sender: str, source: str = "127.0.0.1") -> Any:
    """`source` 127.0.0.2 is an untrusted client inside kent.gov.uk's SPF range (127.0.0.0/8);
    127.0.0.1 is the service's own relay, which SPF does not judge."""
    def _go() -> Any:
        with smtplib.SMTP("127.0.0.1", port, timeout=30, local_hostname="mx.kent.gov.uk",
                          source_address=(source, 0)) as c:
            return c.sendmail(sender, ["evidence@localhost"], raw)

    return await asyncio.to_thread(_go)


def filed(svc: Service) -> Submission | None:
    with unit_of_work(svc.engine) as s:
        return s.execute(select(Submission)).scalar_one_or_none()


async def test_verified_sender_end_to_end(service: Service, sink: Sink) -> None:
    assert await send(service.smtp_port, sign(message(), "kent.gov.uk"), sender="ann@kent.gov.uk",
                      source="127.0.0.2") == {}
    sub = await wait_for(lambda: filed(service))
    with unit_of_work(service.engine) as s:
        inbound = s.execute(select(Inbound)).scalar_one()
    assert (inbound.peer, inbound.helo) == ("127.0.0.2", "mx.kent.gov.uk")
    rec = record_from_submission(sub)
    assert rec.to_json()["authenticity"] == {"spf": "pass", "dkim": "pass", "dmarc": "pass",
                                             "from_domain": "kent.gov.uk", "verdict": "verified"}
    _, blocks = summary_blocks(rec)
    assert any(e["text"] == ":white_check_mark: Sender verified: kent.gov.uk"
               for b in blocks if b["type"] == "context" for e in b["elements"])
    rows = list(csv.DictReader(io.StringIO(pack.render(pack.collect(service.engine, status=None,
                                                                    settings=service.settings), "csv"))))
    assert [r["authenticity"] for r in rows] == ["verified"]
    await wait_for(lambda: len(sink.messages) == 1)  # a real sender gets the receipt


async def test_forged_from_under_p_reject_is_failed_and_not_acknowledged(service: Service, sink: Sink) -> None:
    # Unsigned, and the envelope is the forger's own: nothing aligns with kent.gov.uk.
    assert await send(service.smtp_port, message(), sender="x@forger.example", source="127.0.0.2") == {}
    sub = await wait_for(lambda: filed(service))
    auth = record_from_submission(sub).authenticity
    assert auth is not None and (auth["dmarc"], auth["verdict"]) == ("fail", "failed")
    assert sub.reference == "EV-000001" and sub.status == "received"  # the reviewer still decides
    assert count(service.engine, OutboxItem, ACK) == 0
    with unit_of_work(service.engine) as s:
        summaries = s.execute(select(OutboxItem).where(col(OutboxItem.kind) == "slack_summary")).scalars().all()
    assert len(summaries) == 1
    assert sink.messages == []


async def test_body_altered_after_signing_is_failed(service: Service) -> None:
    raw = sign(message(), "kent.gov.uk").replace(b"improved", b"collapsed")
    await send(service.smtp_port, raw, sender="ann@kent.gov.uk")
    sub = await wait_for(lambda: filed(service))
    auth = record_from_submission(sub).authenticity
    assert auth is not None and (auth["spf"], auth["dkim"], auth["verdict"]) == ("none", "fail", "failed")
    assert count(service.engine, OutboxItem, ACK) == 0


async def test_dns_timeout_still_stores_and_files_promptly(service: Service, dns: DnsServer) -> None:
    publish(dns, "slow.example")
    dns.silent.update({"sel._domainkey.slow.example", "_dmarc.slow.example"})
    start = time.monotonic()
    reply = await send(service.smtp_port, sign(message("ann@slow.example"), "slow.example"),
                       sender="ann@slow.example")
    assert reply == {} and time.monotonic() - start < 2  # the door answered without waiting for DNS
    sub = await wait_for(lambda: filed(service))
    # Two silent look-ups of 2 s each inside a 5 s budget, plus starting the worker process.
    assert time.monotonic() - start < 15
    auth = record_from_submission(sub).authenticity
    assert auth is not None and (auth["dkim"], auth["dmarc"], auth["verdict"]) == (
        "temperror", "temperror", "unverified")


async def test_authentication_results_trusted_and_untrusted(service: Service) -> None:
    claim = "spf=pass smtp.mailfrom=ann@kent.gov.uk; dkim=pass header.d=kent.gov.uk; dmarc=pass header.from=kent.gov.uk"
    forged = message("ann@kent.gov.uk", ("Authentication-Results", f"mx.attacker.example; {claim}"))
    await send(service.smtp_port, forged, sender="ann@kent.gov.uk")
    sub = await wait_for(lambda: filed(service))
    rec = record_from_submission(sub)
    assert rec.authenticity is not None and rec.authenticity["verdict"] == "failed"
    # Nothing a reviewer reads carries the forged header.
    shown = str(rec.to_json()) + str(summary_blocks(rec)[1])
    assert "mx.attacker.example" not in shown and "Authentication-Results" not in shown

    trusted = message("ann@kent.gov.uk", ("Authentication-Results", f"{TRUSTED}; {claim}")).replace(
        b"<m1@kent.gov.uk>", b"<m2@kent.gov.uk>")
    await send(service.smtp_port, trusted, sender="ann@kent.gov.uk")  # from the relay, a trusted client

    def second() -> Submission | None:
        with unit_of_work(service.engine) as s:
            return s.execute(select(Submission).where(col(Submission.reference) == "EV-000002")).scalar_one_or_none()

    sub2 = await wait_for(second)
    assert (record_from_submission(sub2).authenticity or {}).get("verdict") == "verified"
