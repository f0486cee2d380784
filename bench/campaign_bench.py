"""Campaign benchmark: matching a new message against 100,000 stored records against 1,000, in one run.

    python bench/campaign_bench.py [--sizes 1000,100000] [--messages 200] [--database-url URL]

For each size a fresh database is filled directly (executemany; the parser is not involved):
TEMPLATES campaign letters, each with its first record (real band keys, from bot.similarity) and
members (which store no band keys, as in bot.campaigns), and unrelated records up to the size.
An unrelated record's band keys are random 64-bit numbers: that is what MinHash gives texts that
share nothing (two texts at Jaccard 0.02 share a band with chance 32 x 0.02^4, about 5 in a
million), and computing real ones for 100,000 texts would take the fill seven minutes.

Then `--messages` new messages (half edited copies of a template, which join its campaign;
half unrelated evidence, which stores its band keys) each go through bot.campaigns.match, the
whole per-message cost: shingles, MinHash signature, band locks (PostgreSQL), the indexed band
lookup, the exact check of the candidates, and the join or the insert of the keys. Each runs in a
transaction that is then rolled back, so every size sees the same store throughout; the sizes
take turns message by message, so the machine's drift falls on both alike. It prints the mean,
p50 and p95 per message per size and the ratio of the largest size's to the smallest's (target:
at most 2x).

SQLite runs on a temporary file; with --database-url (PostgreSQL) a scratch database is created
on that server for each size and dropped afterwards.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from bot import campaigns, similarity  # noqa: E402
from storage import repo  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import CampaignBand, Submission  # noqa: E402
from tests.support.pgscratch import scratch_database  # noqa: E402

TEMPLATES = 10
TOPICS = ["payroll", "waste collection", "school meals", "highways", "social care", "housing repairs",
          "IT services", "probation", "cleaning", "fleet maintenance"]
BODIES = ["Kent County Council", "Leeds City Council", "Devon County Council", "Camden Council", "NHS Dorset"]
SUPPLIERS = ["Capita", "Serco", "Veolia", "Mitie", "Sodexo"]


def _vocabulary(rng: random.Random, n: int = 5000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(n)]


def template(k: int) -> str:
    """A campaign letter: the same skeleton, a topic and a body of its own, so templates differ."""
    topic, body, supplier = TOPICS[k % len(TOPICS)], BODIES[k % len(BODIES)], SUPPLIERS[k % len(SUPPLIERS)]
    return (f"Dear Committee,\n\nI am writing about {topic} at {body}, which {supplier} has run since {2010 + k}. "
            f"Residents have seen the {topic} service decline year after year while the cost to the council rose. "
            f"Campaign {k}: complaints about {topic} go unanswered, and nobody takes responsibility when the "
            f"contract's standards are missed.\n\nI ask the Committee to recommend that {body} brings {topic} back "
            f"in house in {2026 + k}, and that every future contract for {topic} carries penalties that are "
            f"actually enforced.\n\nThank you for reading my letter about {topic}.")


def member(k: int, rng: random.Random, vocab: list[str]) -> str:
    """An edited copy of template k: a sentence of one's own added."""
    own = " ".join(rng.choices(vocab, k=12)).capitalize() + "."
    return template(k).replace("Thank you", own + "\n\nThank you")


def unrelated(rng: random.Random, vocab: list[str]) -> str:
    return " ".join(rng.choices(vocab, k=rng.randint(60, 120)))


def _row(i: int, body: str, start: datetime, **extra: object) -> dict[str, object]:
    return {"id": i, "ref_no": i, "reference": f"EV-{i:06d}", "kind": "evidence", "status": "received",
            "channel": "email", "outcome": "unknown", "body": body, "received_at": start, "created_at": start,
            "updated_at": start, "publication": "named", "late": False, "confidential": False,
            "campaign_id": None, "campaign_size": None, **extra}


def fill(engine: Engine, n: int, batch: int = 5000) -> float:
    """TEMPLATES campaigns (a first record and members) and unrelated records, n in all; seconds taken."""
    t0 = time.perf_counter()
    rng = random.Random(11)
    vocab = _vocabulary(rng)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    members_each = max(1, n // 100 // TEMPLATES)  # 1% of the store is campaign members
    subs: list[dict[str, object]] = []
    bands: list[dict[str, int]] = []

    def flush(force: bool = False) -> None:
        if subs and (force or len(subs) >= batch):
            with engine.begin() as conn:
                conn.execute(insert(Submission.__table__), subs)  # type: ignore[attr-defined]
                if bands:
                    conn.execute(insert(CampaignBand.__table__), bands)  # type: ignore[attr-defined]
            subs.clear()
            bands.clear()

    i = 0
    for k in range(TEMPLATES):
        i += 1
        first = i
        subs.append(_row(first, template(k), start, campaign_id=first, campaign_size=members_each + 1))
        bands.extend({"band_key": b, "submission_id": first} for b in set(similarity.keys_of(template(k))[1]))
        for _ in range(members_each):
            i += 1
            subs.append(_row(i, member(k, rng, vocab), start, campaign_id=first))
    while i < n:
        i += 1
        subs.append(_row(i, unrelated(rng, vocab), start))
        bands.extend({"band_key": b, "submission_id": i}
                     for b in {rng.getrandbits(64) - (1 << 63) for _ in range(similarity.BANDS)})
        flush()
    flush(force=True)
    pg = engine.dialect.name == "postgresql"
    if pg:  # the state autovacuum keeps a live database in: statistics fresh, the sequence past the rows
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        with engine.begin() as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('submission', 'id'), :n)"), {"n": n})
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - t0


def messages(count: int) -> list[tuple[str, str]]:
    """(kind, text): edited template copies (they join) and unrelated evidence (stands alone)."""
    rng = random.Random(23)
    vocab = _vocabulary(random.Random(99))
    return [("member", member(j % TEMPLATES, rng, vocab)) if j % 2 == 0 else ("alone", unrelated(rng, vocab))
            for j in range(count)]


def match_once(engine: Engine, body: str) -> tuple[float, bool]:
    """(seconds, joined) of matching one new record; everything it wrote is rolled back."""
    with Session(engine) as s:
        sub = repo.add_submission(s, submission=Submission(kind="evidence", status="received", body=body))
        t0 = time.perf_counter()
        joined = campaigns.match(s, sub)
        s.flush()
        took = time.perf_counter() - t0
        s.rollback()
    return took, joined is not None


@contextmanager
def database(url: str | None, n: int) -> Iterator[str]:
    if url is None:
        with tempfile.TemporaryDirectory(prefix="campaign-bench-") as d:
            yield f"sqlite:///{d}/bench-{n}.db"
        return
    with scratch_database(url, "evidence_campaign_bench") as scratch:
        yield scratch


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,100000", help="comma-separated record counts (first is the base)")
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--database-url", help="a PostgreSQL server to create scratch databases on")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    msgs = messages(args.messages)
    with ExitStack() as stack:
        engines: dict[int, Engine] = {}
        for n in sizes:
            url = stack.enter_context(database(args.database_url, n))
            upgrade(url)
            engines[n] = make_engine(url)
            stack.callback(engines[n].dispose)
            print(f"{n:,} records filled in {fill(engines[n], n):.1f} s ({engines[n].dialect.name})")
        ms: dict[int, list[float]] = {n: [] for n in sizes}
        wrong: dict[int, int] = {n: 0 for n in sizes}
        for engine in engines.values():  # a warm-up round: page cache and statement cache
            for _, body in msgs[:10]:
                match_once(engine, body)
        for kind, body in msgs:
            for n, engine in engines.items():
                took, joined = match_once(engine, body)
                ms[n].append(took * 1000)
                wrong[n] += joined != (kind == "member")
    print(f"\nper message, {len(msgs)} messages (half join a campaign, half stand alone)")
    print(f"  {'records':>9} {'mean ms':>8} {'p50 ms':>8} {'p95 ms':>8}  wrongly matched")
    for n in sizes:
        print(f"  {n:>9,} {statistics.fmean(ms[n]):>8.2f} {pct(ms[n], 50):>8.2f} {pct(ms[n], 95):>8.2f}  {wrong[n]}")
    small, big = ms[sizes[0]], ms[sizes[-1]]
    ratio = statistics.fmean(big) / statistics.fmean(small)
    r50, r95 = pct(big, 50) / pct(small, 50), pct(big, 95) / pct(small, 95)
    print(f"\n{sizes[-1]:,} over {sizes[0]:,}: mean x{ratio:.2f}, p50 x{r50:.2f}, p95 x{r95:.2f}"
          f" -> {'within' if ratio <= 2 else 'OVER'} the 2x target")


if __name__ == "__main__":
    main()
