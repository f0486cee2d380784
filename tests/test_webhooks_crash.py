"""The webhook door's crash test: a `serve` process killed with SIGKILL right after a 200.

Signed messages stream into /inbound/raw from several clients; the process is killed the moment
a 200 has come back, with others in flight. After a restart every message that got 200 must be
stored once and filed into a submission with a reference. A request that got no answer may or
may not be stored (the provider retries it); only the ones that were promised count.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from storage.db import make_engine, unit_of_work
from storage.models import Inbound, Submission
from tests.support.sink import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SECRET = "crash-test-secret"


class WebServe:
    """`python -m bot serve --no-smtp` with the raw webhook on, in its own process group."""

    def __init__(self, db_url: str, log: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": db_url,
            "PORT": str(self.port),
            "EVIDENCE_WEB_HOST": "127.0.0.1",
            "EVIDENCE_INBOUND_SECRET": SECRET,
            "EVIDENCE_ADDRESSES": "evidence@localhost",
            "EVIDENCE_LOG_LEVEL": "INFO",
        }
        with open(log, "ab") as err:
            # cwd outside the repo so a developer's .env cannot leak into the test.
            self.proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--no-smtp"], env=env,
                                         cwd=log.parent, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         start_new_session=True)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                try:
                    c.request("GET", "/healthz")
                    if c.getresponse().status == 200:
                        return
                finally:
                    c.close()
            time.sleep(0.05)
        raise AssertionError("serve did not answer /healthz in time")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def message(i: int) -> tuple[str, bytes]:
    mid = f"<hook-crash-{i}-{os.getpid()}@example.org>"
    m = EmailMessage()
    m["From"] = f"Witness {i} <witness{i}@example.org>"
    m["To"] = "evidence@localhost"
    m["Subject"] = f"Evidence: shared payroll service {i}"
    m["Message-ID"] = mid
    m.set_content(f"Project: Payroll {i}\nPublic body: Exampleton Borough Council\nSupplier: Example Services Ltd\n"
                  "Contract value: £2m\nOutcome: Success\n\nThe service improved after the move.\n")
    return mid, bytes(m)


def post_one(port: int, i: int) -> str | None:
    """The Message-ID if the door answered 200; None for any failure (refused, reset, no answer)."""
    mid, raw = message(i)
    ts = str(int(time.time()))
    sig = hmac.new(SECRET.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        c.request("POST", "/inbound/raw", body=raw, headers={
            "Content-Type": "message/rfc822", "X-Evidence-Timestamp": ts, "X-Evidence-Signature": f"sha256={sig}",
            "X-Evidence-Recipient": "evidence@localhost", "X-Evidence-Envelope-From": f"witness{i}@example.org"})
        return mid if c.getresponse().status == 200 else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        c.close()


@pytest.fixture
def procs() -> Iterator[list[WebServe]]:
    started: list[WebServe] = []
    yield started
    for p in started:  # leftovers after a failure: kill only the processes we started
        with contextlib.suppress(Exception):
            p.kill()


def test_sigkill_right_after_a_200_loses_no_accepted_message(db_url: str, tmp_path: Path,
                                                            procs: list[WebServe]) -> None:
    log = tmp_path / "serve.stderr"
    first = WebServe(db_url, log)
    procs.append(first)
    first.wait_ready()
    accepted: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()
    todo = iter(range(2000))

    def client() -> None:
        while not killed.is_set():
            with lock:
                i = next(todo, None)
            if i is None:
                return
            mid = post_one(first.port, i)
            if mid is None:
                continue
            with lock:
                accepted.append(mid)
                if len(accepted) >= 40 and not killed.is_set():
                    first.kill()  # right after this 200, with the other clients mid-request
                    killed.set()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert killed.is_set(), f"only {len(accepted)} accepted before the clients finished"

    engine = make_engine(db_url)
    try:
        again = WebServe(db_url, log)
        procs.append(again)
        again.wait_ready()
        deadline = time.monotonic() + 60
        while True:
            with unit_of_work(engine) as s:
                pending = s.execute(select(func.count()).select_from(Inbound)
                                    .where(col(Inbound.state) == "received")).scalar_one()
            if pending == 0:
                break
            assert time.monotonic() < deadline, f"{pending} stored message(s) not filed after the restart"
            time.sleep(0.1)
        again.kill()
        with unit_of_work(engine) as s:
            rows = s.execute(select(col(Inbound.message_id), col(Inbound.peer), col(Submission.reference))
                             .join(Submission, col(Submission.inbound_id) == col(Inbound.id), isouter=True)).all()
    finally:
        engine.dispose()
    by_mid: dict[str | None, list[tuple[str | None, str | None]]] = {}
    for mid, peer, ref in rows:
        by_mid.setdefault(mid, []).append((peer, ref))
    missing = [m for m in accepted if m not in by_mid]
    assert not missing, f"{len(missing)} message(s) got 200 but are not stored: {missing[:5]}"
    for mid in accepted:
        ((peer, ref),) = by_mid[mid]  # stored once, filed once
        assert peer == "webhook:raw" and ref and ref.startswith("EV-"), (mid, peer, ref)
    assert len({ref for _, _, ref in rows}) == len(rows)  # one reference per stored message
