"""The outbox worker's name fits the lease column on a host with a long name.

`outbox.locked_by` holds 64 characters; a Linux host name may be 64 on its own. PostgreSQL
refused the claim of a worker named host:pid:id, so no receipt or Slack post ever went out.
"""

from __future__ import annotations

import socket

import pytest
from sqlalchemy.engine import Engine

from bot.runtime.worker import OutboxWorker
from bot.settings import Settings
from storage import outbox
from storage.db import unit_of_work


def test_a_worker_on_a_host_with_a_64_character_name_can_claim(
        engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "h" * 64)
    worker = OutboxWorker(engine, settings)
    other = OutboxWorker(engine, settings)
    assert len(worker.worker_id) <= 64 and worker.worker_id != other.worker_id  # leases stay apart
    with unit_of_work(engine) as s:
        outbox.enqueue(s, key="test:long-host", kind="test", payload={})
    claimed = outbox.claim_due(engine, worker=worker.worker_id, kinds=["test"])
    assert [c.key for c in claimed] == ["test:long-host"]
    assert outbox.claim_due(engine, worker=other.worker_id, kinds=["test"]) == []  # leased
