"""`evidence-bot import` end to end against a plain standard-library loop, same messages, same run.

    python bench/import_bench.py [--messages 2000] [--loads prose,mix]

For each load, N distinct messages are written as .eml files into a folder, then:
  (a) baseline: one Python loop that reads each file, parses it with the standard library
      (`email.message_from_bytes(policy=default)`), decodes every text part, and inserts the raw
      message and its text into SQLite (WAL, synchronous=FULL) in transactions of 100;
  (b) ours: `python -m bot import FOLDER` as a user runs it (a subprocess, on a freshly migrated
      SQLite file), until it exits, by which time every record is filed (checked afterwards:
      nothing left `received`, as many records as messages minus automatic replies).
Loads:
  - prose: plain ~5 KB messages of free prose;
  - mix: the shapes of tests/corpus (templates, HTML, replies, forwards, follow-ups, small PDF
    and Word attachments, automatic replies), each copy made distinct.
Target (issue 11): ours / baseline <= 4 on both loads. Baseline runs first, then ours; pass
`--rounds 2` to take the best of two interleaved rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from email import policy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from parse_bench import _SENTENCES  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"


_WORDS = sorted(set(re.findall(r"[a-z']+", " ".join(_SENTENCES).lower()))) + [
    "contract", "council", "supplier", "payroll", "staff", "service", "team", "manager", "report", "budget",
    "residents", "complaints", "system", "delays", "invoice", "audit", "meeting", "office", "union", "tender",
]


def prose(i: int) -> bytes:
    """A distinct ~5 KB account in ordinary words: each its own sentences (no two alike enough to
    be a campaign), a greeting and a sign-off."""
    rnd = random.Random(i)
    body: list[str] = ["Dear inquiry team,", ""]
    while sum(len(x) + 2 for x in body) < 4900:
        sentences = [" ".join(rnd.choice(_WORDS) for _ in range(rnd.randint(8, 18))).capitalize() + "."
                     for _ in range(rnd.randint(2, 4))]
        body += [" ".join(sentences), ""]
    body += ["Kind regards,", f"Witness {i}"]
    head = (
        f"From: Witness {i} <witness{i % 700}@example.org>\r\nTo: evidence@localhost\r\n"
        f"Subject: What happened to our payroll ({i})\r\nMessage-ID: <import-prose-{i}@example.org>\r\n"
        "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return (head + "\r\n".join(body) + "\r\n").encode()


_MSGID = re.compile(rb"^Message-ID:[^\r\n]*\r?\n", re.IGNORECASE | re.MULTILINE)
_SUBJECT = re.compile(rb"^(Subject:[^\r\n]*)", re.IGNORECASE | re.MULTILINE)


def mix(i: int, shapes: list[bytes]) -> bytes:
    """A corpus message made distinct: its own Message-ID and a number in its subject."""
    raw = shapes[i % len(shapes)]
    raw = _MSGID.sub(b"", raw, count=1)
    raw = _SUBJECT.sub(lambda m: m.group(1) + f" #{i}".encode(), raw, count=1)
    return f"Message-ID: <import-mix-{i}@example.org>\r\n".encode() + raw


def write_folder(folder: Path, load: str, n: int) -> None:
    folder.mkdir(parents=True)
    shapes = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
    for i in range(n):
        raw = prose(i) if load == "prose" else mix(i, shapes)
        (folder / f"{i:06d}.eml").write_bytes(raw)


def baseline(folder: Path, db: Path) -> float:
    t0 = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE msg (id INTEGER PRIMARY KEY, raw BLOB NOT NULL, text TEXT NOT NULL)")
    batch: list[tuple[bytes, str]] = []

    def flush() -> None:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO msg (raw, text) VALUES (?, ?)", batch)
        conn.execute("COMMIT")
        batch.clear()

    for p in sorted(folder.glob("*.eml")):
        raw = p.read_bytes()
        msg = email.message_from_bytes(raw, policy=policy.default)
        texts = []
        for part in msg.walk():
            if part.get_content_maintype() == "text" and not part.is_multipart():
                with contextlib.suppress(Exception):  # an unknown charset: the loop skips it
                    texts.append(part.get_content())
        batch.append((raw, "\n".join(texts)))
        if len(batch) == 100:
            flush()
    if batch:
        flush()
    conn.close()
    return time.perf_counter() - t0


def ours(folder: Path, db: Path) -> tuple[float, dict[str, int]]:
    url = f"sqlite:///{db}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "DATABASE_URL", "SLACK_"))}
    env.update({"DATABASE_URL": url, "PYTHONPATH": str(ROOT)})
    subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], env=env, check=True, cwd=ROOT,
                   capture_output=True)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "bot", "import", str(folder)], env=env, cwd=ROOT,
                       capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"import failed:\n{p.stderr[-3000:]}")
    conn = sqlite3.connect(db)
    counts = dict(conn.execute("SELECT state, count(*) FROM inbound GROUP BY state").fetchall())
    counts["records"] = conn.execute("SELECT count(*) FROM submission").fetchone()[0]
    conn.close()
    return secs, counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--loads", default="prose,mix")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    print(f"{args.messages} messages per load, cpus: {os.cpu_count()}")
    results = []
    with tempfile.TemporaryDirectory(prefix="import-bench-") as d:
        tmp = Path(d)
        for load in args.loads.split(","):
            folder = tmp / load
            write_folder(folder, load, args.messages)
            best_b = best_o = float("inf")
            counts: dict[str, int] = {}
            for r in range(args.rounds):
                b = baseline(folder, tmp / f"{load}-base-{r}.db")
                o, counts = ours(folder, tmp / f"{load}-ours-{r}.db")
                print(f"  {load} round {r + 1}: baseline {b:6.2f} s, import {o:6.2f} s ({o / b:.2f}x); "
                      f"inbound {counts}", flush=True)
                best_b, best_o = min(best_b, b), min(best_o, o)
            if counts.get("received"):
                print(f"  WARNING: {counts['received']} message(s) left unfiled")
            results.append((load, best_b, best_o))
    print()
    print(f"{'load':8s} {'baseline s':>10s} {'import s':>9s} {'ms/msg':>7s} {'ratio':>6s}  target <= 4")
    for load, b, o in results:
        print(f"{load:8s} {b:10.2f} {o:9.2f} {o / args.messages * 1e3:7.1f} {o / b:6.2f}  "
              f"{'OK' if o / b <= 4 else 'ABOVE'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
