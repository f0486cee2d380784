"""Slack benchmark: acknowledgement latency of slash commands, and the drain rate of a backlog.

    python bench/slack_bench.py [--commands 100] [--backlog 200] [--database-url URL]

1. 100 signed `/evidence` slash commands POSTed at once to `serve`'s /slack/events; the time to
   each HTTP 200 as a fraction of Slack's 3-second budget (target: p99 under 5% of it).
2. A backlog of review summaries drained into a Slack stand-in that allows 1 post per second per
   channel, as Slack does: posts per second over the limit (target >= 0.9) and duplicates (target 0).

`serve` runs as its own process; the stand-in (tests/support/slack_api.py) and the client run here.
The backlog is made beforehand by filing messages straight into a fresh database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import drafts, intake  # noqa: E402
from bot.settings import Settings  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.support.pgscratch import scratch_database  # noqa: E402
from tests.support.sink import free_port  # noqa: E402
from tests.support.slack_api import FakeSlack  # noqa: E402
from tests.support.slack_requests import post_signed, slash_command_body  # noqa: E402

SECRET = "bench-secret"
CHANNEL = "C0REVIEW"
BUDGET = 3.0


def fill_backlog(url: str, n: int) -> None:
    settings = Settings.model_validate({"DATABASE_URL": url})
    engine = make_engine(url)
    for i in range(n):
        raw = (f"From: Sender {i} <s{i}@example.org>\r\nTo: evidence@localhost\r\nSubject: Evidence {i}\r\n"
               f"Message-ID: <bench-{i}@example.org>\r\n\r\nPublic body: Kent County Council\r\nOutcome: mixed\r\n"
               "\r\nThe contract saved money but service levels fell.\r\n").encode()
        intake.store_now(engine, drafts.draft(raw, envelope_from=f"s{i}@example.org", rcpts=["evidence@localhost"]))
    while intake.process_pending(engine, settings, limit=200):
        pass
    engine.dispose()


def start_serve(url: str, slack: FakeSlack, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "SLACK_", "DATABASE_URL"))}
    env.update({"DATABASE_URL": url, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": slack.api_url, "EVIDENCE_REVIEW_CHANNEL": CHANNEL, "PORT": str(port),
                "EVIDENCE_REVIEWERS": "U0REV1", "EVIDENCE_LOG_LEVEL": "WARNING"})
    with log.open("wb") as err:
        return subprocess.Popen([sys.executable, "-m", "bot", "serve", "--no-smtp"], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=err)


async def wait_http(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            await w.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit("serve did not start; see its log")


async def bench_commands(url: str, n: int, workdir: Path) -> tuple[float, float, int]:
    async with FakeSlack(post_interval=0) as slack:
        port = free_port()
        proc = start_serve(url, slack, port, workdir / "serve-commands.log")
        try:
            await wait_http(port)
            target = f"http://127.0.0.1:{port}/slack/events"
            # One warm-up request: the first one pays for imports the others don't.
            await post_signed(target, slash_command_body(text="help"), SECRET)

            async def one(i: int) -> tuple[int, float]:
                body = slash_command_body(text="", user_id=f"U{i:05d}", trigger_id=f"T{i}")
                t0 = time.perf_counter()
                status, _ = await post_signed(target, body, SECRET)
                return status, time.perf_counter() - t0

            results = await asyncio.gather(*(one(i) for i in range(n)))
            await slack.wait_for_calls("views.open", count=n, timeout=30)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    times = sorted(t for _, t in results)
    bad = sum(1 for s, _ in results if s != 200)
    p50 = statistics.median(times)
    p99 = times[min(len(times) - 1, int(round(0.99 * len(times))) - 1)]
    return p50, p99, bad


async def bench_drain(url: str, n: int, workdir: Path) -> tuple[float, int, int]:
    async with FakeSlack(post_interval=1.0) as slack:
        proc = start_serve(url, slack, free_port(), workdir / "serve-drain.log")
        try:
            deadline = time.monotonic() + n * 2 + 60
            while len(slack.posted_messages(CHANNEL)) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await asyncio.sleep(3)  # anything posted twice would show up now
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        posts = slack.posted_messages(CHANNEL)
        limited = sum(1 for c in slack.calls_to("chat.postMessage") if c.rate_limited)
    refs = Counter(str(p.get("text", "")).split(":", 1)[0] for p in posts)
    dupes = sum(c - 1 for c in refs.values())
    stamps = [c.at for c in slack.calls_to("chat.postMessage") if c.ok]
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return rate, dupes, limited


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", type=int, default=100)
    ap.add_argument("--backlog", type=int, default=200)
    ap.add_argument("--database-url", help="default: a fresh SQLite file")
    a = ap.parse_args()
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="slack-bench-")))
        # PostgreSQL: a scratch database on that server, dropped at the end (the backlog is filed into it).
        url = stack.enter_context(scratch_database(a.database_url, "evidence_slack_bench")) \
            if a.database_url else f"sqlite:///{work}/bench.db"
        upgrade(url)
        p50, p99, bad = asyncio.run(bench_commands(url, a.commands, work))
        print(f"{a.commands} concurrent slash commands: p50 {p50 * 1000:.0f} ms ({p50 / BUDGET:.1%} of 3 s), "
              f"p99 {p99 * 1000:.0f} ms ({p99 / BUDGET:.1%} of 3 s; target < 5%), non-200: {bad}")
        print(f"filing a backlog of {a.backlog} records ...", flush=True)
        fill_backlog(url, a.backlog)
        rate, dupes, limited = asyncio.run(bench_drain(url, a.backlog, work))
        print(f"drain of {a.backlog} summaries at 1/s: {rate:.3f} posts/s = {rate / 1.0:.2f} of the limit "
              f"(target >= 0.9), duplicates: {dupes} (target 0), 429s answered: {limited}")


if __name__ == "__main__":
    main()
