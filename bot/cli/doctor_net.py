"""The doctor's checks that go over the network: DNS (MX), the relay, Slack, IMAP.

Each has a short timeout and yields bot.cli.doctor_result.Result lines; see bot.cli.doctor for what
fails the run. Nothing here sends mail, posts to Slack or changes a mailbox: every check only looks.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bot.cli.doctor_result import Result
from bot.settings import Settings

TIMEOUT = 10
# The bot scopes of deploy/slack-app-manifest.yml (tests/test_doctor.py keeps the two in step):
# the manifest is not installed with the package, the doctor must work without it.
BOT_SCOPES = ("commands", "chat:write", "chat:write.public", "im:write", "usergroups:read", "users:read",
              "channels:history", "files:write", "groups:history", "im:history")
MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "slack-app-manifest.yml"


# ---------------------------------------------------------------- DNS

def this_host(settings: Settings) -> str:
    return settings.smtp_hostname or socket.getfqdn()


def is_local_address(ip: str) -> bool:
    """True if this machine holds `ip`: binding to it succeeds only then (behind NAT it won't)."""
    try:
        family = socket.AF_INET6 if ip_address(ip).version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((ip, 0))
        return True
    except (OSError, ValueError):
        return False


def dns(settings: Settings) -> Iterator[Result]:
    from bot.sender_check import DnsTempError, Resolver

    resolver = Resolver(settings.dns_servers)
    me = this_host(settings)
    for domain in sorted({a.rsplit("@", 1)[1] for a in settings.evidence_addresses}):
        name = f"MX {domain}"
        if "." not in domain:
            yield Result(name, True, f"{domain} is a local name: mail from the internet cannot reach it",
                         "set EVIDENCE_ADDRESSES to the address(es) you publish")
            continue
        deadline = time.monotonic() + 8.0
        try:
            mxs = sorted((int(r.preference), str(r.exchange).rstrip(".").lower())
                         for r in resolver.lookup(domain, "MX", deadline))
        except DnsTempError:
            yield Result(name, False, "DNS did not answer",
                         "check EVIDENCE_DNS_SERVERS (or the system resolver) and the network")
            continue
        if not mxs:
            yield Result(name, False, f"{domain} has no MX record",
                         f"publish an MX record pointing at this host: {domain}. MX 10 {me}.")
            continue
        if mxs == [(0, "")]:
            yield Result(name, False, f"{domain} has a null MX (RFC 7505): it accepts no mail",
                         f"replace it with an MX record pointing at this host: {domain}. MX 10 {me}.")
            continue
        yield _mx_result(name, mxs, resolver, deadline, me)


def _mx_result(name: str, mxs: list[tuple[int, str]], resolver: Any, deadline: float, me: str) -> Result:
    from bot.sender_check import DnsTempError

    parts, ours, dead = [], False, []
    for pref, host in mxs:
        ips: list[str] = []
        for qtype in ("A", "AAAA"):
            with contextlib.suppress(DnsTempError):  # no answer for one type: the other may do
                ips += [str(r.address) for r in resolver.lookup(host, qtype, deadline)]
        mine = host == me.lower() or any(is_local_address(ip) for ip in ips)
        ours = ours or mine
        if not ips:
            dead.append(host)
        where = ", ".join(ips) or "no address"
        parts.append(f"{pref} {host} ({where}{': this host' if mine else ''})")
    detail = "; ".join(parts)
    if dead and len(dead) == len(mxs):
        return Result(name, False, detail, f"publish an A or AAAA record for {dead[0]}")
    if ours:
        return Result(name, True, detail)
    return Result(name, True, detail + ": not this host",
                  f"fine if that server forwards to this service; to receive directly, point the MX at {me}")


# ---------------------------------------------------------------- relay

def relay(settings: Settings) -> Iterator[Result]:
    if not settings.relay_url:
        yield Result("relay", True, "EVIDENCE_RELAY_URL is not set: receipts and decision e-mails wait in the outbox",
                     "set EVIDENCE_RELAY_URL=smtp://user:password@relay.example.org:587 to send them")
        return
    u = urlsplit(settings.relay_url)
    host, port = u.hostname or "localhost", u.port or (465 if u.scheme == "smtps" else 25)
    where = f"{u.scheme}://{host}:{port}"
    steps: list[str] = []
    try:
        smtp: smtplib.SMTP
        if u.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=ssl.create_default_context())
            steps.append("TLS")
        else:
            smtp = smtplib.SMTP(host, port, timeout=TIMEOUT)
        with smtp:
            code, _ = smtp.ehlo()
            if code != 250:
                yield Result("relay", False, f"{where} answered EHLO with {code}", "check EVIDENCE_RELAY_URL")
                return
            steps.append("EHLO")
            tls = u.scheme == "smtps"
            if u.scheme == "smtp" and smtp.has_extn("starttls") and u.query != "tls=off":
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
                steps.append("STARTTLS")
                tls = True
            if u.username:
                if not tls and host not in ("localhost", "127.0.0.1", "::1"):
                    yield Result("relay", False, f"{where} offers no TLS: the password would cross the network "
                                 "in clear", "use smtps:// or a relay that offers STARTTLS")
                    return
                smtp.login(unquote(u.username), unquote(u.password or ""))
                steps.append("AUTH")  # not the user: it is often an address
    except smtplib.SMTPAuthenticationError as e:
        yield Result("relay", False, f"{where} refused the login ({e.smtp_code})",
                     "check the user and password in EVIDENCE_RELAY_URL (percent-encode @ : / in them)")
        return
    except (OSError, smtplib.SMTPException) as e:
        reason = getattr(e, "strerror", None) or type(e).__name__
        yield Result("relay", False, f"cannot talk to {where}: {reason}",
                     "check EVIDENCE_RELAY_URL, that the relay runs, and that a firewall lets us reach it")
        return
    yield Result("relay", True, f"{where}: " + ", ".join(s + " ok" for s in steps))


# ---------------------------------------------------------------- Slack

def slack(settings: Settings) -> Iterator[Result]:
    if not settings.slack_bot_token:
        return
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=TIMEOUT)
    try:
        auth = client.auth_test()
    except SlackApiError as e:
        yield Result("slack token", False, f"auth.test: {_error(e)}",
                     "put the app's Bot User OAuth Token (xoxb-…, OAuth & Permissions) in SLACK_BOT_TOKEN")
        return
    except OSError as e:
        yield Result("slack token", False, f"cannot reach {settings.slack_api_url}: {type(e).__name__}",
                     "check the network (and SLACK_API_URL if set)")
        return
    yield Result("slack token", True, f"bot {auth.get('user')} ({auth.get('user_id')}) in {auth.get('team')}")
    yield _scopes({k.lower(): v for k, v in (auth.headers or {}).items()}.get("x-oauth-scopes"))
    yield _channel(client, settings.review_channel)
    yield from _reviewers(client, settings.reviewers)


def _error(e: Exception) -> str:
    resp = getattr(e, "response", None)
    data = getattr(resp, "data", None)
    return str(data.get("error")) if isinstance(data, dict) and data.get("error") else type(e).__name__


def _scopes(header: Any) -> Result:
    if header is None:
        return Result("slack scopes", True, "Slack did not report the token's scopes", "compare them by hand with "
                      "deploy/slack-app-manifest.yml (OAuth & Permissions)")
    granted = {s.strip() for s in str(header).split(",") if s.strip()}
    missing = [s for s in BOT_SCOPES if s not in granted]
    if missing:
        return Result("slack scopes", False, "missing " + ", ".join(missing),
                      "add them under OAuth & Permissions (or update the app from deploy/slack-app-manifest.yml) "
                      "and reinstall the app to the workspace")
    return Result("slack scopes", True, f"all {len(BOT_SCOPES)} the app needs are granted")


def _channel(client: Any, channel: str | None) -> Result:
    from slack_sdk.errors import SlackApiError

    if not channel:
        return Result("slack channel", False, "EVIDENCE_REVIEW_CHANNEL is not set", "set it to the channel's ID (C…)")
    try:
        info = client.conversations_info(channel=channel).get("channel") or {}
    except SlackApiError as e:
        return Result("slack channel", False, f"{channel}: {_error(e)}",
                      "EVIDENCE_REVIEW_CHANNEL must be the channel's ID (C…, from the channel's details); "
                      "a private channel must have the bot invited before it can see it")
    name = f"#{info.get('name') or channel}"
    if info.get("is_archived"):
        return Result("slack channel", False, f"{name} is archived", "unarchive it or choose another channel")
    if not info.get("is_member"):
        return Result("slack channel", False, f"the bot is not in {name}", f"invite it: /invite @evidence in {name}")
    return Result("slack channel", True, f"{name} ({channel}): the bot is a member")


def _reviewers(client: Any, reviewers: list[str]) -> Iterator[Result]:
    from slack_sdk.errors import SlackApiError

    if not reviewers:
        yield Result("slack reviewers", True, "EVIDENCE_REVIEWERS is empty: nobody can decide in Slack",
                     "set EVIDENCE_REVIEWERS to user (U…) or user-group (S…) IDs")
        return
    for who in reviewers:
        try:
            if who.startswith("S"):
                users = client.usergroups_users_list(usergroup=who).get("users") or []
                yield Result(f"slack reviewer {who}", bool(users), f"user group of {len(users)} member(s)",
                             None if users else "add reviewers to the group")
                continue
            user = client.users_info(user=who).get("user") or {}
        except SlackApiError as e:
            yield Result(f"slack reviewer {who}", False, _error(e),
                         "check the ID in EVIDENCE_REVIEWERS (a member's profile → ⋮ → Copy member ID)")
            continue
        if user.get("deleted"):
            yield Result(f"slack reviewer {who}", False, "the account is deactivated",
                         "remove it from EVIDENCE_REVIEWERS")
        else:
            yield Result(f"slack reviewer {who}", True, "exists")  # not the name: the output may be pasted


# ---------------------------------------------------------------- IMAP

def imap(settings: Settings) -> Iterator[Result]:
    if not settings.imap_url:
        return
    from handlers.imap.client import Credentials, ImapTarget, close, connect

    target = ImapTarget.from_url(settings.imap_url)
    creds = Credentials(settings.imap_password, settings.imap_oauth2_token_command)
    where = f"{target.host}:{target.port}"
    try:
        client = connect(target, creds)
    except Exception as e:
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        for secret in creds.secrets():
            text = text.replace(secret, "…")
        yield Result("imap", False, f"login to {where} failed: {text}",
                     "check EVIDENCE_IMAP_URL and EVIDENCE_IMAP_PASSWORD (or the token command)")
        return
    try:
        found = client.folder_exists(target.folder)
    finally:
        close(client)
    if not found:
        yield Result("imap", False, f"logged in to {where}, but there is no folder {target.folder}",
                     "put the folder's name in the path of EVIDENCE_IMAP_URL (…/INBOX)")
        return
    yield Result("imap", True, f"logged in to {where}, folder {target.folder} exists")
