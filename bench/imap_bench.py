"""IMAP door benchmark: a folder of N messages drained from a real Dovecot by `serve`, parsing on.

    python bench/imap_bench.py [--messages 1000] [--database-url URL]

Dovecot (tests/support/dovecot.py: its own process, loopback, a temporary Maildir) is filled by
IMAP APPEND first. Then `python -m bot serve --no-web` runs as deployed, with EVIDENCE_IMAP_URL
pointing at it, against a fresh migrated database (SQLite, or a scratch database on the server
of --database-url). The clock starts when serve logs that the reader is logged in. Reported:
messages per second until all are stored (committed raw), until all are filed (parsed, with a
reference), the folder left empty, and the peak RSS of serve's process tree (serve and its
parser processes, sampled every 50 ms; also each process's own VmHWM). Linux only (/proc).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bot.settings import Settings  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.support.dovecot import DOVECOT, SKIP_REASON, Dovecot  # noqa: E402
from tests.support.pgscratch import scratch_database  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from smtp_bench import make_message as smtp_message  # noqa: E402  (the same messages as the SMTP bench)

RCPT = "evidence@localhost"


def make_message(i: int, run: str) -> bytes:
    """smtp_bench's message, with the Return-Path a mailbox adds on delivery."""
    return smtp_message(i, run, return_path=True)


def tree(pid: int) -> list[int]:
    """pid and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def status(pid: int, field: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def counts(engine: object) -> tuple[int, int]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        stored = int(conn.execute(text("SELECT count(*) FROM inbound")).scalar_one())
        filed = int(conn.execute(text("SELECT count(*) FROM inbound WHERE state <> 'received'")).scalar_one())
    return stored, filed


def run(n: int, database_url: str, tmp: Path) -> None:
    run_id = uuid.uuid4().hex[:8]
    with Dovecot() as dv:
        t = time.perf_counter()
        c = dv.client()
        try:
            for i in range(n):
                c.append("INBOX", make_message(i, run_id))
        finally:
            c.logout()
        print(f"{n} messages appended to Dovecot in {time.perf_counter() - t:.1f} s")
        log = tmp / "serve.stderr"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database_url,
               "EVIDENCE_ADDRESSES": RCPT, "EVIDENCE_SMTP_PORT": "0", "EVIDENCE_LOG_LEVEL": "INFO",
               "EVIDENCE_IMAP_URL": dv.url(), "EVIDENCE_IMAP_PASSWORD": dv.password}
        engine = make_engine(database_url)
        with open(log, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--no-web"], env=env, cwd=tmp,
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        try:
            deadline = time.monotonic() + 30
            while b"IMAP reader logged in" not in log.read_bytes():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"serve did not log in:\n{log.read_text()[-3000:]}")
                time.sleep(0.01)
            t0 = time.perf_counter()
            t_stored = t_filed = None
            peak = 0
            hwm: dict[int, int] = {}
            deadline = time.monotonic() + 600
            last_check = 0.0
            while t_filed is None:
                pids = tree(proc.pid)
                peak = max(peak, sum(status(p, "VmRSS") for p in pids))
                for p in pids:
                    hwm[p] = max(hwm.get(p, 0), status(p, "VmHWM"))
                now = time.perf_counter()
                if now - last_check >= 0.1:
                    last_check = now
                    stored, filed = counts(engine)
                    if t_stored is None and stored >= n:
                        t_stored = now - t0
                    if filed >= n:
                        t_filed = now - t0
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"not drained in time:\n{log.read_text()[-3000:]}")
                time.sleep(0.05)
            left, done = dv.count("INBOX"), dv.count("Processed")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            engine.dispose()
    assert t_stored is not None
    progress = sum(1 for line in log.read_text().splitlines() if " taken (" in line and " of " in line)
    print(f"stored (raw committed): {n} in {t_stored:6.2f} s = {n / t_stored:7.0f} msg/s")
    print(f"filed (parsed, referenced): {n} in {t_filed:6.2f} s = {n / t_filed:7.0f} msg/s")
    print(f"folder afterwards: INBOX {left}, Processed {done}; progress lines in the log: {progress}")
    print(f"peak RSS of serve's process tree (sampled): {peak / 1e6:.1f} MB; "
          f"sum of each process's VmHWM: {sum(hwm.values()) / 1e6:.1f} MB over {len(hwm)} process(es)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--database-url", help="a PostgreSQL server to make a scratch database on (default: SQLite)")
    args = p.parse_args()
    if DOVECOT is None:
        raise SystemExit(SKIP_REASON)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="imap-bench-")))
        if args.database_url:
            server = Settings.model_validate({"DATABASE_URL": args.database_url}).database_url
            url = stack.enter_context(scratch_database(server, "evidence_imap_bench"))
        else:
            url = f"sqlite:///{tmp}/evidence.db"
        upgrade(url)
        print(f"{args.messages} messages, {'PostgreSQL' if args.database_url else 'SQLite'}, cpus: {os.cpu_count()}")
        run(args.messages, str(url), tmp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
