"""Search benchmark: full-text search latency at 100,000 records against 1,000, in the same run.

    python bench/search_bench.py [--sizes 1000,100000] [--repeat 40] [--database-url URL] [--no-pack]

For each size a fresh database is filled with synthetic evidence records, inserted directly with
executemany into `submission` and the search index (the same rows storage.search.write makes, and
the same window of the newest records; the parser is not involved). Then a handful of queries runs
`--repeat` times each through storage.search.search, as reviewers (every record) and as a
non-reviewer (approved + their own), the sizes taking turns query by query so that the machine's
drift during the run falls on both alike. It prints p50/p95 per query and size, the note a capped
result carries, and the ratio of the largest size's to the smallest's (target: at most 2x). It
also times building and rendering the evidence pack of the approved records (collect + render per
format), per 1,000 records.

SQLite runs on a temporary file; with --database-url (PostgreSQL) a scratch database is created
on that server for each size and dropped afterwards.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from bot import pack as pack_mod  # noqa: E402
from bot.corroboration import normalise_body, normalise_supplier  # noqa: E402
from storage import search  # noqa: E402
from storage.db import make_engine, unit_of_work  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Submission  # noqa: E402
from tests.support.pgscratch import scratch_database  # noqa: E402

BODIES = [f"{p} {k}" for p in ("Kent", "Essex", "Leeds", "Camden", "Devon", "Hampshire", "Wigan", "Norfolk",
                               "Bristol", "Cornwall", "Surrey", "Lambeth", "Sefton", "Dorset", "Cumbria")
          for k in ("County Council", "City Council", "Borough Council", "NHS Foundation Trust")]
SUPPLIERS = ["Capita plc", "Serco Ltd", "Mitie Group plc", "G4S", "Sodexo", "Veolia", "Babcock", "Kier Group",
             "Atos", "Fujitsu", "Interserve", "Amey", "Carillion", "Engie", "Biffa", "Compass Group"]
AREAS = ["payroll", "waste collection", "fleet maintenance", "IT services", "social care", "facilities",
         "highways", "prisons", "probation", "school meals", "cleaning", "housing repairs"]
PHRASES = ["staff were paid late", "costs rose sharply", "the contract was terminated early",
           "savings were never delivered", "service levels improved", "penalty clauses were not enforced",
           "complaints doubled", "the council brought the service back in house", "performance was mixed",
           "the supplier went into liquidation"]
STATUSES = ["received"] * 5 + ["approved"] * 2 + ["rejected", "needs_info", "withdrawn"]
# Each query finds as many records at 1,000 as at 100,000 or fills the page at both, so both sizes
# do the same work per result (a query that finds nothing at 1,000 would time an empty answer).
QUERIES = ["payroll", "Capita", '"paid late"', "council payroll", "liquidation -Carillion", "penal*",
           "zyxel0042",  # a word in exactly 10 records whatever the size (a selective query)
           "arbitration tupe"]  # two words each in a tenth of the records, together in exactly those 10


def _vocabulary(rng: random.Random, n: int = 6000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(4, 10))) for _ in range(n)]


def rows(n: int, seed: int = 7) -> Iterator[tuple[dict[str, object], search.Document]]:
    """n synthetic records: a submission row and its index document."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng)
    weights = [1 / (i + 1) for i in range(len(vocab))]  # Zipf-like, as in prose
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(1, n + 1):
        body, supplier, area = rng.choice(BODIES), rng.choice(SUPPLIERS), rng.choice(AREAS)
        words = rng.choices(vocab, weights, k=rng.randint(80, 250))
        text_ = " ".join(words[:40]) + f". On {area}, {rng.choice(PHRASES)}. " + " ".join(words[40:])
        if i % max(1, n // 10) == 0:
            text_ += " zyxel0042 arbitration tupe"
        elif i % 10 in (3, 7):
            text_ += " arbitration" if i % 10 == 3 else " tupe"
        title = f"{area.capitalize()} at {body}"
        ref = f"EV-{i:06d}"
        summary = text_[:200]
        sub = {"id": i, "ref_no": i, "reference": ref, "kind": "evidence", "status": rng.choice(STATUSES),
               "channel": rng.choice(("email", "email", "slack")), "title": title, "project": f"{area} contract",
               "public_body": body, "supplier": supplier, "service_area": area,
               "outcome": rng.choice(("success", "failure", "mixed", "unknown")), "summary": summary, "body": text_,
               "slack_user_id": f"U{i % 500}", "submitter_email": f"person{i}@example.org",
               "received_at": start + timedelta(minutes=i), "created_at": start, "updated_at": start,
               "body_key": normalise_body(body), "supplier_key": normalise_supplier(supplier),
               "publication": "named", "late": False, "confidential": False}
        doc = search.Document(reference=ref, title=title,
                              fields=" \u2022 ".join((sub["project"], body, supplier, area, summary)),  # type: ignore[arg-type]
                              body=text_, attachments="")
        yield sub, doc


def fill(engine: Engine, n: int, batch: int = 5000) -> float:
    """Inserts n records and their index rows; returns the seconds it took."""
    t0 = time.perf_counter()
    pg = engine.dialect.name == "postgresql"
    index_sql = text(
        "INSERT INTO submission_fts (submission_id, title, fields, body, attachments)"
        " VALUES (:id, :title, :fields, :body, :attachments)" if pg else
        "INSERT INTO submission_fts (rowid, reference, title, fields, body, attachments)"
        " VALUES (:id, :reference, :title, :fields, :body, :attachments)")
    it = rows(n)
    while True:
        chunk = [r for _, r in zip(range(batch), it, strict=False)]
        if not chunk:
            break
        with engine.begin() as conn:
            conn.execute(insert(Submission.__table__), [s for s, _ in chunk])  # type: ignore[attr-defined]
            conn.execute(index_sql, [{"id": s["id"], "reference": d.reference, "title": d.title,
                                      "fields": d.fields, "body": d.body, "attachments": d.attachments}
                                     for s, d in chunk])
    with unit_of_work(engine) as s:
        search.rebuild_window(s)  # the window of the newest records, as search.write keeps it
    if pg:  # the state autovacuum keeps a live database in: GIN's pending list merged, statistics fresh
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        if pg:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('submission', 'id'), :n)"), {"n": n})
    return time.perf_counter() - t0


@contextmanager
def database(url: str | None, n: int) -> Iterator[str]:
    if url is None:
        with tempfile.TemporaryDirectory(prefix="search-bench-") as d:
            yield f"sqlite:///{d}/bench-{n}.db"
        return
    with scratch_database(url, "evidence_search_bench") as scratch:
        yield scratch


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


VIEWS: tuple[tuple[str, dict[str, object]], ...] = (
    ("reviewer", {}), ("member", {"statuses": ["approved"], "submitter": "U7"}))


def measure(engines: dict[int, Engine], repeat: int) -> dict[int, dict[str, tuple[float, float, int, str]]]:
    """p50, p95, hits and note per size and query; the sizes take turns, so drift hits them alike."""
    out: dict[int, dict[str, tuple[float, float, int, str]]] = {n: {} for n in engines}
    notes = {None: "", search.ranked_note(): "newest 200 ranked", search.window_note(): "from the window"}
    for q in QUERIES:
        for who, kw in VIEWS:
            ms: dict[int, list[float]] = {n: [] for n in engines}
            last: dict[int, search.Results] = {}
            for i in range(repeat + 1):
                for n, engine in engines.items():
                    t0 = time.perf_counter()
                    with unit_of_work(engine, read_only=True) as s:  # as the doors search
                        last[n] = search.search(s, words=q, **kw)  # type: ignore[arg-type]
                    if i:  # the first round warms the page cache and the statement cache
                        ms[n].append((time.perf_counter() - t0) * 1000)
            for n in engines:
                note = notes.get(last[n].note, last[n].note or "")
                out[n][f"{q}|{who}"] = (pct(ms[n], 50), pct(ms[n], 95), len(last[n]), note)
    return out


def export(engine: Engine) -> None:
    t0 = time.perf_counter()
    p = pack_mod.collect(engine, status="approved")
    collected = time.perf_counter() - t0
    count = len(p.records)
    if not count:
        print("  export: no approved records")
        return
    per = 1000 / count
    print(f"  export of {count:,} approved records: collect {collected * per:.2f} s per 1,000")
    for fmt in pack_mod.FORMATS:
        t0 = time.perf_counter()
        pack_mod.render(p, fmt)
        print(f"    render {fmt:<6} {(time.perf_counter() - t0) * per:.2f} s per 1,000")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,100000", help="comma-separated record counts (first is the base)")
    ap.add_argument("--repeat", type=int, default=40)
    ap.add_argument("--database-url", help="a PostgreSQL server to create scratch databases on")
    ap.add_argument("--no-pack", action="store_true", help="skip timing the evidence pack export")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with ExitStack() as stack:
        engines: dict[int, Engine] = {}
        for n in sizes:
            url = stack.enter_context(database(args.database_url, n))
            upgrade(url)
            engines[n] = make_engine(url)
            stack.callback(engines[n].dispose)
            print(f"{n:,} records filled in {fill(engines[n], n):.1f} s ({engines[n].dialect.name})")
        results = measure(engines, args.repeat)
        for n in sizes:
            print(f"\n{n:,} records")
            print(f"  {'query':<32} {'who':<10} {'hits':>5} {'p50 ms':>8} {'p95 ms':>8}  note")
            for key, (p50, p95, hits, note) in results[n].items():
                q, who = key.split("|")
                print(f"  {q:<32} {who:<10} {hits:>5} {p50:>8.2f} {p95:>8.2f}  {note}")
            if not args.no_pack:
                export(engines[n])
    small, big = results[sizes[0]], results[sizes[-1]]
    print(f"\np50 and p95 at {sizes[-1]:,} records over {sizes[0]:,} (target: at most 2x)")
    worst = 0.0
    for key in small:
        q, who = key.split("|")
        r50, r95 = big[key][0] / small[key][0], big[key][1] / small[key][1]
        worst = max(worst, r50)
        print(f"  {q:<32} {who:<10} p50 x{r50:5.2f}  p95 x{r95:5.2f}")
    print(f"worst p50 ratio: x{worst:.2f} -> {'within' if worst <= 2 else 'OVER'} the 2x target")


if __name__ == "__main__":
    main()
