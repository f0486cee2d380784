"""Full-text search over evidence records: keeping the index in step, and ranked, highlighted queries.

One table, `submission_fts` (migration 0005), on both databases: an FTS5 table on SQLite (rowid =
submission.id, BM25 ranking, snippet()), a table with a generated weighted tsvector and a GIN index
on PostgreSQL (ts_rank, ts_headline, 'english' stemming). The index holds only text; status and
submitter are read from `submission` at query time, so a status change (a decision, a withdrawal)
is visible to search at once without touching the index, and a deleted record can never be found
(the query joins `submission`; the rows themselves go by trigger / ON DELETE CASCADE). A second
table of the same kind (migration 0006) holds the newest records' rows: see WINDOW.

Submitter names and e-mail addresses are deliberately not indexed: search results reach people
who are not reviewers, and a confidential submitter must not be findable by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlmodel import Session, col, select

from storage.models import Attachment, FollowUp, Submission

# Tables (and their FTS5 shadow tables) that the SQLModel metadata does not describe; the window
# tables of migration 0006 (`submission_fts_recent`, `submission_fts_window`) share the prefix.
INDEX_TABLES = ("submission_fts",)

# Highlight marks put around matched words in a snippet. Characters no one types, and stripped
# from the indexed text, so each door can turn them into its own markup after escaping the rest.
MARK_START = "\u27e6"
MARK_END = "\u27e7"

# Caps per column: a 25 MB PDF's text would make the index (and a PostgreSQL tsvector, which has
# a 1 MB limit) huge for little gain; the opening pages carry the words people search for.
_MAX_BODY = 100_000
_MAX_ATTACHMENTS = 200_000
_CONTROL = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{MARK_START}{MARK_END}]")

SNIPPET_WORDS = 16


@dataclass(frozen=True)
class Hit:
    reference: str
    title: str | None
    status: str
    snippet: str  # matched words between MARK_START and MARK_END; otherwise the record's own text
    rank: float  # higher is better, comparable only within one result list


@dataclass(frozen=True)
class Document:
    """The text of one record as indexed, by column (weights: title > fields > body > attachments)."""

    reference: str
    title: str
    fields: str
    body: str
    attachments: str


def _clean(value: str | None, limit: int | None = None) -> str:
    t = _CONTROL.sub(" ", value or "")
    return t[:limit] if limit else t


def document_of(session: Session, sub: Submission, extra_fields: Sequence[str] = ()) -> Document:
    """The indexed text of a record: its fields, body, follow-up bodies and attachment text."""
    assert sub.id is not None
    atts = session.exec(
        select(Attachment.filename, Attachment.text).where(Attachment.submission_id == sub.id)
        .order_by(col(Attachment.id))
    ).all()
    followups = session.exec(
        select(FollowUp.body).where(FollowUp.submission_id == sub.id).order_by(col(FollowUp.id))
    ).all()
    return document_from(sub, [(a[0], a[1]) for a in atts], followups, extra_fields)


def document_from(sub: Submission, attachments: Sequence[tuple[str | None, str | None]],
                  followups: Sequence[str | None] = (), extra_fields: Sequence[str] = ()) -> Document:
    """document_of from values in hand: (filename, text) of each attachment in order, follow-up
    bodies in order (batch filing builds a new record's row without reading it back)."""
    fields = [sub.project, sub.public_body, sub.supplier, sub.service_area, sub.period, sub.summary,
              sub.declared_interests, *extra_fields]
    body = "\n\n".join(x for x in (sub.body, *followups) if x)
    text_ = "\n\n".join(x for a in attachments for x in a if x)
    return Document(
        reference=sub.reference or "",
        title=_clean(sub.title),
        fields=_clean(" \u2022 ".join(x for x in fields if x)),
        body=_clean(body, _MAX_BODY),
        attachments=_clean(text_, _MAX_ATTACHMENTS),
    )


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


# Broad queries are answered from a window of the newest WINDOW records, so their cost stays the
# same however big the store grows; only a query the window cannot answer goes to the whole index
# (search() below). The window is a second index table of the same kind, `submission_fts_recent`
# (migration 0006), holding exactly the index rows of records with id >= `floor` (one row in
# `submission_fts_window`; 0 = all of them). On the whole index a common word's entries grow with
# the store: FTS5's bm25 walks all of them to weigh the word, and PostgreSQL's GIN index returns all
# of them before the newest are picked. The floor rises WINDOW_PRUNE records at a time, so the
# pruning that follows is occasional.
WINDOW = 5000
WINDOW_PRUNE = 500
TABLES = ("submission_fts", "submission_fts_recent")


def _key(session: Session) -> str:
    return "submission_id" if _dialect(session) == "postgresql" else "rowid"


def remove(session: Session, *, submission_id: int) -> None:
    """Drops a record from the index (erasure does this by trigger/cascade too; this is explicit)."""
    for table in TABLES:
        session.execute(text(f"DELETE FROM {table} WHERE {_key(session)} = :id"), {"id": submission_id})


def write(session: Session, *, submission_id: int, doc: Document) -> None:
    """Replaces the index row of one record with `doc`, in the window too if the record is in it."""
    values = {"id": submission_id, "reference": doc.reference, "title": doc.title, "fields": doc.fields,
              "body": doc.body, "attachments": doc.attachments}
    floor = _floor(session)
    for table in TABLES if submission_id >= floor else TABLES[:1]:
        if _dialect(session) == "postgresql":
            session.execute(text(
                f"INSERT INTO {table} (submission_id, title, fields, body, attachments)"
                " VALUES (:id, :title, :fields, :body, :attachments)"
                " ON CONFLICT (submission_id) DO UPDATE SET title = excluded.title, fields = excluded.fields,"
                " body = excluded.body, attachments = excluded.attachments"
            ), values)
        else:  # FTS5 has no upsert; delete and insert in the caller's transaction is atomic all the same
            session.execute(text(f"DELETE FROM {table} WHERE rowid = :id"), values)
            session.execute(text(
                f"INSERT INTO {table} (rowid, reference, title, fields, body, attachments)"
                " VALUES (:id, :reference, :title, :fields, :body, :attachments)"
            ), values)
    if submission_id - floor > WINDOW + WINDOW_PRUNE:
        session.execute(text(f"DELETE FROM submission_fts_recent WHERE {_key(session)} < :floor"),
                        {"floor": submission_id - WINDOW})
        session.execute(text("UPDATE submission_fts_window SET floor = :floor"), {"floor": submission_id - WINDOW})


def write_new(session: Session, docs: Sequence[tuple[int, Document]]) -> None:
    """`write` for many records just filed, ids ascending, in a few statements: the same rows,
    window and floor as writing them one after another (the floor only rises, so the window
    ends up holding exactly the new rows at or above its last floor)."""
    if not docs:
        return
    key, pg = _key(session), _dialect(session) == "postgresql"
    start = floor = _floor(session)
    for sid, _ in docs:
        if sid - floor > WINDOW + WINDOW_PRUNE:
            floor = sid - WINDOW
    rows: list[dict[str, Any]] = [
        {"id": sid, "reference": d.reference, "title": d.title, "fields": d.fields, "body": d.body,
         "attachments": d.attachments} for sid, d in docs]
    for table in TABLES:
        mine = rows if table == TABLES[0] else [r for r in rows if r["id"] >= floor]
        if not mine:
            continue
        if pg:
            session.execute(text(
                f"INSERT INTO {table} (submission_id, title, fields, body, attachments)"
                " VALUES (:id, :title, :fields, :body, :attachments)"
                " ON CONFLICT (submission_id) DO UPDATE SET title = excluded.title, fields = excluded.fields,"
                " body = excluded.body, attachments = excluded.attachments"
            ), mine)
        else:
            session.execute(text(f"DELETE FROM {table} WHERE rowid = :id"), [{"id": r["id"]} for r in mine])
            session.execute(text(
                f"INSERT INTO {table} (rowid, reference, title, fields, body, attachments)"
                " VALUES (:id, :reference, :title, :fields, :body, :attachments)"
            ), mine)
    if floor != start:
        session.execute(text(f"DELETE FROM submission_fts_recent WHERE {key} < :floor"), {"floor": floor})
        session.execute(text("UPDATE submission_fts_window SET floor = :floor"), {"floor": floor})


def _floor(session: Session) -> int:
    return int(session.execute(text("SELECT floor FROM submission_fts_window")).scalar_one())


def rebuild_window(session: Session) -> None:
    """Refills the window from the whole index (after a bulk load that wrote only that, see bench/)."""
    key = _key(session)
    columns = f"{key}, title, fields, body, attachments" + ("" if key == "submission_id" else ", reference")
    top = session.execute(text(f"SELECT max({key}) FROM submission_fts")).scalar() or 0
    floor = top - WINDOW if top > WINDOW + WINDOW_PRUNE else 0
    session.execute(text("DELETE FROM submission_fts_recent"))
    session.execute(text(f"INSERT INTO submission_fts_recent ({columns})"
                         f" SELECT {columns} FROM submission_fts WHERE {key} >= :floor"), {"floor": floor})
    session.execute(text("UPDATE submission_fts_window SET floor = :floor"), {"floor": floor})


def index_submission(session: Session, *, submission_id: int, extra_fields: Sequence[str] = ()) -> None:
    """(Re)builds a record's index row from the database; automatic mail and unknown ids are removed.

    `extra_fields` are more words to find the record by (the normalised public body and supplier,
    so "Kent CC" finds "Kent County Council").
    """
    session.flush()  # the caller's pending changes (new attachments, edited fields) must be read
    sub = session.get(Submission, submission_id)
    if sub is not None:
        session.refresh(sub)  # bulk UPDATEs (repo.update_submission) bypass the identity map
    if sub is None or sub.kind != "evidence" or not sub.reference:
        remove(session, submission_id=submission_id)
        return
    write(session, submission_id=submission_id, doc=document_of(session, sub, extra_fields))


# ------------------------------------------------------------------------------------------- queries

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class _Term:
    words: tuple[str, ...]  # one word, or a phrase
    prefix: bool = False
    negated: bool = False


def parse_query(query: str) -> list[list[_Term]]:
    """A search box's text as OR-groups of AND-ed terms: "phrases", -excluded, prefix*, `or`.

    Everything else (operators, brackets, column filters, NEAR, ^) is only punctuation here, so no
    input can be a syntax error in FTS5.
    """
    groups: list[list[_Term]] = [[]]
    for m in _TOKEN.finditer(query):
        neg_phrase, phrase, bare = m.group(1), m.group(2), m.group(3)
        if phrase is not None:
            words = tuple(_WORD.findall(phrase))
            if words:
                groups[-1].append(_Term(words, negated=bool(neg_phrase)))
            continue
        assert bare is not None
        if bare.lower() == "or":
            if groups[-1]:
                groups.append([])
            continue
        negated = bare.startswith("-") and len(bare) > 1
        words = tuple(_WORD.findall(bare))
        if not words:
            continue
        groups[-1].append(_Term(words, prefix=bare.endswith("*") and len(words) == 1, negated=negated))
    # A group of only exclusions matches nothing useful (and FTS5 NOT needs a left side): drop it.
    return [g for g in groups if any(not t.negated for t in g)]


def _fts5_term(t: _Term) -> str:
    # Words come from \w+, so they hold no quote; a quoted string is always a literal in FTS5.
    quoted = '"' + " ".join(t.words) + '"'
    return quoted + ("*" if t.prefix else "")


def fts5_query(query: str) -> str | None:
    """An FTS5 MATCH expression for `query` that cannot be a syntax error; None if nothing to find."""
    parts = []
    for group in parse_query(query):
        pos = " AND ".join(_fts5_term(t) for t in group if not t.negated)
        neg = "".join(f" NOT {_fts5_term(t)}" for t in group if t.negated)
        parts.append(f"({pos}){neg}")
    return " OR ".join(f"({p})" for p in parts) if parts else None


def tsquery_text(query: str) -> str | None:
    """The same terms as a to_tsquery expression: `a & b:* & !c | "d e"` -> `(a & b:* & !c) | (d <-> e)`.

    Only \\w+ words reach it, joined by operators we write ourselves, so user input cannot make it
    a syntax error (what websearch_to_tsquery would guarantee, but that has no prefix search);
    stop words drop out inside to_tsquery as they would in websearch_to_tsquery.
    """
    groups = []
    for group in parse_query(query):
        terms = []
        for t in group:
            term = " <-> ".join(t.words) + (":*" if t.prefix else "")
            if len(t.words) > 1:
                term = f"({term})"
            terms.append(("!" if t.negated else "") + term)
        groups.append("(" + " & ".join(terms) + ")")
    return " | ".join(groups) if groups else None


def _visibility(statuses: Collection[str] | None, submitter: str | None) -> tuple[str, dict[str, object]]:
    """SQL condition on `s` (submission) and its parameters."""
    conds = ["s.kind = 'evidence'"]
    params: dict[str, object] = {}
    if statuses is not None:
        # A restricted view is a public one: records "not for publication" are for the group's eyes
        # only, so only reviewers (statuses=None) and the submitter see them.
        allowed = "(s.status IN :statuses AND s.publication <> 'not_for_publication')" if statuses else "1 = 0"
        if statuses:
            params["statuses"] = list(statuses)
        if submitter:
            allowed = f"({allowed} OR s.slack_user_id = :submitter)"
            params["submitter"] = submitter
        conds.append(allowed)
    return " AND ".join(conds), params


# A query matching more records than this ranks the newest this many: broad words stay fast at any
# size of store (bench/search_bench.py), at the price that an older record may need a narrower
# query to come up. Results say when that happened (Results.note), and the doors say so too.
RANKED_MAX = 200


class Results(list[Hit]):
    """The hits, best first; `note` says when only the newest matches were ranked (None otherwise)."""

    note: str | None = None


def ranked_note() -> str:
    n = RANKED_MAX
    return f"More than {n} records match: these are the best of the newest {n}. Add words to narrow the search."


def window_note() -> str:
    return (f"Many records match: these are the best among the newest {WINDOW:,} records. "
            "Add words to narrow the search.")


def search(
    session: Session,
    *,
    words: str | Sequence[str],
    statuses: Collection[str] | None = None,
    submitter: str | None = None,
    limit: int = 20,
) -> Results:
    """Records matching `words`, best first, each with a highlighted snippet.

    `statuses` limits the records to those statuses, except that `submitter`'s own records (by Slack
    user id) are included whatever their status: what a person who is not a reviewer may see.
    """
    query = words if isinstance(words, str) else " ".join(words)
    where, params = _visibility(statuses, submitter)
    params["limit"] = limit = max(1, min(limit, 200))
    params["ranked_max"] = RANKED_MAX
    pg = _dialect(session) == "postgresql"
    q = tsquery_text(query) if pg else fts5_query(query)
    if q is None:
        return Results()
    params["q"] = q
    note = None
    rows: Sequence[Any] = []
    if _floor(session):
        # The window holds every record from its floor on, so its newest RANKED_MAX matches are
        # the store's; and a full page from it is a fair answer to a broad query. Anything less (a
        # narrow query, or a view that hides most matches) goes to the whole index, so an old
        # record is never out of reach of a query that names it.
        rows = _run(session, pg, where, params, "submission_fts_recent")
        if rows and rows[0].considered >= RANKED_MAX:
            note = ranked_note()
        elif len(rows) >= limit:
            note = window_note()
        else:
            rows = []
    if not rows:
        rows = _run(session, pg, where, params, "submission_fts")
        note = ranked_note() if rows and rows[0].considered >= RANKED_MAX else None
    out = Results(Hit(reference=r.reference, title=r.title or r.project, status=r.status,
                      snippet=(r.snippet or "").strip(), rank=float(r.rank)) for r in rows)
    out.note = note
    return out


def _run(session: Session, pg: bool, where: str, params: dict[str, object], table: str) -> Sequence[Any]:
    stmt = text(_pg_sql(where, table) if pg else _sqlite_sql(where, table))
    if "statuses" in params:
        stmt = stmt.bindparams(bindparam("statuses", expanding=True))
    return session.execute(stmt, params).all()


def _pg_sql(where: str, table: str) -> str:
    # As on SQLite, only the newest RANKED_MAX matches are scored (ts_rank reads each vector).
    return (
        "WITH q AS (SELECT to_tsquery('english', :q) AS query),"
        # The query text inline (not from `q`): the planner then estimates from the index's
        # statistics how many rows match, and picks the GIN index for a rare word rather than
        # walking every row newest first in search of ten matches.
        f" cand AS (SELECT f.submission_id FROM {table} f"
        "  WHERE f.document @@ to_tsquery('english', :q)"
        "  ORDER BY f.submission_id DESC LIMIT :ranked_max),"
        " hits AS (SELECT s.id, s.reference, s.title, s.project, s.status,"
        "  ts_rank(f.document, q.query) AS rank"
        f"  FROM cand JOIN {table} f ON f.submission_id = cand.submission_id"
        "  JOIN submission s ON s.id = f.submission_id CROSS JOIN q"
        f"  WHERE {where}"
        "  ORDER BY rank DESC, s.id DESC LIMIT :limit)"
        " SELECT h.reference, h.title, h.project, h.status, h.rank, (SELECT count(*) FROM cand) AS considered,"
        "  ts_headline('english', concat_ws(' \u2022 ', f.title, f.fields, f.body, f.attachments), q.query,"
        f"   'StartSel={MARK_START}, StopSel={MARK_END}, MaxWords={SNIPPET_WORDS + 4}, MinWords=6,"
        "    MaxFragments=2, FragmentDelimiter=\" … \"') AS snippet"
        f" FROM hits h JOIN {table} f ON f.submission_id = h.id CROSS JOIN q"
        " ORDER BY h.rank DESC, h.id DESC"
    )


def _sqlite_sql(where: str, table: str) -> str:
    # Column weights for bm25: reference (unindexed), title, fields, body, attachments.
    # Two passes over the index, each bounded whatever the size of the store:
    # 1. `cand`: the newest RANKED_MAX matches with their scores. FTS5 walks its doclists by
    #    descending rowid and the LIMIT stops the walk, so bm25 runs for those rows only.
    # 2. snippets for the top `limit` only (a snippet costs far more than a score), from a
    #    second walk over just the rowid range the top rows span.
    return (
        f"WITH cand AS MATERIALIZED (SELECT rowid AS id, -bm25({table}, 0, 8.0, 4.0, 2.0, 1.0) AS rank"
        f"  FROM {table} WHERE {table} MATCH :q ORDER BY rowid DESC LIMIT :ranked_max),"
        " top AS MATERIALIZED (SELECT cand.id, cand.rank FROM cand JOIN submission s ON s.id = cand.id"
        f"  WHERE {where} ORDER BY cand.rank DESC, cand.id DESC LIMIT :limit)"
        " SELECT s.reference, s.title, s.project, s.status, top.rank, (SELECT count(*) FROM cand) AS considered,"
        f" snippet({table}, -1, '{MARK_START}', '{MARK_END}', '…', {SNIPPET_WORDS}) AS snippet"
        # CROSS JOIN keeps the index walk outermost: SQLite would otherwise look up each top
        # row in the index by rowid, and FTS5 answers each such lookup with a walk of its own.
        f" FROM {table} CROSS JOIN top CROSS JOIN submission s"
        f" WHERE {table} MATCH :q AND {table}.rowid >= (SELECT min(id) FROM top)"
        f"  AND top.id = {table}.rowid AND s.id = top.id"
        " ORDER BY top.rank DESC, s.id DESC"
    )


def marked(snippet: str, *, start: str, end: str, escape: Callable[[str], str] | None = None) -> str:
    """A snippet with its highlight marks replaced by `start`/`end`, the rest passed through `escape`."""
    fn = escape or (lambda s: s)
    out = []
    for i, piece in enumerate(re.split(f"[{MARK_START}{MARK_END}]", snippet)):
        # Pieces alternate outside/inside a mark (split keeps no separators; marks always pair).
        text_ = fn(piece)
        out.append(f"{start}{text_}{end}" if i % 2 and text_.strip() else text_)
    return "".join(out)


def indexed_ids(session: Session) -> set[int]:
    """The ids of every indexed record (tests and the re-index check)."""
    key = "submission_id" if _dialect(session) == "postgresql" else "rowid"
    return {int(r[0]) for r in session.execute(text(f"SELECT {key} FROM submission_fts")).all()}
