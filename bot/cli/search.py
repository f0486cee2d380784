"""`evidence-bot search`: the full-text search for operators and reviewers at a terminal.

Every record is searchable here (the CLI runs with the database's own credentials); `--status`
narrows it down. `--reindex` rebuilds the index and corroboration keys of every record, for a
database that held records before migration 0005.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot import finding
from bot.cli.errors import UserError
from storage import search
from storage.db import unit_of_work
from storage.models import Submission

STATUSES = ("received", "needs_info", "approved", "rejected", "withdrawn")


def add_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("words", nargs="*", metavar="WORDS",
                    help='words to find (all of them); "a phrase", -exclude, prefix*, or')
    sp.add_argument("--status", action="append", choices=STATUSES,
                    help="only records with this status (repeat for several)")
    sp.add_argument("--limit", type=int, default=20, help="at most this many results (default 20)")
    sp.add_argument("--json", action="store_true", help="print a JSON array of results")
    sp.add_argument("--reindex", action="store_true", help="rebuild the search index of every record first")


def reindex(engine: Engine, *, batch: int = 500) -> int:
    """Rebuilds every record's keys and index row, in batches (one transaction each)."""
    done, last = 0, 0
    while True:
        with unit_of_work(engine) as s:
            ids = [i for i in s.exec(select(Submission.id).where(col(Submission.id) > last)
                                     .order_by(col(Submission.id)).limit(batch)).all() if i is not None]
            for i in ids:
                finding.refresh(s, submission_id=i)
        if not ids:
            return done
        done += len(ids)
        last = ids[-1]


def plain_snippet(snippet: str) -> str:
    return search.marked(" ".join(snippet.split()), start="[", end="]")


def print_hits(hits: list[search.Hit], out: IO[str]) -> None:
    for h in hits:
        title = (h.title or "(no title)")[:70]
        out.write(f"{h.reference:<11} {h.status:<10} {title}\n")
        if h.snippet:
            out.write(f"            {plain_snippet(h.snippet)}\n")


def run(args: argparse.Namespace, engine: Engine) -> int:
    """`evidence-bot search` on a migrated database (bot.cli.commands checks that first)."""
    if args.reindex:
        n = reindex(engine)
        print(f"re-indexed {n} record(s)", file=sys.stderr)
    words = " ".join(args.words).strip()
    if not words:
        if args.reindex:
            return 0
        raise UserError("what should I look for? e.g. evidence-bot search payroll Capita")
    if args.limit < 1:
        raise UserError("--limit must be at least 1")
    try:
        with unit_of_work(engine, read_only=True) as s:
            hits = search.search(s, words=words, statuses=args.status, limit=args.limit)
    finally:
        engine.dispose()  # the connections close now, not whenever the process (or a test) exits
    if hits.note:
        print(f"note: {hits.note}", file=sys.stderr)
    if args.json:
        json.dump([{"reference": h.reference, "status": h.status, "title": h.title, "rank": round(h.rank, 6),
                    "snippet": plain_snippet(h.snippet)} for h in hits], sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0
    if not hits:
        print(f"nothing found for {words!r}" + (f" with status {', '.join(args.status)}" if args.status else ""))
        return 0
    print_hits(hits, sys.stdout)
    return 0
