"""`evidence-bot doctor [--json]`: is this installation ready to take evidence?

Each check prints one line: ✓ passed, ✗ failed (with the fix), ! passed but worth a look (with a
suggestion). The exit status is 1 when any check failed, else 0. What fails the run: settings that
do not load, a database that is unreachable or not migrated, an SMTP port this process cannot bind
that no SMTP server answers on, a published domain without a usable MX (none, a null MX, an MX host
without an address, or DNS not answering), a relay that refuses us, a Slack token, channel, reviewer
or scope that does not work, an IMAP login that fails, a webhook secret shorter than 16 characters.
What does not: an MX that points at another host (a provider or relay may forward to us), no relay
configured (receipts wait in the outbox), the SMTP port already held by a server answering 220
(most likely `serve` itself). The network checks live in bot.cli.doctor_net.
"""

from __future__ import annotations

import errno
import json
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

from bot.cli.doctor_result import Result
from bot.settings import ConfigError, Settings, load_settings

MIN_SECRET = 16


def run(*, as_json: bool) -> int:
    results = list(checks())
    if as_json:
        print(json.dumps([asdict(r) for r in results], ensure_ascii=False, indent=2))
    else:
        for r in results:
            mark = "✗" if not r.ok else ("!" if r.fix else "✓")
            print(f"{mark} {r.check}: {r.detail}")
            if r.fix:
                print(f"    {'fix' if not r.ok else 'note'}: {r.fix}")
        failed = sum(not r.ok for r in results)
        print(f"{len(results)} check(s), {failed} failed" if failed else f"{len(results)} check(s), all passed",
              file=sys.stderr)
    return 0 if all(r.ok for r in results) else 1


def checks() -> Iterator[Result]:
    try:
        settings = load_settings()
    except ConfigError as e:
        yield Result("settings", False, str(e), "correct that variable in the environment or .env")
        return
    yield Result("settings", True, "loaded")
    from bot.cli import doctor_net

    steps: list[Callable[[Settings], Iterator[Result]]] = [
        database, smtp_port, doctor_net.dns, doctor_net.relay, doctor_net.slack, doctor_net.imap, secrets,
    ]
    for step in steps:
        try:
            yield from step(settings)
        except Exception as e:  # a check must never end the run: say which one broke, and go on
            yield Result(step.__name__, False, f"the check itself failed: {type(e).__name__}: {e}",
                         "report this as a bug, with the line above")


def database(settings: Settings) -> Iterator[Result]:
    from sqlalchemy.engine import make_url

    from storage.db import make_engine
    from storage.migrate import is_up_to_date

    url = make_url(settings.database_url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).is_file():
        # Connecting would create an empty file: say so instead.
        yield Result("database", False, f"no database file at {url.database}", "run: evidence-bot db upgrade")
        return
    kw = {"connect_args": {"connect_timeout": 5}} if url.get_backend_name() == "postgresql" else {}
    engine = make_engine(settings.database_url, **kw)
    try:
        migrated = is_up_to_date(engine)
    except Exception as e:
        first = str(getattr(e, "orig", None) or e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        yield Result("database", False, f"{shown} unreachable: {first}",
                     "check DATABASE_URL, and that the database server is running and accepts this user")
        return
    finally:
        engine.dispose()
    if not migrated:
        yield Result("database", False, f"{shown} is not migrated to this version", "run: evidence-bot db upgrade")
        return
    yield Result("database", True, f"{shown} reachable and migrated")


def smtp_port(settings: Settings) -> Iterator[Result]:
    host, port = settings.smtp_host, settings.smtp_port
    where = f"{host}:{port}"
    if port == 0:
        yield Result("smtp port", True, "EVIDENCE_SMTP_PORT is 0: the system picks a port at start",
                     "senders need a fixed port: set EVIDENCE_SMTP_PORT (25 behind a redirect, or 8025)")
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the door's own listener does
        try:
            s.bind((host, port))
        except OSError as e:
            code = e.errno
        else:
            yield Result("smtp port", True, f"{where} is free for the SMTP door")
            return
    if code == errno.EADDRINUSE:
        banner = _banner("127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host), port)
        if banner.startswith("220"):
            yield Result("smtp port", True, f"{where} is taken by a running SMTP server ({banner[:80]})",
                         "if that is not `evidence-bot serve`, stop it or choose another EVIDENCE_SMTP_PORT")
        else:
            yield Result("smtp port", False, f"{where} is taken by something that does not answer 220",
                         "stop that program, or choose another EVIDENCE_SMTP_PORT")
    elif code == errno.EACCES:
        yield Result("smtp port", False, f"{where}: permission denied (ports below 1024 need privilege)",
                     "grant CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE), or listen "
                     "on 8025 and redirect 25 to it")
    elif code == errno.EADDRNOTAVAIL:
        yield Result("smtp port", False, f"{host} is not an address of this machine",
                     "set EVIDENCE_SMTP_HOST to one of this machine's addresses, or 0.0.0.0 for all")
    else:
        yield Result("smtp port", False, f"{where}: cannot bind ({errno.errorcode.get(code or 0, code)})",
                     "check EVIDENCE_SMTP_HOST and EVIDENCE_SMTP_PORT")


def _banner(host: str, port: int) -> str:
    try:
        with socket.create_connection((host, port), timeout=3) as c:
            return c.recv(200).decode("ascii", "replace").strip().splitlines()[0]
    except (OSError, IndexError):
        return ""


def secrets(settings: Settings) -> Iterator[Result]:
    """Each secret of a door that is on: set (the settings check pairs them) and long enough to
    withstand guessing."""
    named = [
        ("EVIDENCE_INBOUND_SECRET", settings.inbound_secret),
        ("EVIDENCE_INBOUND_PASSWORD", settings.inbound_password),
        ("MAILGUN_WEBHOOK_SIGNING_KEY", settings.mailgun_signing_key),
        ("EVIDENCE_METRICS_TOKEN", settings.metrics_token),
    ]
    for name, value in named:
        if not value:
            continue
        if len(value) < MIN_SECRET:
            yield Result(f"secret {name}", False, f"only {len(value)} characters",
                         f"use at least {MIN_SECRET}, e.g. the output of: openssl rand -hex 24")
        else:
            yield Result(f"secret {name}", True, f"set, {len(value)} characters")
