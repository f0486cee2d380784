"""A big message leaves nothing behind in the door's memory once it is committed.

Two things used to keep the last big message alive in a long-running `serve`: SQLite keeps a
cached statement's bound values (its own copy of the blob) until the statement is bound again,
one INSERT per batch size; and the commit thread's locals held the last batch until the next one
arrived. Measured in a fresh process (the test runner's own heap is too noisy), SQLite only: on
PostgreSQL the bytes go to the server and nothing is kept.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import asyncio, gc, json, sys
    from bot.drafts import draft
    from handlers.smtp_data import fix_mmap_threshold
    from storage.db import make_engine
    from storage.migrate import upgrade
    from storage.writer import GroupCommitter

    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

    def message(i, size):
        head = f"From: w{i}@example.org\\r\\nTo: evidence@localhost\\r\\nMessage-ID: <m{i}@example.org>\\r\\n\\r\\n"
        return head.encode() + b"x" * size + b"\\r\\n"

    async def main(url):
        fix_mmap_threshold()  # as serve does: big buffers go back to the system when freed
        upgrade(url)
        committer = GroupCommitter(make_engine(url))
        committer.start()
        for i in range(3):  # warm: the connection, its statements, the thread
            await committer.store(draft(message(i, 1000), envelope_from=None, rcpts=[]))
        gc.collect()
        before = rss_mb()
        stored = await committer.store(draft(message(99, 20 << 20), envelope_from=None, rcpts=[]))
        gc.collect()
        after = rss_mb()
        await committer.stop()
        print(json.dumps({"before": before, "after": after, "created": stored.created}))

    asyncio.run(main(sys.argv[1]))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmRSS from /proc (Linux)")
def test_a_20_mb_message_is_not_kept_after_its_commit(db_url: str) -> None:
    from bot.settings import Settings

    url = Settings.model_validate({"DATABASE_URL": db_url}).database_url
    p = subprocess.run([sys.executable, "-c", SCRIPT, url], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["created"] is True
    # SQLite's page cache (2 MB) and the allocator may keep a little; a kept copy would be 20 MB.
    assert got["after"] - got["before"] < 8, got
