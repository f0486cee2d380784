"""`evidence-bot backup`: a copy taken while a real `serve` takes a steady stream of mail, restored
and read back with `list --json`, holds every record acknowledged before the backup began."""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import sqlite3
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from shutil import copyfile

import pytest

from tests.support.sink import Sink
from tests.test_cli import one_clear_line, run
from tests.test_crash import ServeProcess

REF = re.compile(r"^\[([A-Z]+-\d+)\]")


def mail(i: int) -> tuple[str, bytes]:
    m = EmailMessage()
    mid = f"<backup-{i}-{os.getpid()}@example.org>"
    m["From"] = f"Witness {i} <witness{i}@example.org>"
    m["To"] = "evidence@localhost"
    m["Subject"] = f"Evidence: fleet {i}"
    m["Message-ID"] = mid
    m.set_content(f"Project: Fleet {i}\nSupplier: Babcock\n\nVehicles were off the road for weeks.\n")
    return mid, bytes(m)


class Stream(threading.Thread):
    """Sends one message after another until stopped; notes each that got 250."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.stop, self.accepted = port, threading.Event(), []  # type: ignore[var-annotated]
        self.lock = threading.Lock()

    def run(self) -> None:
        i = 0
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as c:
            while not self.stop.is_set():
                i += 1
                mid, raw = mail(i)
                c.sendmail(f"witness{i}@example.org", ["evidence@localhost"], raw)
                with self.lock:
                    self.accepted.append(mid)
                time.sleep(0.01)

    def so_far(self) -> list[str]:
        with self.lock:
            return list(self.accepted)


@pytest.mark.slow
def test_backup_while_mail_arrives_restores_every_acknowledged_record(tmp_path: Path, sqlite_template: Path) -> None:
    copyfile(sqlite_template, tmp_path / "evidence.db")
    db_url = f"sqlite:///{tmp_path}/evidence.db"
    target = tmp_path / "backups" / "evidence-backup.db"
    target.parent.mkdir()
    with Sink() as sink:
        serve = ServeProcess(db_url, sink.url, tmp_path / "serve.log", extra_env={"PORT": "0"})
        try:
            serve.wait_ready()
            stream = Stream(serve.port)
            stream.start()
            deadline = time.monotonic() + 60
            while len(sink.messages) < 20:  # acknowledgements: those messages are filed records
                assert time.monotonic() < deadline and stream.is_alive(), "no acknowledgements"
                time.sleep(0.05)
            acked = {REF.match(str(m.message["Subject"])).group(1) for m in sink.messages}  # type: ignore[union-attr]
            accepted = stream.so_far()
            p = run("backup", str(target), db_url=db_url)
            sent_during = len(stream.so_far()) - len(accepted)
            again = run("backup", str(target), db_url=db_url)
            stream.stop.set()
            stream.join(timeout=30)
        finally:
            if serve.proc.poll() is None:
                os.killpg(serve.proc.pid, signal.SIGTERM)
            serve.proc.wait(timeout=30)
    assert p.returncode == 0, p.stderr
    assert re.match(rf"backed up .* to {re.escape(str(target))}: [\d,]+ bytes, \d+ record\(s\), \d+ stored "
                    r"message\(s\), integrity ok", p.stdout), p.stdout
    assert sent_during > 0  # the door kept answering while the copy was made
    assert "exists; choose another name or add --force" in one_clear_line(again)
    assert not target.with_name(target.name + ".tmp").exists()

    restored = tmp_path / "restored" / "evidence.db"
    restored.parent.mkdir()
    copyfile(target, restored)
    listed = run("list", "--json", db_url=f"sqlite:///{restored}")
    assert listed.returncode == 0, listed.stderr
    references = {r["reference"] for r in json.loads(listed.stdout)}
    assert acked <= references, acked - references
    con = sqlite3.connect(restored)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {r[0] for r in con.execute("SELECT message_id FROM inbound")}
    finally:
        con.close()
    assert set(accepted) <= stored  # every 250 before the backup began is in it, filed or not


def test_backup_refuses_a_missing_database_and_tells_postgres_users_about_pg_dump(tmp_path: Path) -> None:
    missing = one_clear_line(run("backup", str(tmp_path / "b.db"), db_url=f"sqlite:///{tmp_path}/nope.db"))
    assert "no SQLite database at" in missing
    p = run("backup", "evidence.dump", db_url="postgresql://ev:hunter2@db.example.org:5432/evidence")
    assert p.returncode == 0
    assert "hunter2" not in p.stdout + p.stderr
    assert p.stdout.startswith("pg_dump --format=custom --no-owner --file=evidence.dump "
                               "postgresql://ev@db.example.org:5432/evidence")
    assert "PGPASSWORD" in p.stderr


def test_force_replaces_and_the_copy_stands_alone(tmp_path: Path, sqlite_template: Path) -> None:
    copyfile(sqlite_template, tmp_path / "evidence.db")
    target = tmp_path / "b.db"
    target.write_text("old")
    p = run("backup", str(target), "--force", db_url=f"sqlite:///{tmp_path}/evidence.db")
    assert p.returncode == 0, p.stderr
    con = sqlite3.connect(target)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # no -wal needed beside it
    finally:
        con.close()
