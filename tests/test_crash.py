"""The crash test: a `serve` process killed with SIGKILL mid-stream, then restarted.

Every message that got 250 must be in the store, parsed into a submission with a reference, and
acknowledged exactly once; nothing may be left pending. A message whose DATA got no answer may
or may not be stored (the sender will retry it); only the ones that were promised count.

The relay is a Sink that can *hold* an acknowledgement in its DATA phase. Each kill is timed to
land while the relay holds one: the ack's sender is then still waiting for 250, so the ack was
not delivered and must go out once after the restart. (A kill in the few milliseconds between
the relay's 250 and the outbox's `done` commit would resend that ack: SMTP delivery is
at-least-once there, and only the relay can dedupe on the fixed ack Message-ID. We check that
a resend would carry the same Message-ID, but we don't aim the kill at that window.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from bot import acks
from storage.db import make_engine, unit_of_work
from storage.models import Inbound, OutboxItem, Submission
from tests.support.sink import Sink, _Handler, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# Other effects (Slack posts) wait in the same outbox while their service is off; acks are ours.
ACK = acks.KIND
REF = re.compile(r"^\[([A-Z][A-Z0-9]*-\d+)\]")


class _HoldingHandler(_Handler):
    """Records like the Sink's handler, but while `hold` is set, keeps the next DATA unanswered."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = threading.Event()
        self.holding = threading.Event()  # set while a DATA is being held
        self.release = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.hold.is_set():
            self.holding.set()
            try:
                while not self.release.is_set():
                    await asyncio.sleep(0.01)
            finally:
                self.holding.clear()
            # The sender died while we held it (aiosmtpd normally cancels us first): not accepted.
            return "451 4.3.0 held message dropped"
        return await super().handle_DATA(server, session, envelope)


class HoldingSink(Sink):
    def __init__(self) -> None:
        super().__init__()
        self.holder = _HoldingHandler()
        self.handler = self.controller.handler = self.holder

    def __enter__(self) -> HoldingSink:
        super().__enter__()
        return self

    def unhold(self) -> None:
        self.holder.hold.clear()
        self.holder.release.set()


class ServeProcess:
    """`python -m bot serve` in its own process group, stderr kept in a file."""

    def __init__(self, db_url: str, relay_url: str, log: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = log
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": db_url,
            "EVIDENCE_SMTP_HOST": "127.0.0.1",
            "EVIDENCE_SMTP_PORT": str(self.port),
            "EVIDENCE_RELAY_URL": relay_url,
            "EVIDENCE_ADDRESSES": "evidence@localhost",
            "EVIDENCE_ACKS_PER_SENDER_PER_HOUR": "1000",
            "EVIDENCE_LOG_LEVEL": "INFO",
            "PORT": "0",  # the web side on a port of its own: two workers' serves must not meet on 3000
            **(extra_env or {}),
        }
        with open(log, "ab") as err:
            err.write(f"----- serve on port {self.port} -----\n".encode())
            err.flush()
            # cwd outside the repo so a developer's .env cannot leak into the test.
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"], env=env, cwd=log.parent,
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True,
            )

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("serve did not accept connections in time")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def evidence(i: int) -> tuple[str, str, bytes]:
    sender = f"witness{i}@example.org"
    mid = f"<crash-{i}-{os.getpid()}@example.org>"
    m = EmailMessage()
    m["From"] = f"Witness {i} <{sender}>"
    m["To"] = "evidence@localhost"
    m["Subject"] = f"Evidence: shared payroll service {i}"
    m["Message-ID"] = mid
    m.set_content(
        f"Project: Payroll {i}\nPublic body: Exampleton Borough Council\nSupplier: Example Services Ltd\n"
        "Contract value: £2m\nOutcome: Success\n\nThe service improved after the move.\n"
    )
    return sender, mid, bytes(m)


def send_one(port: int, i: int) -> str | None:
    """The Message-ID if DATA got 250; None for any failure (refused, reset, no reply)."""
    sender, mid, raw = evidence(i)
    try:
        c = smtplib.SMTP("127.0.0.1", port, timeout=15)
    except OSError:
        return None
    try:
        c.sendmail(sender, ["evidence@localhost"], raw)  # returns only after 250 to DATA
        ok: str | None = mid
    except (OSError, smtplib.SMTPException):
        ok = None
    with contextlib.suppress(OSError, smtplib.SMTPException):
        c.quit()  # a dead server here does not undo the 250
    c.close()
    return ok


def stream(
    port: int, n: int, clients: int, accepted: list[str], lock: threading.Lock, pause: float = 0.0
) -> list[threading.Thread]:
    """`clients` threads share messages 0..n-1, one connection per message, `pause` s apart.

    The pause keeps the stream flowing for seconds whatever the door's speed, so the kill lands
    mid-stream rather than after the last message."""
    todo = iter(range(n))
    todo_lock = threading.Lock()

    def run() -> None:
        while True:
            with todo_lock:
                i = next(todo, None)
            if i is None:
                return
            mid = send_one(port, i)
            if mid is not None:
                with lock:
                    accepted.append(mid)
                time.sleep(pause)  # only while the server answers: after the kill, fail fast

    threads = [threading.Thread(target=run, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    return threads


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def scalar(engine: Engine, stmt: Any) -> int:
    with unit_of_work(engine) as s:
        return int(s.execute(stmt).scalar_one())


def unfinished(engine: Engine) -> int:
    """Messages not yet filed plus acknowledgements not yet finished (other effects may wait)."""
    return scalar(engine, select(func.count()).select_from(Inbound).where(col(Inbound.state) == "received")) + scalar(
        engine,
        select(func.count()).select_from(OutboxItem)
        .where(col(OutboxItem.kind) == ACK, col(OutboxItem.status).in_(["pending", "sending"])),
    )


def expire_leases(engine: Engine) -> int:
    """What two minutes of waiting would do: the dead worker's leases run out.

    The outbox leases a claimed batch for 2 minutes; a restarted worker takes over only expired
    leases, so without this the test would wait out the lease.
    """
    with unit_of_work(engine) as s:
        res = s.execute(
            update(OutboxItem)
            .where(col(OutboxItem.status) == "sending")
            .values(locked_until=datetime(2000, 1, 1, tzinfo=UTC))
        )
        return int(res.rowcount)  # type: ignore[attr-defined]


def check_everything(engine: Engine, sink: Sink, accepted: list[str]) -> None:
    assert accepted, "no message got 250 before the kill"
    with unit_of_work(engine) as s:
        rows = s.execute(
            select(col(Inbound.id), col(Inbound.message_id), col(Inbound.state), col(Submission.reference),
                   col(Submission.kind))
            .join(Submission, col(Submission.inbound_id) == col(Inbound.id), isouter=True)
        ).all()
        n_subs = int(s.execute(select(func.count()).select_from(Submission)).scalar_one())
        outbox = s.execute(
            select(col(OutboxItem.key), col(OutboxItem.status)).where(col(OutboxItem.kind) == ACK)
        ).all()

    by_mid: dict[str | None, list[Any]] = {}
    for r in rows:
        by_mid.setdefault(r.message_id, []).append(r)
    missing = [m for m in accepted if m not in by_mid]
    assert not missing, f"{len(missing)} message(s) got 250 but are not stored: {missing[:5]}"
    for mid in accepted:
        (row,) = by_mid[mid]  # stored once, one submission
        assert row.state == "processed", (mid, row.state)
        assert row.kind == "evidence" and row.reference, (mid, row)
    assert len(accepted) == len(set(accepted))
    # No duplicates anywhere: one submission per stored message, one row per Message-ID.
    assert n_subs == len(rows) == len(by_mid)
    references = {r.reference for r in rows}
    assert len(references) == len(rows)

    assert all(st == "done" for _, st in outbox), Counter(st for _, st in outbox)
    assert {k for k, _ in outbox} == {f"ack:{r}" for r in references}

    acks: Counter[str] = Counter()
    ack_ids: dict[str, set[str]] = {}
    for m in sink.messages:
        msg = m.message
        found = REF.match(str(msg["Subject"]))
        assert found, msg["Subject"]
        acks[found.group(1)] += 1
        ack_ids.setdefault(found.group(1), set()).add(str(msg["Message-ID"]))
    assert all(len(ids) == 1 for ids in ack_ids.values())  # a resend would be the same e-mail
    assert set(acks) == references, (set(acks) ^ references)
    dupes = {r: n for r, n in acks.items() if n != 1}
    assert not dupes, f"acknowledged more than once: {dupes}"


@contextlib.contextmanager
def shown_on_failure(log: Path) -> Iterator[None]:
    """Prints the serve processes' stderr when the test fails."""
    try:
        yield
    except BaseException:
        if log.exists():
            print(f"\n===== {log} =====\n{log.read_text(errors='replace')[-20000:]}", file=sys.stderr)
        raise


@pytest.fixture
def procs() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for p in started:  # leftovers after a failure: kill only the processes we started
        with contextlib.suppress(Exception):
            p.kill()


@pytest.fixture
def sink() -> Iterator[HoldingSink]:
    with HoldingSink() as s:
        yield s


def _restart_and_finish(db_url: str, sink: HoldingSink, log: Path, procs: list[ServeProcess],
                        engine: Engine) -> None:
    sink.unhold()
    expire_leases(engine)
    again = ServeProcess(db_url, sink.url, log)
    procs.append(again)
    again.wait_ready()
    try:
        wait_until(lambda: unfinished(engine) == 0, 40, "every stored message filed and acknowledged")
    except AssertionError:
        with unit_of_work(engine) as s:
            stuck = s.execute(
                select(col(OutboxItem.key), col(OutboxItem.status), col(OutboxItem.attempts),
                       col(OutboxItem.locked_until), col(OutboxItem.last_error))
                .where(col(OutboxItem.kind) == ACK, col(OutboxItem.status) != "done")
            ).all()
        raise AssertionError(f"unfinished after restart: {stuck}") from None
    time.sleep(1.5)  # a late duplicate would show up by now (the worker polls every second)
    again.kill()


@dataclass
class Run:
    """One crash scenario: the database, the first `serve` process and where its log goes."""

    db_url: str
    sink: HoldingSink
    log: Path
    procs: list[ServeProcess]
    engine: Engine
    first: ServeProcess

    def finish(self, accepted: list[str]) -> None:
        _restart_and_finish(self.db_url, self.sink, self.log, self.procs, self.engine)
        check_everything(self.engine, self.sink, accepted)


@pytest.fixture
def run(
    request: pytest.FixtureRequest, db_url: str, sink: HoldingSink, tmp_path: Path, procs: list[ServeProcess]
) -> Iterator[Run]:
    log = tmp_path / "serve.stderr"
    engine = make_engine(db_url)
    try:
        with shown_on_failure(log):
            first = ServeProcess(db_url, sink.url, log)
            procs.append(first)
            first.wait_ready()
        yield Run(db_url, sink, log, procs, engine, first)
    finally:
        engine.dispose()
    # The test's own failure does not pass through a fixture: tests/conftest.py records it.
    if getattr(request.node, "failed_call", False) and log.exists():
        print(f"\n===== {log} =====\n{log.read_text(errors='replace')[-20000:]}", file=sys.stderr)


def test_sigkill_mid_stream_loses_no_accepted_message(run: Run) -> None:
    sink, first = run.sink, run.first
    accepted: list[str] = []
    lock = threading.Lock()
    # Far more messages than can be sent before the kill, however slow the machine is.
    threads = stream(first.port, 5000, 6, accepted, lock, pause=0.15)

    def ready_to_kill() -> bool:
        if len(sink.messages) >= 3:
            sink.holder.hold.set()  # the next ack waits at the relay until after the kill
        with lock:
            return len(accepted) >= 25 and sink.holder.holding.is_set()

    wait_until(ready_to_kill, 90, "25 messages accepted and an ack held at the relay")
    first.kill()  # messages are still flowing: six clients are mid-session
    for t in threads:
        t.join(timeout=30)
    with lock:
        accepted = list(accepted)
    assert 25 <= len(accepted) < 5000, len(accepted)  # the kill did cut the stream short

    run.finish(accepted)


def test_sigkill_while_acknowledging_sends_each_ack_once(run: Run) -> None:
    sink, first = run.sink, run.first
    accepted: list[str] = []
    lock = threading.Lock()
    for t in stream(first.port, 30, 4, accepted, lock):
        t.join(timeout=30)
    assert len(accepted) == 30
    # Some acks are out, the next is held at the relay, the rest wait in the outbox.
    wait_until(lambda: len(sink.messages) >= 10, 30, "the first acknowledgements")
    sink.holder.hold.set()
    wait_until(sink.holder.holding.is_set, 10, "an acknowledgement held at the relay")
    first.kill()
    assert len(sink.messages) < 30

    run.finish(accepted)
