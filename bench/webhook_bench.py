"""Webhook door benchmark: signed POSTs to the service as deployed, against a bare aiohttp handler.

    python bench/webhook_bench.py [--clients 20] [--messages 4000] [--endpoint raw|mailgun] [--database-url URL]

N concurrent clients (keep-alive connections, one aiohttp session in this process) POST distinct
~1.5 KB evidence e-mails, each signed as the endpoint requires (/inbound/raw: HMAC over
timestamp.body; Mailgun: a fresh token per message, multipart/form-data), to
  (a) baseline: a bare aiohttp app whose handler reads the body and answers 200, storing nothing;
  (b) door:     `python -m bot serve --no-smtp` with the endpoint's secret set, parsing on, on a
                fresh migrated SQLite file (or a scratch database on --database-url's server);
  (c) the same Service with its parser held back (for information: what the door itself costs);
  (d) the same Service with its storage also replaced by an answer that stores nothing (for
      information only: the ceiling the web door's own work sets, verifying, dedupe key, hand-over
      and answer, with the commit free);
  (e, f) with --explain, two more for information: storing nothing but answering after a commit's
      latency (--delay-ms), and the group committer's hand-over as deployed with a commit that
      only sleeps that long: they split what storing costs into its latency, its hand-over
      between threads, and SQLite's own work.
Each server is its own process and so is this load generator, so the client never shares an
event loop with a server. The rate is requests answered 200 per second of wall time; the best of
--rounds interleaved rounds counts. The target is door/baseline >= 0.7 at 20 clients. The door's
count of stored rows is checked against what got 200.

Where the time goes (Linux, /proc): for each mode, the CPU microseconds per request of the
server's event-loop thread, of its other threads (the SQLite commit thread), of its child
processes (parsers), of this load generator, and how busy the whole machine was. On 2 cores the
load generator's own CPU bounds every rate; the table shows what each server adds to it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import hmac
import os
import signal
import statistics
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
sys.path.insert(0, str(ROOT / "bench"))

from smtp_bench import RCPT, make_message, stop_process  # noqa: E402  (after the path set-up: the same messages)

SECRET = "bench-raw-secret"
MG_KEY = "bench-mailgun-key"
PATHS = {"raw": "/inbound/raw", "mailgun": "/inbound/mailgun/mime"}


# ---------------------------------------------------------------- the baseline server (a subprocess)


async def _baseline() -> None:
    from aiohttp import web

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "stored"})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    for path in PATHS.values():
        app.router.add_post(path, ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    gc.collect()
    gc.freeze()  # as `evidence-bot serve` does once started
    print(f"READY {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


async def _service_variant(database_url: str, *, mode: str, delay: float = 0.0) -> None:
    """For information only, the service in-process with a part held back or replaced:
    - door-only:  its parser held back (what the web door itself costs);
    - no-storage: its storage too (an intake that answers at once, storing nothing: the ceiling
                  the door's own work sets);
    - delayed:    storing nothing, but each answer waits `delay` seconds, as long as a commit
                  takes (does a commit's latency alone, without its CPU, cost the rate?);
    - handoff:    the group committer as deployed (queue, thread, wake-up), whose commit sleeps
                  `delay` instead of writing (what the hand-over costs without SQLite's work)."""
    import itertools

    from bot.runtime.service import Service
    from bot.settings import Settings
    from storage.writer import Stored

    class Variant(Service):
        async def _process_loop(self) -> None:
            await asyncio.Event().wait()

    settings = Settings.model_validate({
        "DATABASE_URL": database_url, "PORT": 0, "EVIDENCE_ADDRESSES": RCPT,
        "EVIDENCE_INBOUND_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MG_KEY})
    counter = itertools.count(1)

    async def answer_only(_draft: Any) -> Stored:
        if delay:
            await asyncio.sleep(delay)
        return Stored(next(counter), True)

    def sleep_instead(drafts: list[Any]) -> list[tuple[int, bool]]:
        time.sleep(delay)  # as a commit's fsync, it holds no GIL
        return [(next(counter), True) for _ in drafts]

    async def sleep_instead_async(drafts: list[Any]) -> list[tuple[int, bool]]:
        await asyncio.sleep(delay)
        return [(next(counter), True) for _ in drafts]

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Variant(settings, smtp=False) as svc:
        if mode in ("no-storage", "delayed"):
            svc.committer.store = answer_only  # type: ignore[method-assign,assignment]
        elif mode == "handoff":
            door: Any = svc.committer._sqlite or svc.committer._pg  # bench only: reaches into the committer
            door.commit = sleep_instead if svc.committer._sqlite else sleep_instead_async
        gc.collect()
        gc.freeze()
        print(f"READY {svc.web_port}", flush=True)
        await stop.wait()


# ---------------------------------------------------------------- CPU accounting (Linux /proc)


def _ticks(pid: int, tid: int) -> float:
    """User + system seconds of one thread; 0 for one that is gone."""
    try:
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    try:
        kids = [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return kids + [d for k in kids for d in _descendants(k)]


def cpu_snapshot(pid: int) -> dict[str, float]:
    """CPU seconds so far: the server's loop thread, its other threads, its descendants, the
    machine's busy and total time (from /proc/stat), and this process (the load generator)."""
    out = {"loop": 0.0, "threads": 0.0, "children": 0.0}
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return {}
    for tid in tids:
        out["loop" if tid == pid else "threads"] += _ticks(pid, tid)
    for child in _descendants(pid):
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{child}/task")]
        except OSError:
            continue
        out["children"] += sum(_ticks(child, t) for t in tids)
    stat = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    out["machine_idle"] = (stat[3] + stat[4]) / os.sysconf("SC_CLK_TCK")
    out["machine_all"] = sum(stat) / os.sysconf("SC_CLK_TCK")
    out["client"] = time.process_time()
    return out


def cpu_per_request(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    if not before or not after or n == 0:
        return {}
    d = {k: after[k] - before[k] for k in before}
    per = {k: 1e6 * d[k] / n for k in ("loop", "threads", "children", "client")}
    per["busy %"] = 100 * (d["machine_all"] - d["machine_idle"]) / max(d["machine_all"], 1e-9)
    return per


@dataclass
class Server:
    proc: subprocess.Popen[Any]
    port: int

    @classmethod
    def baseline(cls, *flags: str) -> Server:
        """The bare handler, or with flags one of the in-process variants (see _service_variant)."""
        proc = subprocess.Popen([sys.executable, __file__, *(flags or ["--serve-baseline"])], stdout=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            proc.kill()
            raise SystemExit(f"baseline server did not start: {line!r}")
        return cls(proc, int(line.split()[1]))

    @classmethod
    def door(cls, database_url: str, log: Path) -> Server:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database_url, "PORT": str(port),
               "EVIDENCE_WEB_HOST": "127.0.0.1", "EVIDENCE_ADDRESSES": RCPT,
               "EVIDENCE_INBOUND_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MG_KEY,
               "EVIDENCE_LOG_LEVEL": "WARNING"}
        with open(log, "ab") as err:
            proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--no-smtp"], env=env, cwd=log.parent,
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        server = cls(proc, port)
        asyncio.run(server._wait_ready())
        return server

    async def _wait_ready(self, timeout: float = 30) -> None:
        import aiohttp

        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise SystemExit(f"serve exited with {self.proc.returncode}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise SystemExit("serve did not answer /healthz in time")

    def stop(self) -> None:
        stop_process(self.proc, 30)


# ---------------------------------------------------------------- load





def signed(endpoint: str, raw: bytes, i: int) -> tuple[bytes, dict[str, str]]:
    """The request body and headers, signed as a provider (or relay) would sign them."""
    ts = str(int(time.time()))
    if endpoint == "raw":
        sig = hmac.new(SECRET.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
        return raw, {"Content-Type": "message/rfc822", "X-Evidence-Timestamp": ts,
                     "X-Evidence-Signature": f"sha256={sig}", "X-Evidence-Recipient": RCPT,
                     "X-Evidence-Envelope-From": f"witness{i % 500}@example.org"}
    token = uuid.uuid4().hex + uuid.uuid4().hex[:18]
    sig = hmac.new(MG_KEY.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    fields = {"recipient": RCPT.encode(), "sender": f"witness{i % 500}@example.org".encode(),
              "timestamp": ts.encode(), "token": token.encode(), "signature": sig.encode(), "body-mime": raw}
    boundary = uuid.uuid4().hex
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode() + v + b"\r\n"
                    for k, v in fields.items()) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


async def _load(port: int, path: str, requests: list[tuple[bytes, dict[str, str]]], clients: int) -> tuple[int, float]:
    import aiohttp

    url = f"http://127.0.0.1:{port}{path}"
    todo = iter(requests)
    ok = 0

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal ok
        for body, headers in todo:
            async with http.post(url, data=body, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise SystemExit(f"answered {r.status}: {await r.text()}")
                ok += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(clients)))
        return ok, time.perf_counter() - t0


def measure(server: Server, args: argparse.Namespace, run: str) -> tuple[float, dict[str, float]]:
    """Requests answered 200 per second, and the CPU per request of each part (see the docstring)."""
    path = PATHS[args.endpoint]
    warm = [signed(args.endpoint, make_message(10_000_000 + i, run), i) for i in range(40)]
    asyncio.run(_load(server.port, path, warm, 4))  # imports, connection pools, first commits
    reqs = [signed(args.endpoint, make_message(i, run), i) for i in range(args.messages)]
    before = cpu_snapshot(server.proc.pid)
    n, secs = asyncio.run(_load(server.port, path, reqs, args.clients))
    return n / secs, cpu_per_request(before, cpu_snapshot(server.proc.pid), n)


def stored(database_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM inbound")).scalar_one())
    finally:
        engine.dispose()


SCRATCH = contextlib.ExitStack()  # PostgreSQL scratch databases, dropped when the run ends


def fresh_database(args: argparse.Namespace, tmp: Path, name: str) -> str:
    from storage.migrate import upgrade
    from tests.support.pgscratch import scratch_database

    url = SCRATCH.enter_context(scratch_database(args.database_url, "evidence_webhook_bench")) \
        if args.database_url else f"sqlite:///{tmp}/{name}.db"
    upgrade(url)
    return str(url)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--messages", type=int, default=4000)
    p.add_argument("--rounds", type=int, default=3, help="rounds per server; the best counts")
    p.add_argument("--endpoint", choices=sorted(PATHS), default="raw")
    p.add_argument("--database-url", help="bench the door against this database's server instead of SQLite")
    p.add_argument("--explain", action="store_true",
                   help="also run the 'delayed' and 'handoff' variants: where the door's time goes")
    p.add_argument("--delay-ms", type=float, default=1.0,
                   help="with --explain: the commit latency those variants stand in for (default 1 ms)")
    p.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--serve-variant", nargs=2, metavar=("MODE", "URL"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_baseline:
        asyncio.run(_baseline())
        return 0
    if args.serve_variant:
        mode, url = args.serve_variant
        asyncio.run(_service_variant(url, mode=mode, delay=args.delay_ms / 1000))
        return 0
    if args.database_url:
        from bot.settings import Settings

        args.database_url = Settings.model_validate({"DATABASE_URL": args.database_url}).database_url

    run = uuid.uuid4().hex[:8]
    t_start = time.monotonic()
    print(f"{args.clients} clients, {args.messages} messages per round, {args.rounds} round(s), "
          f"endpoint {PATHS[args.endpoint]}, {'PostgreSQL' if args.database_url else 'SQLite'}, "
          f"cpus: {os.cpu_count()}")
    modes = ["baseline", "door", "door-only", "no-storage"] + (["delayed", "handoff"] if args.explain else [])
    rates: dict[str, list[float]] = {m: [] for m in modes}
    cpus: dict[str, list[dict[str, float]]] = {m: [] for m in rates}
    with SCRATCH, tempfile.TemporaryDirectory(prefix="webhook-bench-") as d:
        tmp = Path(d)
        for r in range(args.rounds):
            for mode in rates:  # interleaved, so drift in the machine's load hits both alike
                url = ""
                if mode == "baseline":
                    server = Server.baseline()
                elif mode == "door":
                    url = fresh_database(args, tmp, f"door-{r}")
                    server = Server.door(url, tmp / "serve.log")
                else:
                    db = fresh_database(args, tmp, f"{mode}-{r}")
                    url = db if mode == "door-only" else ""  # the others store nothing
                    server = Server.baseline("--serve-variant", mode, db, "--delay-ms", str(args.delay_ms))
                try:
                    rate, cpu = measure(server, args, f"{run}{r}")
                finally:
                    server.stop()
                rates[mode].append(rate)
                if cpu:
                    cpus[mode].append(cpu)
                note = ""
                if url:
                    n = stored(url)
                    note = f"  ({n} stored)"
                    if n != args.messages + 40:
                        raise SystemExit(f"the door stored {n} messages, not {args.messages + 40}")
                print(f"  round {r + 1}: {mode:10s} {rate:8.0f} msg/s{note}", flush=True)

    best = {m: max(v) for m, v in rates.items()}
    ratio = best["door"] / best["baseline"]
    print()
    print(f"{'throughput':48s} {'msg/s':>9s}  {'vs baseline':>11s}")
    print(f"{'bare aiohttp handler, 200 without storing':48s} {best['baseline']:9.0f}  {1:11.2f}")
    print(f"{'serve: verify, durable commit, parser on':48s} {best['door']:9.0f}  {ratio:11.2f}  "
          f"{'OK' if ratio >= 0.7 else 'BELOW'} target >= 0.70")
    print(f"{'the same service, parsing held back':48s} {best['door-only']:9.0f}  "
          f"{best['door-only'] / best['baseline']:11.2f}  (for information)")
    print(f"{'the same service, storing nothing':48s} {best['no-storage']:9.0f}  "
          f"{best['no-storage'] / best['baseline']:11.2f}  (for information: the ceiling without storage)")
    if args.explain:
        print(f"{f'storing nothing, answered after {args.delay_ms:g} ms':48s} {best['delayed']:9.0f}  "
              f"{best['delayed'] / best['baseline']:11.2f}  (a commit's latency without its CPU)")
        print(f"{f'the hand-over as deployed, commit = {args.delay_ms:g} ms sleep':48s} {best['handoff']:9.0f}  "
              f"{best['handoff'] / best['baseline']:11.2f}  (the committer's queue and wake-up, no database work)")
    if all(cpus.values()):
        print("\nCPU us per request, median of the rounds (loop: the server's event-loop thread; threads: its"
              "\nothers, the commit thread; children: parsers; client: this load generator)")
        cols = ("loop", "threads", "children", "client", "busy %")
        print(f"{'':12s}" + "".join(f"{c:>10s}" for c in cols))
        for mode, rows in cpus.items():
            print(f"{mode:12s}" + "".join(f"{statistics.median(r[c] for r in rows):10.0f}" for c in cols))
    print(f"\n(total {time.monotonic() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
