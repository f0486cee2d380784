"""What each CLI command does; bot.cli.main turns arguments into these calls and errors into one line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session
from tqdm import tqdm

from bot import authenticity, campaigns, drafts
from bot.cli.errors import UserError
from bot.convert import record_from_submission
from bot.record import JSON_KEYS, EvidenceRecord
from bot.settings import Settings
from storage import repo
from storage.db import make_engine, unit_of_work
from storage.migrate import is_up_to_date, upgrade
from storage.models import Submission


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command in ("erase", "purge"):
        from bot.cli import privacy as privacy_cli

        return privacy_cli.run(args, migrated_engine(settings))
    if args.command == "search":
        from bot.cli import search

        return search.run(args, migrated_engine(settings))
    handler = {
        "serve": cmd_serve, "parse": cmd_parse, "import": cmd_import, "list": cmd_list,
        "show": cmd_show, "export": cmd_export, "db": cmd_db, "decide": cmd_decide, "audit": cmd_audit,
        "backup": cmd_backup,
    }[args.command]
    return handler(args, settings)


def _print_json(obj: Any, out: IO[str] = sys.stdout) -> None:
    out.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.runtime.service import serve

    asyncio.run(serve(settings, smtp=not args.no_smtp, web=not args.no_web))
    return 0


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli import backup

    return backup.run(settings, args.file, force=args.force)


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        _refuse_newer_schema(engine)
    finally:
        engine.dispose()
    upgrade(settings.database_url)
    print("database is up to date", file=sys.stderr)
    return 0


def cmd_parse(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.file
    if not path.is_file():
        raise UserError(f"no such file: {path}")
    from bot.parsing.email_message import parse_email  # the parser's imports (PDF, Word) only when needed

    rec = parse_email(path.read_bytes(), reference_prefix=settings.reference_prefix)
    if rec.kind == "follow_up" and rec.in_reply_to_reference:
        # A follow-up is filed under the record it follows; say which, as `show` of it would.
        rec.reference = rec.in_reply_to_reference
    if args.json:
        _print_json(rec.to_json())
    else:
        _print_record(rec)
    return 0


def migrated_engine(settings: Settings) -> Engine:
    """The database engine, or one clear line if the database needs `db upgrade` first."""
    engine = make_engine(settings.database_url)
    if not is_up_to_date(engine):
        _refuse_newer_schema(engine)
        raise UserError("the database is not migrated; run: evidence-bot db upgrade")
    return engine


def _refuse_newer_schema(engine: Engine) -> None:
    """One clear line for a database a newer evidence-bot has migrated: "run db upgrade" sent the
    operator round in a circle (`db upgrade` failed with Alembic's "Can't locate revision")."""
    from storage.migrate import newer_schema, not_migrated

    if newer_schema(engine) is not None:
        raise UserError(str(not_migrated(engine)))


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot import intake
    from bot.cli import (
        import_pipeline,
        importing,  # the parser's imports (PDF, Word) only when needed
    )

    engine = migrated_engine(settings)
    rcpt = settings.evidence_addresses[0]
    stored = dupes = 0
    try:
        found = importing.messages(args.path)
        total = importing.count(args.path)
        # Stored 100 at a time (or 32 MB), each batch one transaction and one multi-row INSERT.
        batch: list[Any] = []
        size = 0

        def flush() -> None:
            nonlocal stored, dupes, size
            for _, created in intake.store_many(engine, batch):
                stored += created
                dupes += not created
            batch.clear()
            size = 0

        for f in tqdm(found, total=total, unit="msg", desc="storing", file=sys.stderr, disable=None):
            batch.append(drafts.draft(f.raw, envelope_from=f.envelope_from, rcpts=[rcpt], peer="import",
                                      received_at=f.received_at))
            size += len(f.raw)
            if len(batch) >= IMPORT_STORE_BATCH or size >= IMPORT_STORE_BYTES:
                flush()
        flush()
    except importing.UnreadableMail as e:
        raise UserError(str(e)) from None
    kinds: dict[str, int] = {}
    with tqdm(total=stored, unit="msg", desc="filing", file=sys.stderr, disable=None) as bar:
        for filed in import_pipeline.file_waiting(engine, settings):
            for r in filed:
                kinds[r.outcome] = kinds.get(r.outcome, 0) + 1
            bar.update(len(filed))
    detail = ", ".join(f"{n} {k.replace('_', '-')}" for k, n in sorted(kinds.items()))
    print(f"imported {stored} message(s), skipped {dupes} duplicate(s)" + (f": {detail}" if detail else ""))
    return 0


IMPORT_STORE_BATCH = 100
IMPORT_STORE_BYTES = 32 * 1024 * 1024


def _records(settings: Settings, *, status: str | None = None, kind: str | None = None) -> Iterator[EvidenceRecord]:
    engine = migrated_engine(settings)
    with unit_of_work(engine, read_only=True) as s:
        subs = repo.list_submissions(s, status=status, kind=kind)
        atts = repo.attachments_of(s, submission_ids=[x.id for x in subs if x.id is not None])
        camp = campaigns.info(s, subs)
    for sub in subs:
        yield record_from_submission(sub, atts.get(sub.id or 0, []), camp.get(sub.id or 0))


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    recs = list(_records(settings, status=args.status, kind=args.kind))
    if args.json:
        _print_json([r.to_json() for r in recs])
        return 0
    if not recs:
        print("no records" + (f" with status {args.status}" if args.status else ""))
        return 0
    for r in recs:
        when = r.received_at.strftime("%Y-%m-%d %H:%M") if r.received_at else "-"
        ref = r.reference or "-"
        title = (r.title or r.summary or "")[:60]
        print(f"{ref:<11} {r.status or '-':<10} {r.kind:<9} {r.outcome:<8} {when}  {title}")
    return 0


def _submission(s: Session, reference: str) -> tuple[Submission, int]:
    """The record and its id, or one clear line if there is no such record."""
    sub = repo.get_submission(s, reference=reference.strip())
    if sub is None or sub.id is None:
        raise UserError(f"no record with reference {reference}")
    return sub, sub.id


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    engine = migrated_engine(settings)
    with unit_of_work(engine, read_only=True) as s:
        sub, sub_id = _submission(s, args.reference)
        atts = repo.attachments_of(s, submission_ids=[sub_id])
        followups = repo.followups_of(s, submission_id=sub_id)
        camp = campaigns.info(s, [sub]).get(sub_id)
    rec = record_from_submission(sub, atts.get(sub_id, []), camp)
    if args.json:
        _print_json(rec.to_json())
        return 0
    _print_record(rec)
    for fu in followups:
        print(f"\n--- follow-up {fu.received_at:%Y-%m-%d %H:%M} from {fu.sender_email or '?'}: {fu.subject or ''}")
        print((fu.body or "").strip())
    return 0


def _print_record(rec: EvidenceRecord) -> None:
    d = rec.to_json()
    for k in JSON_KEYS:
        if k in ("body", "attachments", "summary", "authenticity") or d[k] in (None, ""):
            continue
        print(f"{k.replace('_', ' ').capitalize():<20} {d[k]}")
    if (sender := authenticity.describe(rec.authenticity)) is not None:
        print(f"{'Sender check':<20} {sender}")
    for a in rec.attachments:
        print(f"{'Attachment':<20} {a.filename or '(unnamed)'} ({a.content_type}, {a.size} bytes)")
    if rec.summary:
        print(f"\nSummary\n{rec.summary}")
    if rec.body:
        print(f"\nEvidence\n{rec.body.strip()}")


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """Every format goes through bot.pack, so the export rules (withdrawn never, not for publication
    only on request, anonymity, contact details removed) hold whatever leaves; see bot/pack.py."""
    from bot import pack

    status = args.status or ("approved" if args.format in ("html", "md") else None)

    def bar(items: Iterable[Any], n: int) -> Iterable[Any]:
        return tqdm(items, total=n, unit="record", desc="pack", file=sys.stderr, disable=None)

    try:
        built = pack.collect(migrated_engine(settings), status=status, include_unpublished=args.include_unpublished,
                             progress=bar, settings=settings)
    except ValueError as e:
        raise UserError(str(e)) from None
    text = pack.render(built, args.format)
    if not args.output:
        sys.stdout.write(text)
        return 0
    write_output(args.output, text, settings)
    print(f"wrote {args.output} ({len(built.records)} record(s))", file=sys.stderr)
    return 0


def database_files(settings: Settings) -> list[Path]:
    """The SQLite database's file and the files SQLite keeps beside it (none on PostgreSQL)."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return []
    db = Path(url.database)
    return [db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]


def write_output(target: Path, text: str, settings: Settings) -> None:
    """Writes an export to `target` whole or not at all: never over the database (`-o evidence.db`
    replaced the records with the export), and an existing file is replaced only once the new one
    is complete (a full disk left it cut short, the earlier export lost)."""
    if target.is_dir():
        raise UserError(f"cannot write {target}: it is a folder; name a file in it")
    try:
        if target.exists() and not target.is_file():  # /dev/stdout, a pipe: written as it is
            with target.open("w", encoding="utf-8") as f:
                f.write(text)
            return
        final = target.resolve()  # through a symlink: the file it points to is replaced, not the link
        if any(final == f.resolve() for f in database_files(settings)):
            raise UserError(f"cannot write {target}: it is the database (DATABASE_URL); choose another name")
        mode = final.stat().st_mode & 0o7777 if final.exists() else None
    except OSError as e:
        raise UserError(f"cannot write {target}: {e.strerror or e}") from None
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, final)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {target}: {e.strerror or e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def cmd_decide(args: argparse.Namespace, settings: Settings) -> int:
    from bot.decisions import decide
    from bot.review import Action

    action = Action.parse(args.decision)
    assert action is not None  # argparse's choices already refused anything else
    actor = args.actor.strip()
    if not actor:
        raise UserError("--as needs the reviewer's name")
    if getattr(args, "campaign", False):
        from bot.decisions import decide_campaign

        done = decide_campaign(migrated_engine(settings), settings, reference=args.reference.strip(),
                               action=action, actor=f"cli:{actor}", reason=args.reason)
        print(f"{len(done)} record(s) of the campaign are now {done[0].status.replace('_', ' ')} (by {actor}): "
              + ", ".join(d.reference for d in done))
        return 0
    d = decide(migrated_engine(settings), settings, reference=args.reference.strip(), action=action,
               actor=f"cli:{actor}", reason=args.reason)
    print(f"{d.reference} is now {d.status.replace('_', ' ')} (by {actor})")
    return 0


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    engine = migrated_engine(settings)
    with unit_of_work(engine, read_only=True) as s:
        sub, sub_id = _submission(s, args.reference)
        rows = repo.audit_of(s, submission_id=sub_id)
    if args.json:
        _print_json([{"at": r.at.isoformat(), "actor": r.actor, "action": r.action, "reason": r.reason,
                      "before": json.loads(r.before) if r.before else None,
                      "after": json.loads(r.after) if r.after else None} for r in rows])
        return 0
    if not rows:
        print(f"{sub.reference}: no review actions yet")
    for r in rows:
        print(f"{r.at:%Y-%m-%d %H:%M} {r.actor:<20} {r.action:<10} {r.reason or ''}")
    return 0
