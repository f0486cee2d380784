"""`evidence-bot erase` and `evidence-bot purge`: confirmation, then bot.privacy, then one line.

Both change or delete personal data for good, so both ask first (`[y/N]`, on a terminal only);
`--yes` answers for scripts. Without a terminal and without `--yes` they refuse rather than guess.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.cli.errors import UserError

if TYPE_CHECKING:  # the parser is built for --help too; the database layer loads only to run
    from sqlalchemy.engine import Engine

Ask = Callable[[str], bool]


def _terminal_ask(question: str) -> bool:
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _confirm(args: argparse.Namespace, question: str, what: str, ask: Ask | None) -> bool:
    if args.yes:
        return True
    if ask is None:
        if not sys.stdin.isatty():
            raise UserError(f"not {what} without confirmation: no terminal to ask on; add --yes to go ahead")
        ask = _terminal_ask
    return ask(question)


def add_arguments(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("erase", help="erase one person's personal data from every record (records are kept)")
    who = sp.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", metavar="ADDRESS", help="the person's e-mail address")
    who.add_argument("--slack-user", metavar="U…", help="the person's Slack user ID")
    sp.add_argument("--yes", action="store_true", help="don't ask for confirmation")

    sp = sub.add_parser("purge", help="delete old closed records with their follow-ups, audit, outbox and raw mail")
    sp.add_argument("--older-than", required=True, metavar="AGE",
                    help="age since the decision (or arrival): 30d, 12w, 6m, 1y")
    sp.add_argument("--status", default="rejected,withdrawn",
                    help="comma-separated closed statuses (default: rejected,withdrawn)")
    sp.add_argument("--yes", action="store_true", help="don't ask for confirmation")


def run(args: argparse.Namespace, engine: Engine, *, ask: Ask | None = None) -> int:
    return (cmd_erase if args.command == "erase" else cmd_purge)(args, engine, ask=ask)


def cmd_erase(args: argparse.Namespace, engine: Engine, *, ask: Ask | None = None) -> int:
    from bot import privacy

    try:
        who = privacy.Subject.of(email=args.email, slack_user=args.slack_user)
    except privacy.PrivacyError as e:
        raise UserError(str(e)) from None
    planned = privacy.erase(engine, who, dry_run=True)
    if not planned.records and not planned.outbox and not planned.inbound:
        print(f"nothing to erase: no stored data mentions {who.shown}")
        return 0
    if not _confirm(args, f"Erase personal data of {who.shown} from {len(planned.records)} record(s)?",
                    "erasing", ask):
        print("nothing erased")
        return 1
    print(privacy.erase(engine, who).line())
    return 0


def cmd_purge(args: argparse.Namespace, engine: Engine, *, ask: Ask | None = None) -> int:
    from bot import privacy

    try:
        age = privacy.parse_duration(args.older_than)
        statuses = privacy.parse_statuses(args.status)
    except privacy.PrivacyError as e:
        raise UserError(str(e)) from None
    try:
        datetime.now(UTC) - age
    except OverflowError:  # 99999y: "OverflowError: date value out of range" was all it said
        raise UserError(f"--older-than {args.older_than.strip()} reaches back before the year 1; "
                        "no record is that old") from None
    planned = privacy.purge(engine, older_than=age, statuses=statuses, dry_run=True)
    if not planned.records:
        print(f"nothing to purge: no {'/'.join(statuses)} record older than {args.older_than.strip()}")
        return 0
    question = (f"Delete {planned.records} {'/'.join(statuses)} record(s) older than {args.older_than.strip()}, "
                "with their follow-ups, audit trail, outbox items and raw messages?")
    if not _confirm(args, question, "deleting", ask):
        print("nothing deleted")
        return 1
    print(privacy.purge(engine, older_than=age, statuses=statuses).line())
    return 0
