"""SMTP door benchmark: our door against plain aiosmtpd, same load, same machine.

    python bench/smtp_bench.py [--clients 20] [--messages 4000] [--database-url URL]

Throughput: N concurrent clients (Postfix's smtp-source if on PATH, else a raw asyncio SMTP
client here) keep their connections open and send several messages per session to
  (a) baseline: aiosmtpd's SMTP with a handler whose handle_DATA returns "250 OK" and does nothing;
  (b) service:  bot.runtime.service.Service as `serve` runs it (SMTP door + group commit + the processor
                filing in its worker process + outbox, relay off) on a fresh migrated SQLite file
                (or --database-url);
  (c) door only, for information: the same service with its processor held back.
Each server runs in its own subprocess, so the client never shares its event loop. The rate is
messages answered 250 per second of wall time; the target is service/baseline >= 0.8 at 20
clients, with filing on. After each burst the script also times the filing: messages still
waiting when the burst ended, and how long until every one is filed.

Memory: one 20 MB message to a fresh server of each kind; per process, the peak RSS (VmHWM,
reset just before via /proc/PID/clear_refs) minus the RSS before the message, summed over the
server's whole process tree (the service's main process and its parser worker), measured once
the message is filed. Target: the whole service, parsing included, at most 6x the message size.
Linux only (/proc).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: bot/, storage/ are importable
MAX_BYTES = 64 * 1024 * 1024
RCPT = "evidence@localhost"


# ---------------------------------------------------------------- servers (run in a subprocess)


class _NullHandler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def _settle() -> None:
    """As `evidence-bot serve` does once started (bot.runtime.service.serve), for every server alike."""
    gc.collect()
    gc.freeze()


async def _serve(mode: str, database_url: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if mode == "baseline":
        from aiosmtpd.smtp import SMTP

        handler = _NullHandler()
        # Same options as our door (handlers.smtp.protocol_factory) so only the handler differs.
        server = await loop.create_server(
            lambda: SMTP(handler, data_size_limit=MAX_BYTES, enable_SMTPUTF8=True, timeout=300),
            "127.0.0.1", 0,
        )
        port = server.sockets[0].getsockname()[1]
        _settle()
        print(f"READY {port}", flush=True)
        await stop.wait()
        server.close()
        return

    from bot.runtime.service import Service
    from bot.settings import Settings

    class DoorOnly(Service):
        """The service with parsing held back: what the SMTP door itself costs."""

        async def _process_loop(self) -> None:
            await asyncio.Event().wait()

    settings = Settings.model_validate({
        "DATABASE_URL": database_url,
        "EVIDENCE_ADDRESSES": RCPT,
        "EVIDENCE_SMTP_HOST": "127.0.0.1",
        "EVIDENCE_SMTP_PORT": 0,
        "PORT": 0,  # the web side on a free port: a default 3000 may be taken on a shared machine
        "EVIDENCE_MAX_MESSAGE_BYTES": MAX_BYTES,
        "EVIDENCE_SMTP_MAX_CONNECTIONS": 1000,
    })
    cls = DoorOnly if mode == "door-only" else Service
    async with cls(settings) as svc:
        _settle()
        print(f"READY {svc.smtp_port}", flush=True)
        await stop.wait()


@dataclass
class Server:
    mode: str
    proc: subprocess.Popen[str]
    port: int

    @classmethod
    def start(cls, mode: str, database_url: str) -> Server:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", mode, "--database-url", database_url],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            proc.kill()
            raise SystemExit(f"{mode} server did not start: {line!r}")
        return cls(mode, proc, int(line.split()[1]))

    def tree(self) -> list[int]:
        """The server's pid and those of all its descendants (the parser worker, the resource tracker)."""
        children: dict[int, list[int]] = {}
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, []))
        return out

    @staticmethod
    def status(field: str, pid: int) -> int:
        """A /proc/PID/status field in bytes (VmRSS, VmHWM); 0 for a process that is gone."""
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return 0
        raise KeyError(field)

    @staticmethod
    def reset_peak(pid: int) -> bool:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # 5: reset VmHWM to VmRSS
            return True
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.proc, 15)


def stop_process(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM, as an operator stops `serve`; killed if it has not gone within `timeout` (also the
    webhook and metrics benches')."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- load


def make_message(i: int, run: str, *, return_path: bool = False) -> bytes:
    """A typical ~1.5 KB evidence e-mail; each one distinct so the door stores every one (also the
    webhook, IMAP and metrics benches'). `return_path`: as a mailbox holds it (the IMAP bench)."""
    body = (
        f"Project: Payroll {i}\r\nPublic body: Exampleton Borough Council\r\nSupplier: Example Services Ltd\r\n"
        "Contract value: \xa32m\r\nOutcome: Success\r\n\r\n"
        + "The service improved after the move to the shared centre; complaints fell by a third.\r\n" * 12
    )
    head = (
        (f"Return-Path: <witness{i % 500}@example.org>\r\n" if return_path else "")
        + f"From: Witness {i} <witness{i % 500}@example.org>\r\nTo: {RCPT}\r\n"
        f"Subject: Evidence: shared payroll service {i}\r\nMessage-ID: <bench-{run}-{i}@example.org>\r\n"
        "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return (head + body).encode("utf-8")


async def _reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            return line


async def _expect(reader: asyncio.StreamReader, code: bytes) -> None:
    line = await _reply(reader)
    if not line.startswith(code):
        raise RuntimeError(f"expected {code!r}, got {line!r}")


async def _session(port: int, messages: list[bytes]) -> int:
    """One connection sending its share of messages one after another, then QUIT."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    await _expect(reader, b"220")
    writer.write(b"EHLO bench.example.org\r\n")
    await _expect(reader, b"250")
    sent = 0
    for i, raw in enumerate(messages):
        writer.write(f"MAIL FROM:<witness{i % 500}@example.org>\r\n".encode())
        await _expect(reader, b"250")
        writer.write(f"RCPT TO:<{RCPT}>\r\n".encode())
        await _expect(reader, b"250")
        writer.write(b"DATA\r\n")
        await _expect(reader, b"354")
        writer.write(raw + b"\r\n.\r\n")  # no line of ours starts with a dot: no stuffing needed
        await _expect(reader, b"250")
        sent += 1
    writer.write(b"QUIT\r\n")
    with contextlib.suppress(ConnectionError):
        await _reply(reader)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return sent


async def _load(port: int, messages: list[bytes], clients: int) -> tuple[int, float]:
    shares = [messages[k::clients] for k in range(clients)]
    t0 = time.perf_counter()
    counts = await asyncio.gather(*(_session(port, s) for s in shares if s))
    return sum(counts), time.perf_counter() - t0


def python_load(port: int, messages: list[bytes], clients: int) -> float:
    n, secs = asyncio.run(_load(port, messages, clients))
    return n / secs


def smtp_source_load(port: int, count: int, clients: int) -> float:
    """Postfix's smtp-source. Its messages are all alike, which our door stores once (dedupe)."""
    exe = shutil.which("smtp-source")
    assert exe
    t0 = time.perf_counter()
    subprocess.run(
        [exe, "-s", str(clients), "-m", str(count), "-l", "1500", "-c", "-f", "witness@example.org",
         "-t", RCPT, f"127.0.0.1:{port}"],
        check=True, stdout=subprocess.DEVNULL,
    )
    return count / (time.perf_counter() - t0)


@dataclass
class Filing:
    waiting: int  # messages not yet filed when the burst ended
    seconds: float  # from the end of the burst until every message was filed

    @property
    def rate(self) -> float:
        return self.waiting / self.seconds if self.seconds > 0 else float("inf")


def measure_rate(mode: str, database_url: str, args: argparse.Namespace, run: str) -> tuple[float, Filing | None]:
    """(messages per second during the burst, and for the service the filing that followed)."""
    server = Server.start(mode, database_url)
    try:
        warm = [make_message(10_000_000 + i, run + mode) for i in range(40)]
        python_load(server.port, warm, 4)  # imports, connection pools, first commits
        if mode == "door":
            _wait_parsed(database_url)  # the warm-up's filing is not the burst's
            time.sleep(0.5)  # nor is its tail (the log lines, the outbox's look at what was queued)
        if args.client == "smtp-source":
            rate = smtp_source_load(server.port, args.messages, args.clients)
        else:
            msgs = [make_message(i, run + mode) for i in range(args.messages)]
            rate = python_load(server.port, msgs, args.clients)
        filing = None
        if mode == "door":
            t0 = time.perf_counter()
            waiting = _pending(database_url)
            _wait_parsed(database_url, timeout=600)
            filing = Filing(waiting, time.perf_counter() - t0)
        return rate, filing
    finally:
        server.stop()


# ---------------------------------------------------------------- memory


def big_message(size: int) -> bytes:
    """A message of about `size` bytes: short text and a base64 attachment, CRLF lines."""
    head = (
        f"From: Witness <witness@example.org>\r\nTo: {RCPT}\r\nSubject: Evidence with a big scan\r\n"
        f"Message-ID: <big-{uuid.uuid4().hex}@example.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nProject: Payroll\r\nSee the scan.\r\n"
        '--b1\r\nContent-Type: application/octet-stream; name="scan.bin"\r\n'
        'Content-Disposition: attachment; filename="scan.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    ).encode()
    tail = b"--b1--\r\n"
    line = b"QUJD" * 19 + b"\r\n"  # 78 bytes of base64 per line
    n_lines = max(1, (size - len(head) - len(tail)) // len(line))
    return head + line * n_lines + tail


def _send(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as c:
        c.sendmail("witness@example.org", [RCPT], raw)


def _pending(database_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM inbound WHERE state = 'received'")).scalar_one())
    finally:
        engine.dispose()


@dataclass
class Memory:
    before: dict[int, int]  # VmRSS per pid of the tree, just before the message
    peak: dict[int, int]  # VmHWM per pid of the tree, once the message is stored (and filed)

    @property
    def extra(self) -> int:
        """Summed over the tree: each process's peak less what it held before (a process that
        started meanwhile counts whole)."""
        return sum(max(0, hwm - self.before.get(pid, 0)) for pid, hwm in self.peak.items())

    @property
    def main_extra(self) -> int:
        pid = min(self.before)
        return max(0, self.peak.get(pid, 0) - self.before[pid])


def measure_memory(mode: str, database_url: str, raw: bytes, *, until_parsed: bool = False) -> Memory:
    server = Server.start(mode, database_url)
    try:
        _send(server.port, make_message(0, uuid.uuid4().hex))  # warm: imports, first commit, the worker
        if until_parsed:
            _wait_parsed(database_url)
        time.sleep(0.3)
        pids = server.tree()
        before = {pid: server.status("VmRSS", pid) for pid in pids}
        if not all(server.reset_peak(pid) for pid in pids):
            print("warning: cannot reset VmHWM; the peak may predate the message", file=sys.stderr)
        _send(server.port, raw)
        if until_parsed:
            _wait_parsed(database_url)  # filing waits for the door to be quiet: wait for it
        peak = {pid: server.status("VmHWM", pid) for pid in server.tree()}
        return Memory(before, peak)
    finally:
        server.stop()


def _wait_parsed(database_url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while _pending(database_url):
        if time.monotonic() > deadline:
            raise SystemExit("the service did not parse the message in time")
        time.sleep(0.1)


# ---------------------------------------------------------------- main


LABELS = {  # mode: (short, long)
    "baseline": ("baseline", "aiosmtpd, do-nothing handler"),
    "door": ("service", "whole service as deployed, filing on"),
    "door-only": ("door-only", "door only: receive + commit, filing held back"),
}
SCRATCH = contextlib.ExitStack()  # PostgreSQL scratch databases, dropped when the run ends


def fresh_database(args: argparse.Namespace, tmp: Path, name: str) -> str:
    from storage.migrate import upgrade
    from tests.support.pgscratch import scratch_database

    # On PostgreSQL each server gets a database of its own on that server, so no run leaves a
    # backlog behind for the next (or for anything else using the database it was given).
    url = SCRATCH.enter_context(scratch_database(args.database_url, "evidence_smtp_bench")) \
        if args.database_url else f"sqlite:///{tmp}/{name}.db"
    upgrade(url)
    return str(url)


def mb(n: int) -> str:
    return f"{n / 1e6:7.1f} MB"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--messages", type=int, default=4000)
    p.add_argument("--rounds", type=int, default=3, help="throughput rounds per server; the best counts")
    p.add_argument("--big-mb", type=float, default=20.0, help="size of the memory test's message")
    p.add_argument("--database-url", help="bench the door against this database instead of SQLite")
    p.add_argument("--client", choices=["auto", "python", "smtp-source"], default="auto")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--serve", choices=["baseline", "door", "door-only"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.database_url:
        from bot.settings import Settings

        args.database_url = Settings.model_validate({"DATABASE_URL": args.database_url}).database_url

    if args.serve:
        asyncio.run(_serve(args.serve, args.database_url or ""))
        return 0

    if args.client == "auto":
        args.client = "smtp-source" if shutil.which("smtp-source") else "python"
    run = uuid.uuid4().hex[:8]
    t_start = time.monotonic()
    print(f"{args.clients} clients, {args.messages} messages per round, {args.rounds} round(s), "
          f"client: {args.client}, cpus: {os.cpu_count()}")
    rates: dict[str, list[float]] = {"baseline": [], "door": [], "door-only": []}
    filings: list[Filing] = []
    with SCRATCH, tempfile.TemporaryDirectory(prefix="smtp-bench-") as d:
        tmp = Path(d)
        for r in range(args.rounds):
            for mode in rates:  # interleaved, so drift in the machine's load hits all alike
                url = "" if mode == "baseline" else fresh_database(args, tmp, f"{mode}-{r}")
                rate, filing = measure_rate(mode, url, args, f"{run}{r}")
                rates[mode].append(rate)
                extra = ""
                if filing is not None:
                    filings.append(filing)
                    extra = (f"; then filed {filing.waiting} waiting in {filing.seconds:.1f} s "
                             f"({filing.rate:.0f} msg/s)")
                print(f"  round {r + 1}: {LABELS[mode][0]:9s} {rate:8.0f} msg/s{extra}", flush=True)

        mem: dict[str, Memory] = {}
        size = int(args.big_mb * 1e6)
        if not args.no_memory:
            raw = big_message(size)
            size = len(raw)
            mem["baseline"] = measure_memory("baseline", "", raw)
            mem["door"] = measure_memory("door-only", fresh_database(args, tmp, "mem-door"), raw)
            mem["service"] = measure_memory("door", fresh_database(args, tmp, "mem-svc"), raw, until_parsed=True)

    best = {m: max(v) for m, v in rates.items()}
    ratio = best["door"] / best["baseline"]
    print()
    print(f"{'throughput (best round)':48s} {'msg/s':>9s}  {'vs baseline':>11s}")
    print(f"{LABELS['baseline'][1]:48s} {best['baseline']:9.0f}  {1:11.2f}")
    # The target is the deployed shape's: the whole service, filing on (it defers filing while a
    # door stored something in the last DOOR_QUIET_SECONDS, then files in batches).
    print(f"{LABELS['door'][1]:48s} {best['door']:9.0f}  {ratio:11.2f}  "
          f"{'OK' if ratio >= 0.8 else 'BELOW'} target >= 0.80")
    print(f"{LABELS['door-only'][1]:48s} {best['door-only']:9.0f}  "
          f"{best['door-only'] / best['baseline']:11.2f}  (for information)")
    if filings:
        f = max(filings, key=lambda x: x.rate)
        print(f"filing after the burst (best round): {f.waiting} messages waiting, all filed in {f.seconds:.1f} s "
              f"= {f.rate:.0f} msg/s (rounds: {', '.join(f'{x.rate:.0f}' for x in filings)})")
    if mem:
        print()
        print(f"memory, one {size / 1e6:.1f} MB message         processes  extra, main  extra, tree  tree/size")
        for name, label in (("baseline", "aiosmtpd, do-nothing handler"), ("door", "door only (receive + store)"),
                            ("service", "whole service, filed (target)")):
            m = mem[name]
            print(f"{label:36s} {len(m.peak):9d} {mb(m.main_extra)}   {mb(m.extra)}  {m.extra / size:8.2f}x")
        tree = mem["service"].extra / size
        print(f"whole service, parsing and filing included: {tree:.2f}x the message "
              f"({'OK' if tree <= 6 else 'ABOVE'} target <= 6x); aiosmtpd alone {mem['baseline'].extra / size:.2f}x")
    print(f"\n(total {time.monotonic() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
