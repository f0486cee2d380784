"""The `evidence-bot` command line: serve, parse, import, list, show, export, doctor, backup, db upgrade.

Every failure a user can cause (a bad argument, a missing file, an unknown reference, a bad
setting, an unreachable database) ends as one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from bot import __version__
from bot.cli.errors import UserError
from bot.record import Status

STATUSES = [st.value for st in Status]  # a typo is an error, not an empty list


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="evidence-bot", description="Collects evidence on public-sector outsourcing.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    sp = sub.add_parser("serve", help="run the service (SMTP door, Slack, processing, outbox)")
    sp.add_argument("--no-smtp", action="store_true", help="don't run the SMTP door (e.g. a Procfile web process)")
    sp.add_argument("--no-web", action="store_true", help="don't serve HTTP (Slack events, /healthz)")

    sp = sub.add_parser("parse", help="print what the parser makes of an .eml file, without storing it")
    sp.add_argument("file", type=Path)
    sp.add_argument("--json", action="store_true", help="print the record as JSON")

    sp = sub.add_parser("import", help="store .eml files, a folder of them, an mbox or a Maildir")
    sp.add_argument("path", type=Path)

    sp = sub.add_parser("list", help="list stored records")
    sp.add_argument("--status", choices=STATUSES, help="only records with this status")
    sp.add_argument("--kind", choices=["evidence", "automatic"], help="only records of this kind")
    sp.add_argument("--json", action="store_true", help="print a JSON array of records")

    sp = sub.add_parser("show", help="show one record by reference")
    sp.add_argument("reference")
    sp.add_argument("--json", action="store_true", help="print the record as JSON")

    sp = sub.add_parser("export", help="export records, or the evidence pack (html, md)",
                        description="Every format follows the pack's rules: withdrawn records never, not-for-"
                        "publication records only with --include-unpublished, no anonymous names, no e-mail "
                        "addresses, contact details removed from the evidence.")
    sp.add_argument("--format", choices=["jsonl", "csv", "html", "md"], default="jsonl")
    sp.add_argument("--status", help="only records with this status (html, md: default approved; "
                    "jsonl, csv: default every status but withdrawn)")
    sp.add_argument("--include-unpublished", action="store_true",
                    help="the internal pack: include records not for publication, marked as such")
    sp.add_argument("-o", "--output", type=Path, help="write to FILE instead of standard output")

    sp = sub.add_parser("decide", help="approve, reject or ask for more information, as a reviewer")
    sp.add_argument("reference")
    sp.add_argument("decision", choices=["approve", "reject", "needs-info"])
    sp.add_argument("--as", dest="actor", required=True, metavar="NAME", help="the reviewer deciding")
    sp.add_argument("--reason", help="required to reject; the question, for needs-info")
    sp.add_argument("--campaign", action="store_true",
                    help="decide every undecided record of REFERENCE's campaign, each audited and notified")

    sp = sub.add_parser("audit", help="the review trail of one record")
    sp.add_argument("reference")
    sp.add_argument("--json", action="store_true")

    from bot.cli.search import add_arguments as search_arguments

    search_arguments(sub.add_parser("search", help="full-text search of the records, best matches first"))

    from bot.cli.privacy import add_arguments as add_privacy_commands

    add_privacy_commands(sub)  # erase, purge

    sp = sub.add_parser("doctor", help="check the settings, database, ports, DNS, relay, Slack and doors",
                        description="Each check is a line: ✓ passed, ✗ failed (with the fix), ! worth a look. "
                        "Exit status 0 when nothing failed, 1 otherwise.")
    sp.add_argument("--json", action="store_true", help="print a JSON list of {check, ok, detail, fix}")

    sp = sub.add_parser("backup", help="a consistent copy of the SQLite database, safe while serve runs "
                        "(PostgreSQL: prints the pg_dump command)")
    sp.add_argument("file", type=Path)
    sp.add_argument("--force", action="store_true", help="replace FILE if it exists")

    sp = sub.add_parser("db", help="database administration")
    dbsub = sp.add_subparsers(dest="db_command", required=True, metavar="ACTION", parser_class=_Parser)
    dbsub.add_parser("upgrade", help="create or migrate the schema to the latest version")
    return p


def _search_words_first(argv: list[str]) -> list[str]:
    """`search payroll -Capita` as README.md has it: argparse took `-Capita` (an exclusion) for an
    unknown option and refused the search. The search's own options stay options; every other
    argument is a word, passed after `--` so that one starting with "-" stays a word."""
    if argv[:1] != ["search"]:
        return argv  # (the only options before a command, --help and --version, end the program)
    at = 1
    takes_value = {"--status", "--limit"}
    known = takes_value | {"--json", "--reindex", "--help", "-h"}
    options: list[str] = []
    words: list[str] = []
    rest = argv[at:]
    k = 0
    while k < len(rest):
        a = rest[k]
        if a == "--":
            words.extend(rest[k + 1 :])
            break
        if a.startswith("--") or a == "-h":
            options.append(a)
            # --stat payroll: argparse's own prefix matching decides, so an abbreviation keeps its value
            name = a.split("=", 1)[0]
            full = [o for o in known if o.startswith(name)]
            if "=" not in a and len(full) == 1 and full[0] in takes_value and k + 1 < len(rest):
                options.append(rest[k + 1])
                k += 1
        else:
            words.append(a)
        k += 1
    return [*argv[:at], *options, "--", *words] if words else [*argv[:at], *options]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_search_words_first(list(sys.argv[1:] if argv is None else argv)))
    json_logs = False
    database = ""  # which database, for an error that does not say (SQLite's never does)
    try:
        from bot.settings import load_settings

        if args.command == "doctor":
            from bot.cli import doctor  # before the settings load: a bad setting is one of its findings

            logging.basicConfig(level="CRITICAL")
            return doctor.run(as_json=args.json)
        settings = load_settings()
        database = _where(settings.database_url)
        # The service logs at the configured level; one-shot commands speak only of trouble.
        level = settings.log_level.upper() if args.command == "serve" else "WARNING"
        from bot.runtime import logs

        logs.configure(level, settings.log_format)
        json_logs = settings.log_format == "json"
        from bot.cli import commands

        return commands.run(args, settings)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:
        if json_logs:  # a log shipper reading JSON lines gets the last word as JSON too
            logging.getLogger("bot.cli").error("evidence-bot: error: %s", _one_line(e, database))
        else:
            print(f"evidence-bot: error: {_one_line(e, database)}", file=sys.stderr)
        return 1


def _where(url: str) -> str:
    """The database a URL names, without its password: the SQLite file, or host/name."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:  # noqa: BLE001 - a bad URL is reported by whatever uses it
        return ""
    if u.get_backend_name() == "sqlite":
        return f"SQLite file {u.database}" if u.database else ""
    return f"{u.get_backend_name()} {u.host or 'localhost'}{f':{u.port}' if u.port else ''}/{u.database or ''}"


def _one_line(e: Exception, database: str = "") -> str:
    from sqlalchemy.exc import DatabaseError, OperationalError

    from bot.review import ReviewError
    from bot.settings import ConfigError
    from storage.migrate import NotMigrated

    if isinstance(e, UserError | ConfigError | NotMigrated | ReviewError):
        return str(e)
    if isinstance(e, DatabaseError):  # "file is not a database", "unable to open database file"
        first = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
        what = "database unavailable" if isinstance(e, OperationalError) else "database error"
        return f"{what}: {first}" + (f" ({database})" if database and database not in first else "")
    return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else 'unexpected failure'}"

