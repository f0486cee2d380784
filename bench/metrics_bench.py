"""What the metrics cost the SMTP door: the same door with and without them, in one run.

    python bench/metrics_bench.py [--clients 20] [--messages 3000] [--rounds 3] [--database-url URL]

Two servers, each `bot.runtime.service.Service` in its own subprocess with parsing held back (as
smtp_bench's door-only: the door's own cost, not the parser's): one built with metrics (every
reply counted, every stored message counted, /metrics served and scraped once a second, as a
Prometheus server would), one with Service(metrics=False). The load is smtp_bench's: N clients
on open connections sending distinct ~1.5 KB messages. The two take turns for --rounds rounds on
fresh databases; the figures are the median rate of each and the median of the rounds' ratios (each
round's two runs back to back), and the target is metrics / without >= 0.95.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from smtp_bench import RCPT, make_message, python_load, stop_process  # noqa: E402  (after the path set-up)


async def _serve(mode: str, database_url: str) -> None:
    from bot.runtime.service import Service
    from bot.settings import Settings

    class DoorOnly(Service):
        async def _process_loop(self) -> None:
            await asyncio.Event().wait()

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    settings = Settings.model_validate({
        "DATABASE_URL": database_url, "EVIDENCE_ADDRESSES": RCPT, "EVIDENCE_SMTP_HOST": "127.0.0.1",
        "EVIDENCE_SMTP_PORT": 0, "PORT": 0, "EVIDENCE_SMTP_MAX_CONNECTIONS": 1000,
    })
    async with DoorOnly(settings, metrics=mode == "metrics") as svc:
        import gc

        gc.collect()
        gc.freeze()  # as `serve` does once started
        print(f"READY {svc.smtp_port} {svc.web_port}", flush=True)
        await stop.wait()


class Server:
    def __init__(self, mode: str, database_url: str) -> None:
        self.mode = mode
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", mode, "--database-url", database_url],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "READY":
            self.proc.kill()
            raise SystemExit(f"{mode} server did not start")
        self.port, self.web_port = int(line[1]), int(line[2])

    def stop(self) -> None:
        stop_process(self.proc, 30)


def _scraper(port: int, stop: threading.Event, scrapes: list[int]) -> None:
    while not stop.wait(1.0):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            scrapes.append(len(r.read()))


def fresh_database(workdir: Path, base: str | None) -> str:
    if base:
        return base
    from storage.migrate import upgrade

    url = f"sqlite:///{workdir / uuid.uuid4().hex}.db"
    upgrade(url)
    return url


def cpu_seconds(pid: int) -> float:
    """User and system time of the process so far (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(mode: str, database_url: str, clients: int, messages: int) -> tuple[float, float, int]:
    """(messages a second of wall time, messages a second of the server's CPU time, scrapes)."""
    server = Server(mode, database_url)
    run = uuid.uuid4().hex
    stop, scrapes = threading.Event(), []  # type: ignore[var-annotated]
    try:
        python_load(server.port, [make_message(10_000_000 + i, run) for i in range(40)], 4)  # warm up
        scraper = threading.Thread(target=_scraper, args=(server.web_port, stop, scrapes), daemon=True)
        if mode == "metrics":
            scraper.start()
        batch = [make_message(i, run) for i in range(messages)]
        cpu = cpu_seconds(server.proc.pid)
        rate = python_load(server.port, batch, clients)
        cpu = cpu_seconds(server.proc.pid) - cpu
        stop.set()
        if scraper.is_alive():
            scraper.join(timeout=10)
        return rate, messages / cpu, len(scrapes)
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--database-url", help="PostgreSQL (emptied by no one: use a scratch database)")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve, args.database_url))
        return
    rates: dict[str, list[float]] = {"without": [], "metrics": []}
    per_cpu: dict[str, list[float]] = {"without": [], "metrics": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            # Alternating, and the order swapped each round: drift (the disk, the other load) hits both.
            order = ("without", "metrics") if r % 2 == 0 else ("metrics", "without")
            for mode in order:
                rate, cpu_rate, scrapes = measure(mode, fresh_database(Path(tmp), args.database_url),
                                                  args.clients, args.messages)
                rates[mode].append(rate)
                per_cpu[mode].append(cpu_rate)
                extra = f", {scrapes} scrapes of /metrics" if mode == "metrics" else ""
                print(f"round {r + 1} {mode:<8} {rate:7.0f} msg/s, {cpu_rate:7.0f} msg per CPU second{extra}",
                      flush=True)
    without, with_metrics = statistics.median(rates["without"]), statistics.median(rates["metrics"])
    # Each round's pair ran back to back: its ratio is the least disturbed by drift between rounds.
    pairs = statistics.median(m / w for m, w in zip(rates["metrics"], rates["without"], strict=True))
    print(f"median: without metrics {without:.0f} msg/s, with metrics {with_metrics:.0f} msg/s, "
          f"ratio {with_metrics / without:.3f}; median of the rounds' ratios {pairs:.3f} (target >= 0.95)")
    # The server's own CPU per message: what the metrics cost, less exposed than wall time to
    # whatever else the machine is doing.
    cpu_pairs = statistics.median(m / w for m, w in zip(per_cpu["metrics"], per_cpu["without"], strict=True))
    print(f"messages per CPU second of the server: without {statistics.median(per_cpu['without']):.0f}, "
          f"with {statistics.median(per_cpu['metrics']):.0f}; median of the rounds' ratios {cpu_pairs:.3f}")


if __name__ == "__main__":
    main()
